"""The mel front-end: conventions against references, the frame grid, bad input, silence."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from vocalfront.frontends import MelSpectrogram, build_frontend
from vocalfront.grid import DEFAULT_GRID


def _noise(samples: int = 22050, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, samples)))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("window", [1024, 1023])  # odd: triangles on the bins k 22050 / 1023 Hz
def test_librosa_convention_equals_librosa_melspectrogram(window):
    x = _noise()
    ours = build_frontend("mel", convention="librosa", window=window)(x).numpy()
    reference = librosa.feature.melspectrogram(
        y=x.numpy(), sr=22050, n_fft=window, hop_length=315, center=False, n_mels=80, window="hann"
    )
    assert ours.shape == reference.shape
    assert _relative(ours, reference) < 1e-5


def test_htk_convention_equals_librosa_htk_unnormalised_filters():
    x = _noise(batch=1)
    ours = build_frontend("mel", convention="htk")(x).numpy()[0]
    reference = librosa.feature.melspectrogram(
        y=x.numpy()[0], sr=22050, n_fft=1024, hop_length=315, center=False, n_mels=80,
        window="hann", htk=True, norm=None,
    )
    assert _relative(ours, reference) < 1e-5


def _schlueter_by_hand(x: np.ndarray, power: float) -> np.ndarray:
    """Independent construction: 82 HTK mel points 27.5-8000 Hz, unit-sum triangles, numpy STFT."""
    mel = np.linspace(1127 * np.log(1 + 27.5 / 700), 1127 * np.log(1 + 8000 / 700), 82)
    hz = 700 * (np.exp(mel / 1127) - 1)
    bins = np.arange(513) * 22050 / 1024
    triangles = np.zeros((80, 513))
    for band in range(80):
        low, mid, high = hz[band : band + 3]
        for k, f in enumerate(bins):
            if low < f <= mid:
                triangles[band, k] = (f - low) / (mid - low)
            elif mid < f < high:
                triangles[band, k] = (high - f) / (high - mid)
        triangles[band] /= triangles[band].sum()
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    frames = 1 + (len(x) - 1024) // 315
    spectra = np.stack([np.abs(np.fft.rfft(x[315 * b : 315 * b + 1024] * window)) for b in range(frames)])
    return triangles @ (spectra.T ** power)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_schlueter_convention_equals_independent_numpy_construction(power):
    x = _noise(batch=1)
    ours = build_frontend("mel", convention="schlueter", power=power)(x).numpy()[0]
    assert _relative(ours, _schlueter_by_hand(x.numpy()[0], power)) < 1e-6


@pytest.mark.parametrize("samples, frames", [(1024, 1), (1024 + 314, 1), (1024 + 315, 2), (22050, 67)])
def test_frame_count_follows_the_grid_rule(samples, frames):
    assert DEFAULT_GRID.num_frames(samples) == frames
    assert MelSpectrogram()(torch.zeros(samples)).shape == (1, 80, frames)


def test_get_config_round_trips():
    mel = build_frontend("mel", convention="librosa", power=1.0, fmax=7000.0)
    rebuilt = build_frontend(**mel.get_config())
    x = _noise(4096).float()
    assert torch.equal(mel(x), rebuilt(x))


def test_unknown_convention_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown mel convention"):
        MelSpectrogram(convention="kaldi")
