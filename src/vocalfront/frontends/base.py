"""The front-end interface: waveform in, non-negative band energies on the common frame grid out."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import AudioError
from ..grid import HOP, SAMPLE_RATE, WINDOW, FrameGrid


def check_waveform(waveform: torch.Tensor, min_samples: int, source: str | None = None) -> torch.Tensor:
    """Validate a waveform and return it as ``(batch, samples)``.

    Raises :class:`~vocalfront.errors.AudioError` (a ``ValueError``) for a non-tensor, a
    non-float dtype, more than two dimensions, fewer than ``min_samples`` samples, or NaN/Inf.
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
    """

    name: ClassVar[str] = ""

    def __init__(self, n_bands: int, sample_rate: int = SAMPLE_RATE, hop: int = HOP,
                 window: int = WINDOW):
        super().__init__()
        self.n_bands = int(n_bands)
        self.grid = FrameGrid(int(sample_rate), int(hop), int(window))

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
        """Keyword arguments that rebuild this front-end with :func:`build_frontend`."""
        return {
            "name": self.name,
            "sample_rate": self.grid.sample_rate,
            "hop": self.grid.hop,
            "window": self.grid.window,
        }
