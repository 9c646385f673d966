"""The multirate plan on its own, and the fast path against a plain per-band reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vocalfront.frontends import FilterBank, build_frontend
from vocalfront.frontends.design import (
    averaging_reach,
    band_power_response,
    support_envelope,
    triangle_weights,
)
from vocalfront.frontends.multirate import (
    CACHE_BYTES,
    PlanCache,
    block_multiple,
    decimation_steps,
    fold,
)

SR = 22050


def reference_energies(bank: FilterBank, signal: np.ndarray) -> np.ndarray:
    """Band energies ``(bands, frames)`` computed the plain way, band by band at the full rate.

    The whole signal, zero-padded so that circular filtering is linear, is transformed once;
    each band's filter ``sqrt(Σ_k Λ(k)|Ĝ(f - k/M)|²)`` times its support envelope is applied on
    that FFT's grid, the inverse transform squared, and its averaging window (sampled at every
    sample, normalised there) summed around each frame centre.
    """
    grid = bank.grid
    pad = 2 * bank.context
    spectrum = np.fft.fft(np.pad(signal, pad))
    freq = torch.from_numpy(np.fft.fftfreq(spectrum.size))
    bin_hz = grid.sample_rate / grid.window
    with torch.no_grad():
        lower, centre, upper = bank.band_edges_hz()
        sizes = bank.averaging_sizes()
        reach = math.ceil(averaging_reach(float(sizes.max()), bank.averaging))
        offsets = np.arange(-reach, reach + 1)
        windows = bank.averaging_window(torch.from_numpy(offsets).double(), sizes).numpy()
    first = torch.floor(lower / bin_hz) + 1  # the STFT bins strictly inside each triangle
    last = torch.maximum(torch.ceil(upper / bin_hz) - 1, first)
    centres = pad + grid.frame_centres(grid.num_frames(signal.size))
    energies = []
    for band in range(bank.n_bands):
        one = slice(band, band + 1)
        bins = torch.arange(int(first[band]), int(last[band]) + 1, dtype=torch.float64)[None]
        tri = triangle_weights(bins, lower[one], centre[one], upper[one], bin_hz, bank.norm)
        envelope = support_envelope(freq, first[band], last[band], bank.support_bins, grid.window)
        inside = envelope != 0
        power = band_power_response(freq[inside][None], bins, tri, grid.window)[0]
        response = np.zeros(spectrum.size, dtype=complex)
        response[inside.numpy()] = (torch.sqrt(power + 1e-12 * power.max()) * envelope[inside]).numpy()
        squared = np.abs(np.fft.ifft(spectrum * response)) ** 2
        energies.append(squared[centres[:, None] + offsets[None, :]] @ windows[band])
    return np.stack(energies)


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    t = np.arange(2 * SR) / SR
    chirp = np.sin(2 * np.pi * (50 * t + (8000 - 50) / 4 * t**2))  # 50 Hz to 8 kHz in 2 s
    tones = sum(np.sin(2 * np.pi * 196 * h * t) / h for h in range(1, 12))
    bursts = tones * (np.sin(2 * np.pi * 1.5 * t) > 0) + 0.01 * rng.standard_normal(t.size)
    return {"noise": rng.standard_normal(t.size), "chirp": chirp, "tone bursts": bursts}


def _learned_centres() -> FilterBank:
    bank = build_frontend("fb-learn-cf")
    with torch.no_grad():
        bank.centre_logits.add_(0.02 * torch.randn(80, generator=torch.Generator().manual_seed(3),
                                                   dtype=torch.float64))
    return bank


def _learned_widths_and_lengths() -> FilterBank:
    bank = FilterBank(learn=("bw", "avg"))
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for parameter in (bank.width_logits, bank.avg_logits):
            parameter.add_(0.3 * torch.randn(80, generator=generator, dtype=torch.float64))
    return bank


BANKS = {"fb": lambda: build_frontend("fb"), "fb-noavg": lambda: build_frontend("fb-noavg"),
         "fb-learn-cf, moved": _learned_centres, "bw and avg learned, moved": _learned_widths_and_lengths}


@pytest.mark.parametrize("block_frames", [1024, 40])
@pytest.mark.parametrize("bank_name", BANKS)
def test_fast_path_equals_the_plain_per_band_reference(bank_name, block_frames):
    bank = BANKS[bank_name]()
    bank.block_frames = block_frames
    for name, signal in _signals().items():
        with torch.no_grad():
            fast = bank(torch.from_numpy(signal)[None])[0].numpy()
        reference = reference_energies(bank, signal)
        assert fast.shape == reference.shape
        # without averaging the decimated samples of |y|² are exact; with it, what differs is
        # the averaging window's sampling (every step samples vs every sample) and the filters'
        # far tails beyond a block's context
        bound = 1e-6 if bank.averaging == "none" else 3e-5
        error = np.linalg.norm(fast - reference) / np.linalg.norm(reference)
        assert error < bound, f"{bank_name}, {name}: relative error {error:.2e}"


def test_decimation_picks_the_coarsest_alias_free_divisor_of_the_hop():
    hop = 315
    divisors = [d for d in range(1, hop + 1) if hop % d == 0]
    bandwidths = torch.tensor([1e-4, 0.01, 0.02, 0.05, 0.3, 0.99, 2.0], dtype=torch.float64)
    steps = decimation_steps(bandwidths, hop)
    for bandwidth, step in zip(bandwidths.tolist(), steps, strict=True):
        assert hop % step == 0
        coarser = [d for d in divisors if d > step]
        if bandwidth <= 1:
            assert 1 / step >= bandwidth  # alias-free
            assert not coarser or 1 / coarser[0] < bandwidth  # and no coarser step is
        else:
            assert step == 1  # wider than the sample rate: the full rate is the best there is
    assert steps[0] == hop


def test_block_lengths_climb_a_ladder_of_fast_sizes_in_steps_of_at_most_a_quarter():
    sizes = [block_multiple(n) for n in range(1, 5000)]
    assert all(size >= n for n, size in enumerate(sizes, start=1))
    for size in set(sizes):
        odd = size // 2 ** (size.bit_length() - 3) if size >= 8 else size
        assert size >= 4 and odd in (4, 5, 6, 7) and size % (size // odd) == 0
    ladder = sorted(set(sizes))
    assert max(b / a for a, b in itertools.pairwise(ladder)) <= 1.25


def test_folding_samples_the_band_signal_exactly_at_the_decimated_instants():
    generator = torch.Generator().manual_seed(0)
    coeffs = torch.randn(3, 50, dtype=torch.complex128, generator=generator)
    block, step = 120, 4
    full = torch.fft.ifft(torch.nn.functional.pad(coeffs, (0, block - 50)), norm="forward")
    decimated = torch.fft.ifft(fold(coeffs, block // step), norm="forward")
    torch.testing.assert_close(decimated, full[:, ::step], rtol=1e-12, atol=1e-12)
    assert fold(coeffs, 64) is coeffs  # narrow enough: nothing to fold


@pytest.mark.parametrize("frames", [1, 100, 5000])
def test_a_plan_covers_its_frames_with_context_and_every_band_once(frames):
    bank = build_frontend("fb")
    plan = bank._plan(frames)
    hop = bank.grid.hop
    assert plan.frames == min(frames, bank.block_frames)
    assert plan.pre >= bank.context and plan.pre % hop == 0 and plan.block % hop == 0
    assert plan.block >= 2 * plan.pre + hop * (plan.frames - 1) + 1
    bands = torch.cat([group.bands for group in plan.groups])
    assert sorted(bands.tolist()) == list(range(bank.n_bands))
    assert torch.equal(bands[plan.order], torch.arange(bank.n_bands))
    for group in plan.groups:
        assert hop % group.step == 0 and group.length * group.step == plan.block


def test_signals_of_similar_length_share_one_plan():
    bank = build_frontend("fb")
    assert bank._plan(100).groups is bank._plan(98).groups
    assert bank._plan(100).groups is not bank._plan(400).groups


def test_the_cache_keeps_the_most_recent_entries_within_its_bound():
    cache = PlanCache(max_bytes=3 * 800)
    made = []

    def tensor(key):
        made.append(key)
        return torch.zeros(100, dtype=torch.float64)  # 800 bytes

    for key in range(5):
        cache.get((key,), lambda key=key: tensor(key))
    assert len(cache) == 3 and cache.nbytes == 2400
    cache.get((2,), lambda: tensor("again"))  # kept: not made again, now the most recent
    cache.get((5,), lambda: tensor(5))
    cache.get((3,), lambda: tensor(3))  # the least recent was dropped
    assert made == [0, 1, 2, 3, 4, 5, 3]
    huge = cache.get(("huge",), lambda: torch.zeros(1000, dtype=torch.float64))
    assert len(cache) == 1 and cache.get(("huge",), lambda: tensor("never")) is huge


def test_planning_many_lengths_stays_within_the_cache_bound():
    bank = build_frontend("fb")
    for frames in (1024, 700, 500, 300, 100, 40):
        bank(torch.zeros(1, bank.grid.num_samples(frames)))
    assert bank._cache.nbytes <= CACHE_BYTES
