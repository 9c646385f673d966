"""Build front-ends by name: ``build_frontend("fb", hop=630)`` or ``build_frontend(**config)``.

Every front-end's :meth:`~vocalfront.frontends.base.FrontEnd.get_config` names it: by the name it
was built under, or, built directly from its class, by :func:`registered_name` (the class's
registered variant it matches), so any front-end round-trips through its config.

Example::

    >>> from vocalfront.frontends import FilterBank, build_frontend
    >>> bank = FilterBank(averaging="none")
    >>> bank.get_config()["name"]
    'fb-noavg'
    >>> type(build_frontend(**bank.get_config())).__name__
    'FilterBank'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import VocalfrontError

if TYPE_CHECKING:
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


def registered_name(frontend: FrontEnd) -> str:
    """The name that rebuilds ``frontend`` (with its config's options) by :func:`build_frontend`.

    Of the names registered for its exact class, the one whose presets it matches (each preset
    compared with the attribute of the same name), the most specific first: ``FilterBank()`` is
    ``"fb"``, ``FilterBank(learn=("cf",))`` is ``"fb-learn-cf"``. A class registered under no
    name is a :class:`VocalfrontError`: its config could not be rebuilt.
    """
    matches = [(len(preset), name) for name, (factory, preset) in _REGISTRY.items()
               if factory is type(frontend)
               and all(_same(getattr(frontend, key, _MISSING), value) for key, value in preset.items())]
    if not matches:
        kind = type(frontend).__name__
        raise VocalfrontError(f"front-end class {kind} is not registered, so its config cannot be "
                              f"rebuilt; register it with register_frontend(name, {kind})")
    return min(matches, key=lambda match: (-match[0], match[1]))[1]


_MISSING = object()


def _same(value: Any, preset: Any) -> bool:
    """Whether an attribute equals a preset; lists and tuples compare as sequences."""
    if isinstance(value, list | tuple) and isinstance(preset, list | tuple):
        return tuple(value) == tuple(preset)
    return value == preset
