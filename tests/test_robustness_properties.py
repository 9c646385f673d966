"""Properties of the front-ends on arbitrary bounded signals (hypothesis).

Signals: at least one window (1024 samples) long, values in [-1, 1]: uniform noise of any level,
mostly-zero arrays with a few arbitrary samples, constants, and arrays drawn value by value.
Front-ends: ``mel``, ``fb``, ``fb-noavg`` and a filter bank with every part learnable (centres,
bandwidths, averaging lengths, free responses), at its initial parameters. Each test runs its
property over a small number of examples and records that number (``examples``) for the
reliability report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vocalfront.frontends import FilterBank, build_frontend
from vocalfront.frontends.filterbank import LEARNABLE
from vocalfront.grid import DEFAULT_GRID

ALL = ("mel", "fb", "fb-noavg", "fb-learn-all")
BANKS = ("fb", "fb-noavg", "fb-learn-all")
MAX_LENGTH = 6000
"""Longest signal drawn (samples): 16 frames, enough for several blocks of a few frames."""


@pytest.fixture(scope="module")
def designed_sizes() -> list[float]:
    return build_frontend("fb").averaging_sizes().tolist()


def make_frontend(name: str, sizes: list[float], **kwargs: Any) -> torch.nn.Module:
    """A front-end by test name; filter banks reuse the designed averaging sizes (no refitting)."""
    if name == "mel":
        return build_frontend("mel", **kwargs)
    if name == "fb-learn-all":
        return FilterBank(learn=LEARNABLE, averaging_sizes=sizes, **kwargs)
    if name == "fb-noavg":
        return build_frontend("fb-noavg", **kwargs)
    return build_frontend("fb", averaging_sizes=sizes, **kwargs)


@pytest.fixture(scope="module")
def frontends(designed_sizes) -> dict[str, torch.nn.Module]:
    return {name: make_frontend(name, designed_sizes) for name in ALL}


@st.composite
def noise(draw, min_level: float = 0.0) -> np.ndarray:
    """Uniform white noise of a level (peak) from ``min_level`` to 1."""
    length = draw(st.integers(DEFAULT_GRID.window, MAX_LENGTH))
    level = draw(st.floats(min_level, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return level * rng.uniform(-1.0, 1.0, length)


@st.composite
def mostly_zero(draw) -> np.ndarray:
    """Zeros with up to 8 arbitrary samples (impulses)."""
    signal = np.zeros(draw(st.integers(DEFAULT_GRID.window, MAX_LENGTH)))
    positions = draw(st.lists(st.integers(0, len(signal) - 1), min_size=1, max_size=8))
    signal[positions] = draw(st.lists(st.floats(-1.0, 1.0), min_size=len(positions),
                                      max_size=len(positions)))
    return signal


@st.composite
def constant(draw) -> np.ndarray:
    return np.full(draw(st.integers(DEFAULT_GRID.window, MAX_LENGTH)), draw(st.floats(-1.0, 1.0)))


@st.composite
def sample_by_sample(draw) -> np.ndarray:
    length = draw(st.integers(DEFAULT_GRID.window, DEFAULT_GRID.window + 3 * DEFAULT_GRID.hop))
    return draw(arrays(np.float64, length, elements=st.floats(-1.0, 1.0)))


SIGNALS = st.one_of(noise(), mostly_zero(), constant(), sample_by_sample())
"""Bounded signals, float64 ``(samples,)`` with ``samples >= 1024`` and values in [-1, 1]."""
UNDERFLOW = 1e-290
"""Energies below this are float64 underflow noise, not compared relatively."""


def check_property(check: Callable[..., None], strategy: st.SearchStrategy, max_examples: int) -> int:
    """Run ``check`` on examples of ``strategy`` (hypothesis, shrinking on failure); the count run."""
    count = 0

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(strategy)
    def run(example: Any) -> None:
        nonlocal count
        count += 1
        with torch.no_grad():
            check(example)

    run()
    return count


def energies(frontend: torch.nn.Module, signal: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return frontend(torch.from_numpy(signal).to(dtype)[None])[0]


@pytest.mark.parametrize("name", ALL)
def test_bounded_signals_give_finite_nonnegative_energies_on_the_grid(name, frontends, record_property):
    frontend = frontends[name]

    def check(example: tuple[np.ndarray, torch.dtype]) -> None:
        signal, dtype = example
        out = energies(frontend, signal, dtype)
        assert out.shape == (80, 1 + (len(signal) - 1024) // 315)
        assert out.dtype == dtype
        assert bool(torch.isfinite(out).all())
        assert bool((out >= 0).all())

    record_property("examples", check_property(
        check, st.tuples(SIGNALS, st.sampled_from([torch.float32, torch.float64])), 20))


def relative_difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    """``|got - expected| / |expected|`` (Frobenius), 0 where both are below underflow."""
    return float(torch.linalg.norm(got - expected)) / max(float(torch.linalg.norm(expected)), UNDERFLOW)


@pytest.mark.parametrize("name", BANKS)
def test_small_blocks_equal_one_shot_processing(name, frontends, designed_sizes, record_property):
    one_shot = frontends[name]
    blocked: dict[int, torch.nn.Module] = {}

    def check(example: tuple[np.ndarray, int]) -> None:
        signal, block_frames = example
        if block_frames not in blocked:
            blocked[block_frames] = make_frontend(name, designed_sizes, block_frames=block_frames)
        expected = energies(one_shot, signal, torch.float64)
        assert relative_difference(energies(blocked[block_frames], signal, torch.float64),
                                   expected) < 2e-4

    record_property("examples", check_property(check, st.tuples(SIGNALS, st.integers(1, 6)), 20))


TRANSIENTS = {
    "fb-constant": ("fb", np.ones(6000)),
    "fb-dc-offset": ("fb", 0.8 + 0.1 * np.random.default_rng(0).uniform(-1.0, 1.0, 6000)),
    "fb-noavg-impulse-at-start": ("fb-noavg", np.eye(1, 6000)[0]),
}
"""Signals that start with a transient. With filters cut at the window's first nulls
(``support_bins=2``, before version 0.2) blocks of one frame differed from one-shot processing by
3 % (DC offset), 8 % (constant) and 1e-3 (fb-noavg, impulse at the first sample): the cut left
filter tails longer than the block context."""


@pytest.mark.parametrize(("name", "signal"), TRANSIENTS.values(), ids=TRANSIENTS.keys())
def test_small_blocks_equal_one_shot_processing_after_a_transient(name, signal, frontends,
                                                                  designed_sizes):
    one_shot = energies(frontends[name], signal, torch.float64)
    blocked = energies(make_frontend(name, designed_sizes, block_frames=1), signal, torch.float64)
    assert relative_difference(blocked, one_shot) < 2e-4


@pytest.mark.parametrize("name", ALL)
def test_energy_scales_with_the_square_of_the_gain(name, frontends, record_property):
    """Up to float64 rounding, relative to the largest possible energy of a frame of the signal."""
    frontend = frontends[name]

    def check(example: tuple[np.ndarray, float]) -> None:
        signal, gain = example
        base = energies(frontend, signal, torch.float64)
        scaled = energies(frontend, gain * signal, torch.float64)
        full_frame = DEFAULT_GRID.window**2 * float(np.max(signal**2))
        tolerance = 1e-12 * gain**2 * full_frame + UNDERFLOW
        assert float((scaled - gain**2 * base).abs().max()) <= tolerance

    record_property("examples", check_property(check, st.tuples(SIGNALS, st.floats(1e-3, 1e3)), 20))
