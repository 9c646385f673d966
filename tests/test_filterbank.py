"""The designed filter bank: it reproduces the power mel-spectrogram, blocks equal one-shot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocalfront.frontends import FilterBank, MelSpectrogram, build_frontend
from vocalfront.frontends.design import band_power_response, hann_power_response, support_filter


@pytest.fixture(scope="module")
def sizes() -> list[float]:
    return build_frontend("fb").averaging_sizes().tolist()


def _noise(samples: int, batch: int = 1, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, samples))).to(dtype)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_hann_power_response_matches_a_direct_transform():
    window = 64
    g = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    freq = np.linspace(-0.5, 0.5, 301)
    direct = np.abs(np.exp(-2j * np.pi * freq[:, None] * np.arange(window)) @ g) ** 2
    closed = hann_power_response(torch.from_numpy(freq), window).numpy()
    np.testing.assert_allclose(closed, direct, rtol=1e-9, atol=1e-9)


def _tail_energy(support_bins: float, context: int = 4096, grid: int = 65536) -> float:
    """Largest fraction of a band filter's energy farther than ``context`` samples from t = 0."""
    bank = build_frontend("fb-noavg", support_bins=support_bins)
    far = np.abs(np.fft.fftfreq(grid, 1 / grid)) > context
    worst = 0.0
    for bins, weights in zip(*bank.triangle_table(), strict=True):
        energy = np.abs(np.fft.ifft(support_filter(bins, weights, 1024, grid, support_bins))) ** 2
        worst = max(worst, energy[far].sum() / energy.sum())
    return worst


def test_filters_are_smooth_so_their_tails_end_within_the_block_context():
    # cut at the window's first nulls (the design before 0.2) the filters kink and ring 700x longer
    assert _tail_energy(4.0) < 1e-9
    assert _tail_energy(2.0) > 1e-7


def test_filters_keep_the_level_condition_out_to_the_first_nulls():
    bank = build_frontend("fb-noavg")
    grid = 8192
    freq = np.fft.fftfreq(grid)
    for bins, weights in list(zip(*bank.triangle_table(), strict=True))[::7]:
        used = weights > 0
        inside = (freq >= (bins[used].min() - 2) / 1024) & (freq <= (bins[used].max() + 2) / 1024)
        power = band_power_response(torch.from_numpy(freq[inside][None]),
                                    torch.from_numpy(bins[None, used]),
                                    torch.from_numpy(weights[None, used]), 1024)[0].numpy()
        filter_hat = support_filter(bins, weights, 1024, grid, bank.support_bins)
        np.testing.assert_allclose(filter_hat[inside] ** 2, power, rtol=1e-9, atol=1e-12 * power.max())
        # beyond, only the window's sidelobes, rolled off: under -25 dB of the band's peak power
        assert float((filter_hat[~inside] ** 2).max()) < 10 ** -2.5 * power.max()


def test_fb_reproduces_the_power_mel_spectrogram_on_noise(sizes):
    x = _noise(22050 * 4)
    mel = MelSpectrogram()(x)
    fb = FilterBank(averaging_sizes=sizes)(x)
    assert _relative(fb, mel) < 0.03
    level = (fb.mean(-1) / mel.mean(-1))[0]
    assert float((level - 1).abs().max()) < 0.03


def test_fb_matches_mel_on_a_tone_at_every_band_centre(sizes):
    bank = FilterBank(averaging_sizes=sizes)
    centres = bank.band_edges_hz()[1].detach().numpy()
    t = np.arange(22050) / 22050
    tones = torch.from_numpy(np.stack([np.sin(2 * np.pi * f * t) for f in centres[::8]]))
    mel = MelSpectrogram()(tones)[..., 5:-5]
    fb = bank(tones)[..., 5:-5]
    for row, band in enumerate(range(0, 80, 8)):
        assert float(fb[row, band].mean() / mel[row, band].mean()) == pytest.approx(1.0, abs=0.02)


def test_averaging_matters_without_it_the_error_is_much_larger(sizes):
    x = _noise(22050 * 2)
    mel = MelSpectrogram()(x)
    with_averaging = _relative(FilterBank(averaging_sizes=sizes)(x), mel)
    without = _relative(build_frontend("fb-noavg")(x), mel)
    assert without > 5 * with_averaging


def test_fitted_averaging_lengths_are_as_designed(sizes):
    lengths = np.array(sizes)
    assert lengths.min() > 650 and lengths.max() < 1100
    assert lengths[-10:].mean() > lengths[:10].mean()  # wide high bands average longer


class _FullRate(FilterBank):
    """The same bank computed without decimation: every band at the full sample rate."""

    def _decimation(self, widths: torch.Tensor, sizes: torch.Tensor) -> list[int]:
        return [1] * len(sizes)


@pytest.mark.parametrize(("averaging", "signal", "bound"), [
    ("hann2", "noise", 2e-5), ("hann2", "impulse", 5e-3), ("none", "impulse", 1e-12)])
def test_decimated_computation_equals_full_rate(sizes, averaging, signal, bound):
    # what differs is the averaging window's leakage beyond the bandwidth the steps assume,
    # largest for broadband |y|² (an impulse); without averaging, samples of y are exact
    x = _noise(22050 * 2) if signal == "noise" else torch.eye(1, 22050 * 2, dtype=torch.float64)
    kwargs = {"averaging": averaging}
    if averaging == "hann2":
        kwargs["averaging_sizes"] = sizes
    decimated = FilterBank(**kwargs)
    assert max(group.step for group in decimated._plan(100).groups) > 1
    assert _relative(decimated(x), _FullRate(**kwargs)(x)) < bound


@pytest.mark.parametrize("name", ["fb", "fb-noavg"])
def test_blocks_equal_one_shot_processing(sizes, name):
    x = _noise(22050 * 12)
    kwargs = {"averaging_sizes": sizes} if name == "fb" else {}
    one_shot = build_frontend(name, block_frames=4000, **kwargs)(x)
    blocks = build_frontend(name, block_frames=97, **kwargs)(x)
    assert blocks.shape == one_shot.shape
    # what differs is the filters' far tails beyond the blocks' context
    assert _relative(blocks, one_shot) < 1e-5
    per_band_level = one_shot.mean(-1, keepdim=True)
    assert float(((blocks - one_shot).abs() / per_band_level).max()) < 1e-4


def test_energy_scales_with_gain_squared(sizes):
    bank = FilterBank(averaging_sizes=sizes)
    x = _noise(8000)
    torch.testing.assert_close(bank(3.0 * x), 9.0 * bank(x), rtol=1e-10, atol=0)


def test_shifting_the_signal_by_one_hop_shifts_the_frames(sizes):
    bank = FilterBank(averaging_sizes=sizes)
    x = _noise(22050 * 2)
    shifted = torch.nn.functional.pad(x, (315, 0))
    a, b = bank(x)[..., 8:-8], bank(shifted)[..., 9:-8]
    assert _relative(b[..., : a.shape[-1]], a) < 1e-6


def test_other_hops_keep_the_frame_grid(sizes):
    x = _noise(22050)
    for hop in (630, 1260):
        fb = FilterBank(averaging_sizes=sizes, hop=hop)(x)
        mel = MelSpectrogram(hop=hop)(x)
        assert fb.shape == mel.shape
        assert _relative(fb, mel) < 0.03


def test_float32_and_float64_agree(sizes):
    bank = FilterBank(averaging_sizes=sizes)
    x = _noise(22050)
    torch.testing.assert_close(bank(x.float()).double(), bank(x), rtol=1e-4, atol=1e-9)


def test_get_config_round_trips_without_refitting(sizes):
    bank = build_frontend("fb-gauss")
    rebuilt = build_frontend(**bank.get_config())
    x = _noise(6000)
    torch.testing.assert_close(rebuilt(x), bank(x), rtol=0, atol=0)


def test_gaussian_formula_widths_follow_q_equals_a_a_plus_2_lambda_over_lambda():
    bank = build_frontend("fb-gauss")
    sigmas = bank.averaging_sizes().numpy()
    # wide bands (large λ) average over more of the window than narrow ones, bounded by |g|²
    assert sigmas[-1] > sigmas[0]
    assert sigmas.max() < 1024 / math.sqrt(8)


@pytest.mark.parametrize("bad", [{"averaging": "boxcar"}, {"learn": ("gain",)},
                                 {"averaging": "none", "learn": ("avg",)}])
def test_invalid_configuration_is_a_clear_error(bad):
    with pytest.raises(ValueError):
        FilterBank(**bad)
