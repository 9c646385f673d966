"""Mel scales and triangular mel filter banks in the conventions users meet.

- ``htk``: mel = 1127 ln(1 + f / 700) (= 2595 log10(1 + f / 700), torchaudio's default).
- ``slaney``: linear below 1 kHz (3 mel per 200/3 Hz), logarithmic above (librosa's default).

Triangles are built on the frequencies of an FFT's bins, as librosa and torchaudio do: band ``i``
rises from mel point ``i`` to ``i + 1`` and falls to ``i + 2`` (``n_bands + 2`` points equally
spaced on the mel scale between ``fmin`` and ``fmax``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

MelScale = Literal["htk", "slaney"]
MelNorm = Literal["none", "slaney", "unit-sum"]

_SLANEY_F_SP = 200.0 / 3
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float, scale: MelScale = "htk") -> np.ndarray:
    """Frequency in Hz to mel on the given scale."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 1127.0 * np.log1p(hz / 700.0)
    mel = hz / _SLANEY_F_SP
    log_part = _SLANEY_MIN_LOG_MEL + np.log(np.maximum(hz, 1e-12) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return np.where(hz >= _SLANEY_MIN_LOG_HZ, log_part, mel)


def mel_to_hz(mel: np.ndarray | float, scale: MelScale = "htk") -> np.ndarray:
    """Mel on the given scale to frequency in Hz."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * np.expm1(mel / 1127.0)
    hz = _SLANEY_F_SP * mel
    log_part = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mel - _SLANEY_MIN_LOG_MEL))
    return np.where(mel >= _SLANEY_MIN_LOG_MEL, log_part, hz)


def mel_band_edges(n_bands: int, fmin: float, fmax: float, scale: MelScale = "htk") -> np.ndarray:
    """``n_bands + 2`` frequencies in Hz, equally spaced in mel from ``fmin`` to ``fmax``."""
    mels = np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_bands + 2)
    return mel_to_hz(mels, scale)


def triangular_filterbank(
    edges_hz: np.ndarray, n_fft: int, sample_rate: int, norm: MelNorm = "none"
) -> np.ndarray:
    """Triangular weights ``(n_bands, n_fft // 2 + 1)`` on the rfft bin frequencies.

    ``edges_hz`` holds ``n_bands + 2`` increasing frequencies (Hz); band ``i`` is 0 at
    ``edges_hz[i]``, 1 at ``edges_hz[i + 1]`` and 0 again at ``edges_hz[i + 2]``.
    ``norm``: ``"none"`` (peak 1, torchaudio's default), ``"slaney"`` (area-normalised,
    ``2 / (f[i+2] - f[i])``, librosa's default) or ``"unit-sum"`` (weights of each band sum to 1,
    Schlüter's).
    """
    edges_hz = np.asarray(edges_hz, dtype=np.float64)
    bin_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)  # k sample_rate / n_fft, odd n_fft too
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz - lower) / (centre - lower)
    falling = (upper - bin_hz) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (upper - lower)
    elif norm == "unit-sum":
        sums = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(sums > 0, sums, 1.0)
    elif norm != "none":
        raise ValueError(f"unknown mel norm {norm!r}; use 'none', 'slaney' or 'unit-sum'")
    return weights
