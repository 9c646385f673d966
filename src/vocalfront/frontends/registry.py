"""Build front-ends by name: ``build_frontend("fb", hop=630)`` or ``build_frontend(**config)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import VocalfrontError
from .base import FrontEnd

_REGISTRY: dict[str, tuple[Callable[..., FrontEnd], dict[str, Any]]] = {}


def register_frontend(name: str, factory: Callable[..., FrontEnd], **preset: Any) -> None:
    """Register ``factory`` under ``name``; ``preset`` keyword arguments are its defaults."""
    _REGISTRY[name] = (factory, preset)


def available_frontends() -> list[str]:
    """Names accepted by :func:`build_frontend`."""
    return sorted(_REGISTRY)


def build_frontend(name: str, **kwargs: Any) -> FrontEnd:
    """Instantiate the front-end registered as ``name``; ``kwargs`` override its presets.

    An unknown name or option, or a value out of range, is a :class:`VocalfrontError`."""
    if name not in _REGISTRY:
        raise VocalfrontError(
            f"unknown front-end {name!r}; available: {', '.join(available_frontends())}"
        )
    factory, preset = _REGISTRY[name]
    options = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise VocalfrontError(f"front-end {name!r} has no option {', '.join(map(repr, unknown))}; "
                              f"its options: {', '.join(options)}")
    frontend = factory(**{**preset, **kwargs})
    frontend.name = name
    return frontend
