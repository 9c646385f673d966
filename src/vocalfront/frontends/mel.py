"""STFT mel-spectrogram front-end in named conventions.

Example::

    >>> import torch
    >>> from vocalfront.frontends import MelSpectrogram
    >>> mel = MelSpectrogram(convention="librosa")     # Slaney scale and norm, 0 Hz to Nyquist
    >>> mel(torch.randn(22050)).shape                   # (batch, bands, frames), 70 frames/s
    torch.Size([1, 80, 67])
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import VocalfrontError
from ..grid import HOP, SAMPLE_RATE, WINDOW
from ..melscale import MelNorm, MelScale, mel_band_edges, triangular_filterbank
from .base import FrontEnd, check_band_limits
from .design import check_bands_hold_bins

CONVENTIONS: dict[str, dict[str, Any]] = {
    # Schlüter & Grill (2015): HTK scale, unit-sum triangles, 27.5-8000 Hz.
    "schlueter": {"scale": "htk", "norm": "unit-sum", "fmin": 27.5, "fmax": 8000.0},
    # librosa.filters.mel defaults: Slaney scale, Slaney area normalisation, 0 Hz to Nyquist.
    "librosa": {"scale": "slaney", "norm": "slaney", "fmin": 0.0, "fmax": None},
    # torchaudio.transforms.MelScale defaults: HTK scale, no normalisation, 0 Hz to Nyquist.
    "htk": {"scale": "htk", "norm": "none", "fmin": 0.0, "fmax": None},
}
"""Band layouts by name. All share the frame grid (periodic Hann window, no centring)."""


def mel_weights(convention: str, n_bands: int, n_fft: int, sample_rate: int,
                fmin: float | None = None, fmax: float | None = None) -> torch.Tensor:
    """Mel weights ``(n_bands, n_fft // 2 + 1)`` (float64) of a named convention.

    ``fmin``/``fmax`` (Hz) override the convention's band limits; ``None`` keeps them
    (a convention's ``None`` upper limit is the Nyquist frequency). Bands that no FFT bin
    reaches are refused (:func:`~.design.check_bands_hold_bins`).
    """
    if convention not in CONVENTIONS:
        raise VocalfrontError(f"unknown mel convention {convention!r}; use one of {sorted(CONVENTIONS)}")
    layout = CONVENTIONS[convention]
    low = layout["fmin"] if fmin is None else fmin
    high = fmax if fmax is not None else (layout["fmax"] or sample_rate / 2)
    check_band_limits(low, high, sample_rate)
    scale: MelScale = layout["scale"]
    norm: MelNorm = layout["norm"]
    edges = mel_band_edges(n_bands, low, high, scale)
    check_bands_hold_bins(edges[:-2], edges[2:], sample_rate, n_fft)
    return torch.from_numpy(triangular_filterbank(edges, n_fft, sample_rate, norm))


class MelSpectrogram(FrontEnd):
    """Mel-spectrogram: STFT (periodic Hann, no centring), ``|X|**power``, mel weighting.

    ``power=2`` (default) weights the squared magnitude, as in the paper's comparison;
    ``power=1`` weights the magnitude, as Schlüter's original baseline. ``convention`` picks the
    band layout (see :data:`CONVENTIONS`). Output ``(batch, n_bands, frames)`` on the common grid.
    """

    def __init__(self, convention: str = "schlueter", n_bands: int = 80, power: float = 2.0,
                 fmin: float | None = None, fmax: float | None = None,
                 sample_rate: int = SAMPLE_RATE, hop: int = HOP, window: int = WINDOW):
        super().__init__(n_bands, sample_rate, hop, window)
        if power not in (1.0, 2.0):
            raise VocalfrontError(f"power must be 1 (magnitude) or 2 (power), got {power}")
        self.convention = convention
        self.power = float(power)
        self.fmin = fmin
        self.fmax = fmax
        weights = mel_weights(convention, n_bands, window, sample_rate, fmin, fmax)
        self.register_buffer("weights", weights.float(), persistent=False)
        self.register_buffer("stft_window", torch.hann_window(window, dtype=torch.float64).float(),
                             persistent=False)

    def power_spectrogram(self, waveform: torch.Tensor) -> torch.Tensor:
        """``|STFT|**2`` as ``(batch, window // 2 + 1, frames)``."""
        window = self.stft_window.to(waveform.dtype)
        spec = torch.stft(waveform, n_fft=self.grid.window, hop_length=self.grid.hop,
                          window=window, center=False, return_complex=True)
        return spec.real.square() + spec.imag.square()

    def band_energies(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = self.power_spectrogram(waveform)
        if self.power == 1.0:
            # clamp keeps the square root's gradient finite on silence
            spec = spec.clamp_min(1e-20).sqrt()
        return torch.matmul(self.weights.to(spec.dtype), spec)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "convention": self.convention, "n_bands": self.n_bands,
                "power": self.power, "fmin": self.fmin, "fmax": self.fmax}
