"""vocalfront: designed and learnable filter-bank front-ends, and a singing voice detector.

``vocalfront.detect`` (the function) and ``vocalfront.Detection`` are imported on first use, so
that importing the package (and starting the ``vocalfront`` command) does not import torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.12.0"
"""The package version (``pyproject.toml`` reads it from here); it moves whenever the packaged
default model changes."""

__all__ = ["Detection", "__version__", "detect"]

_LAZY = {"detect": "detect", "Detection": "Detection"}
"""Package attribute -> name in the ``vocalfront.detect`` module, imported on first access."""


class _Package(types.ModuleType):
    """This package's module type: ``vocalfront.detect`` stays the function even after the module
    of the same name is imported (the import system then sets the attribute to the module)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "detect" and isinstance(value, types.ModuleType):
            value = value.detect
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        module = importlib.import_module(".detect", __name__)
        return getattr(module, _LAZY[name])


sys.modules[__name__].__class__ = _Package
