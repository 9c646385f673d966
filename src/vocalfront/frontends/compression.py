"""Compression and per-band normalisation, separate from the front-ends so any pair combines.

Example::

    >>> import torch
    >>> from vocalfront.frontends import BandNorm, LogCompression, build_frontend
    >>> energies = build_frontend("mel")(torch.rand(2, 22050))      # (2, 80, 67)
    >>> features = LogCompression(1e-7)(energies)                   # log(max(x, 1e-7))
    >>> norm = BandNorm(80)
    >>> norm.fit(features)                                          # per-band mean and std
    >>> norm(features).shape
    torch.Size([2, 80, 67])
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import VocalfrontError


def _positive(what: str, value: Any) -> float:
    """``value`` as a finite positive float, else a :class:`VocalfrontError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise VocalfrontError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


class LogCompression(nn.Module):
    """``log(max(x, floor))``; Schlüter's floor is 1e-7. Shape-preserving."""

    def __init__(self, floor: float = 1e-7):
        super().__init__()
        self.floor = _positive("log compression floor", floor)

    def forward(self, energies: torch.Tensor) -> torch.Tensor:
        return torch.log(energies.clamp_min(self.floor))

    def get_config(self) -> dict[str, Any]:
        return {"name": "log", "floor": self.floor}


class Log1pCompression(nn.Module):
    """``log1p(scale * x)`` with ``scale = exp(log_scale)``, optionally learnable.

    The exponential keeps the scale positive without clamping the parameter.
    """

    def __init__(self, scale: float = 1e4, learnable: bool = False):
        super().__init__()
        log_scale = torch.tensor(_positive("log1p compression scale", scale)).log()
        self.log_scale = nn.Parameter(log_scale, requires_grad=learnable)
        self.learnable = learnable

    def forward(self, energies: torch.Tensor) -> torch.Tensor:
        return torch.log1p(self.log_scale.exp() * energies)

    def get_config(self) -> dict[str, Any]:
        return {"name": "log1p", "scale": float(self.log_scale.exp()), "learnable": self.learnable}


class BandNorm(nn.Module):
    """Per-band z-score ``(x - mean) / std`` with statistics from training data.

    Input/output ``(batch, n_bands, frames)``. Statistics are buffers: set them with :meth:`fit`
    (or load them with the state dict); until then the module is the identity.
    """

    def __init__(self, n_bands: int, eps: float = 1e-5):
        super().__init__()
        self.n_bands = n_bands
        self.eps = eps
        self.register_buffer("mean", torch.zeros(n_bands))
        self.register_buffer("std", torch.ones(n_bands))

    @torch.no_grad()
    def fit(self, features: torch.Tensor | list[torch.Tensor]) -> None:
        """Set mean and std per band from ``(batch, n_bands, frames)`` or a list of ``(n_bands, frames)``;
        fewer than two values per band (no spread to measure) is a :class:`VocalfrontError`."""
        if isinstance(features, list):
            flat = torch.cat([f.reshape(self.n_bands, -1) for f in features], dim=1)
        else:
            flat = features.transpose(0, 1).reshape(self.n_bands, -1)
        if flat.shape[1] < 2:
            raise VocalfrontError(f"BandNorm.fit needs at least 2 frames per band, got {flat.shape[1]}")
        flat = flat.double()
        self.mean.copy_(flat.mean(dim=1))
        self.std.copy_(flat.std(dim=1).clamp_min(self.eps))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean[:, None]) / self.std[:, None]

    def get_config(self) -> dict[str, Any]:
        return {"name": "bandnorm", "n_bands": self.n_bands, "eps": self.eps}


def build_compression(name: str = "log", **kwargs: Any) -> nn.Module:
    """``"log"`` → :class:`LogCompression`, ``"log1p"`` → :class:`Log1pCompression`."""
    if name == "log":
        return LogCompression(**kwargs)
    if name == "log1p":
        return Log1pCompression(**kwargs)
    raise VocalfrontError(f"unknown compression {name!r}; use 'log' or 'log1p'")
