"""The front-end interface: waveform in, non-negative band energies on the common frame grid out."""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import torch
from torch import nn

from ..audio import MIN_FILE_RATE
from ..errors import AudioError, VocalfrontError
from ..grid import HOP, SAMPLE_RATE, WINDOW, FrameGrid
from .registry import registered_name

MAX_BANDS = 1024
"""Most bands a front-end may have."""
MAX_SAMPLE_RATE = 384_000
"""Highest front-end sample rate (Hz); the lowest is :data:`~vocalfront.audio.MIN_FILE_RATE`."""
MIN_WINDOW, MAX_WINDOW = 16, 16_384
"""Shortest and longest analysis window (samples; 0.7 ms and 0.74 s at 22050 Hz)."""
MAX_OVERLAP = 64
"""Most frames covering one sample: the hop is at least ``window / MAX_OVERLAP`` samples, which
bounds the memory of frame-wise work at ``MAX_OVERLAP`` times that of the signal."""


def whole_number(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an ``int`` from ``low`` to ``high``: Python/numpy integers and whole floats;
    anything else is a :class:`~vocalfront.errors.VocalfrontError` stating the range."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) \
            and value == int(value) and low <= value <= high:
        return int(value)
    raise VocalfrontError(f"front-end {name} must be a whole number from {low} to {high}, got {value!r}")


def check_band_limits(fmin: Any, fmax: Any, sample_rate: int) -> None:
    """Refuse band limits (Hz) unless ``0 <= fmin < fmax <= sample_rate / 2``."""
    nyquist = sample_rate / 2
    for name, value in (("fmin", fmin), ("fmax", fmax)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                or not 0 <= value <= nyquist:  # NaN fails too
            raise VocalfrontError(f"front-end {name} must be a number of Hz from 0 to {nyquist:g} "
                                  f"(half the sample rate), got {value!r}")
    if not fmin < fmax:
        raise VocalfrontError(f"front-end fmin must be below fmax, got fmin={fmin!r}, fmax={fmax!r}")


def check_waveform(waveform: torch.Tensor, min_samples: int, source: str | None = None) -> torch.Tensor:
    """Validate a waveform and return it as ``(batch, samples)``.

    Raises :class:`~vocalfront.errors.AudioError` (a ``ValueError``) for a non-tensor, a
    non-float dtype, more than two dimensions, an empty batch, fewer than ``min_samples``
    samples, or NaN/Inf. Half precision (float16, bfloat16) is returned as float32.
    """
    if not isinstance(waveform, torch.Tensor):
        raise AudioError(source, f"expected a torch.Tensor waveform, got {type(waveform).__name__}")
    if not waveform.is_floating_point():
        raise AudioError(
            source, f"waveform must be floating point (got {waveform.dtype}); scale integers to [-1, 1]"
        )
    if waveform.dim() == 1:
        waveform = waveform.unsqueeze(0)
    if waveform.dim() != 2:
        raise AudioError(
            source, f"waveform must be (samples,) or (batch, samples), got shape {tuple(waveform.shape)}"
        )
    if waveform.shape[0] == 0:
        raise AudioError(source, "empty batch: no waveform to compute features of")
    if waveform.dtype in (torch.float16, torch.bfloat16):
        waveform = waveform.float()
    if waveform.shape[-1] < min_samples:
        raise AudioError(
            source,
            f"too short: {waveform.shape[-1]} samples, need at least {min_samples} for one frame",
        )
    # a finite sum proves every sample finite (NaN and Inf propagate) in one cheap pass; only
    # when it is not (or overflows) are the samples checked one by one
    if not bool(torch.isfinite(waveform.detach().sum())) and not bool(torch.isfinite(waveform).all()):
        raise AudioError(source, "waveform contains NaN or Inf samples")
    return waveform


class FrontEnd(nn.Module):
    """Base class of all front-ends.

    Input: waveform ``(batch, samples)`` or ``(samples,)``, float, at ``sample_rate`` Hz.
    Output: non-negative band energies ``(batch, n_bands, frames)`` on the grid of
    :class:`~vocalfront.grid.FrameGrid` (frame ``b`` centred at sample ``hop * b + window // 2``,
    ``1 + (samples - window) // hop`` frames). Subclasses implement :meth:`band_energies` on a
    validated 2-D waveform and list their constructor arguments in :meth:`get_config`.

    Parameters are checked here, each a whole number: ``n_bands`` 1 to :data:`MAX_BANDS`,
    ``sample_rate`` (Hz) :data:`~vocalfront.audio.MIN_FILE_RATE` to :data:`MAX_SAMPLE_RATE`,
    ``window`` (samples) :data:`MIN_WINDOW` to :data:`MAX_WINDOW`, ``hop`` (samples)
    ``ceil(window / MAX_OVERLAP)`` to ``sample_rate`` (at least one frame per second).
    """

    name: ClassVar[str] = ""
    """Registry name: set by :func:`~vocalfront.frontends.build_frontend`, or by a subclass;
    empty, :meth:`get_config` derives it from the class (:func:`~.registry.registered_name`)."""

    def __init__(self, n_bands: int, sample_rate: int = SAMPLE_RATE, hop: int = HOP,
                 window: int = WINDOW):
        super().__init__()
        self.n_bands = whole_number("n_bands", n_bands, 1, MAX_BANDS)
        sample_rate = whole_number("sample_rate", sample_rate, MIN_FILE_RATE, MAX_SAMPLE_RATE)
        window = whole_number("window", window, MIN_WINDOW, MAX_WINDOW)
        hop = whole_number("hop", hop, -(-window // MAX_OVERLAP), sample_rate)
        self.grid = FrameGrid(sample_rate, hop, window)

    @property
    def sample_rate(self) -> int:
        return self.grid.sample_rate

    def forward(self, waveform: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Band energies ``(batch, n_bands, frames)`` of ``waveform`` (see class docstring).

        ``sample_rate`` (Hz), when given, must equal the front-end's rate: resample first.
        """
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise AudioError(
                None,
                f"sample rate {sample_rate} Hz does not match the front-end's {self.sample_rate} Hz;"
                " resample first (vocalfront.audio.load_audio does)",
            )
        return self.band_energies(check_waveform(waveform, self.grid.window))

    def band_energies(self, waveform: torch.Tensor) -> torch.Tensor:
        """Compute ``(batch, n_bands, frames)`` from a validated ``(batch, samples)`` waveform."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this front-end with :func:`build_frontend`, however
        it was built."""
        return {
            "name": self.name or registered_name(self),
            "sample_rate": self.grid.sample_rate,
            "hop": self.grid.hop,
            "window": self.grid.window,
        }
