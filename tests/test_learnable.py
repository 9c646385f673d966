"""Learnable filter banks: equal to ``fb`` at initialisation, finite and exact gradients, parameters
kept in their ranges by the parameterisation alone; their inspection (``frontends.inspection``)."""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pytest
import torch
from torch.func import functional_call

from vocalfront.errors import VocalfrontError
from vocalfront.frontends import FilterBank, build_frontend
from vocalfront.frontends.design import (
    BIN_MARGIN,
    band_power_response,
    bins_inside,
    lowest_centre,
    narrowest_half_width,
)
from vocalfront.frontends.filterbank import LEARNABLE
from vocalfront.frontends.inspection import (
    frontend_parameters,
    movement_summary,
    plot_filterbank,
    power_responses,
)
from vocalfront.grid import DEFAULT_GRID
from vocalfront.melscale import hz_to_mel, mel_band_edges, mel_to_hz

VARIANTS = ["fb-learn-cf", "fb-learn-avg", "fb-learn-bw", "fb-free"]


@pytest.fixture(scope="module")
def designed() -> FilterBank:
    """``fb`` with blocks no longer than its filters and averaging need (faster to plan)."""
    return build_frontend("fb", context=0)


@pytest.fixture(scope="module")
def designed_sizes(designed: FilterBank) -> list[float]:
    """The designed averaging lengths (samples), so that variants need not fit them again."""
    return designed.averaging_sizes().tolist()


@pytest.fixture(scope="module")
def all_learnable(designed_sizes: list[float]) -> FilterBank:
    return FilterBank(learn=LEARNABLE, averaging_sizes=designed_sizes)


def music_like(samples: int, generator: torch.Generator) -> torch.Tensor:
    """``(2, samples)`` float32: noise plus a harmonic tone (220 Hz, 12 partials)."""
    time = torch.arange(samples) / DEFAULT_GRID.sample_rate
    tone = sum(torch.sin(2 * math.pi * 220 * k * time) / k for k in range(1, 13))
    return 0.05 * torch.randn(2, samples, generator=generator) + 0.2 * tone


@pytest.mark.parametrize("name", [*VARIANTS, "all parts"])
def test_learnable_variant_equals_the_designed_bank_at_initialisation(name, designed, designed_sizes):
    if name == "all parts":
        frontend = FilterBank(learn=LEARNABLE, averaging_sizes=designed_sizes, context=0)
    else:
        frontend = build_frontend(name, averaging_sizes=designed_sizes, context=0)
    assert any(p.requires_grad for p in frontend.parameters())
    waveform = music_like(DEFAULT_GRID.num_samples(10), torch.Generator().manual_seed(0))
    reference = designed(waveform)
    with torch.no_grad():
        energies = frontend(waveform)
    difference = (energies - reference).abs() / reference.amax(dim=-1, keepdim=True)
    assert float(difference.max()) < 1e-6


def edge_signal(kind: str) -> torch.Tensor:
    """One second (22050 samples, float32) of an input at the edge of the range."""
    samples = DEFAULT_GRID.sample_rate
    if kind == "silence":
        return torch.zeros(samples)
    if kind == "clipping":  # full-scale square wave at 441 Hz
        phase = torch.arange(samples) * (441 / samples)
        return torch.where(torch.frac(phase) < 0.5, 1.0, -1.0)
    if kind == "dc":
        return torch.ones(samples)
    impulse = torch.zeros(samples)
    impulse[samples // 2] = 1.0
    return impulse


@pytest.mark.parametrize("kind", ["silence", "clipping", "dc", "impulse"])
def test_edge_inputs_give_finite_energies_and_gradients(kind, all_learnable):
    waveform = edge_signal(kind)[None].requires_grad_()
    energies = all_learnable(waveform)
    assert energies.shape == (1, 80, DEFAULT_GRID.num_frames(waveform.shape[1]))
    assert bool(torch.isfinite(energies).all()) and bool((energies >= 0).all())
    params = list(all_learnable.parameters())
    # the log compression's derivative is large where energies vanish: it must stay finite
    grads = torch.autograd.grad(torch.log(energies + 1e-7).sum(), [waveform, *params])
    for grad in grads:
        assert bool(torch.isfinite(grad).all())
    if kind != "silence":
        assert all(bool(grad.abs().sum() > 0) for grad in grads)


def test_ten_minutes_in_inference_mode_give_finite_energies(designed_sizes):
    frontend = FilterBank(learn=LEARNABLE, averaging_sizes=designed_sizes)
    samples = 600 * DEFAULT_GRID.sample_rate
    waveform = 0.1 * torch.randn(1, samples, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        energies = frontend(waveform)
    assert energies.shape == (1, 80, DEFAULT_GRID.num_frames(samples))
    assert energies.dtype == torch.float32
    assert bool(torch.isfinite(energies).all())


def tiny_bank() -> FilterBank:
    """4 bands, all parts learnable, moved away from the initial values to a generic point
    (the integer plan does not change under finite-difference steps there)."""
    frontend = FilterBank(n_bands=4, fmin=300, fmax=2000, learn=LEARNABLE, context=0,
                          sample_rate=22050)
    generator = torch.Generator().manual_seed(1)
    spread = {"centre_logits": 0.05, "width_logits": 0.3, "avg_logits": 0.3, "free_correction": 0.05}
    with torch.no_grad():
        for name, param in frontend.named_parameters():
            param.add_(spread[name] * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    return frontend


def test_gradients_match_finite_differences():
    frontend = tiny_bank()
    names = [name for name, _ in frontend.named_parameters()]

    def energies(waveform: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        return functional_call(frontend, dict(zip(names, params, strict=True)), (waveform,))

    generator = torch.Generator().manual_seed(2)
    waveform = torch.randn(1, 2000, generator=generator, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in frontend.parameters()]
    # every input matters (a zero Jacobian would make the check vacuous)
    grads = torch.autograd.grad(energies(waveform, *params).sum(), [waveform, *params])
    assert all(bool(grad.abs().sum() > 0) for grad in grads)
    # random projections of the full Jacobian (2000 samples, 8328 free-correction values) ...
    assert torch.autograd.gradcheck(energies, (waveform, *params), eps=1e-6, atol=1e-6, rtol=1e-4,
                                    fast_mode=True)
    # ... and every entry for the low-dimensional parameters
    small = [p.detach() if n == "free_correction" else p for n, p in zip(names, params, strict=True)]
    assert torch.autograd.gradcheck(energies, (waveform.detach(), *small), eps=1e-6, atol=1e-6,
                                    rtol=1e-4)


def assert_in_range(frontend: FilterBank) -> None:
    centres = frontend.centres_mel()
    assert bool((centres >= 0).all()) and bool((centres <= frontend.mel_top * (1 + 1e-12)).all())
    if frontend.sorted_centres:
        assert bool((torch.diff(centres) >= 0).all())
    factor = frontend.half_widths_mel() / frontend.init_half_widths
    low, high = frontend.bw_range
    assert bool((factor >= low).all()) and bool((factor <= high).all())
    sizes = frontend.averaging_sizes()
    low, high = frontend.avg_range
    assert bool((sizes >= low).all()) and bool((sizes <= high).all())
    assert_every_band_holds_a_bin(frontend)


def assert_every_band_holds_a_bin(frontend: FilterBank) -> None:
    with torch.no_grad():
        lower, _, upper = frontend.band_edges_hz().numpy()
    first, last = bins_inside(lower, upper, frontend.sample_rate / frontend.grid.window)
    assert bool((last >= first).all()), f"bands {np.flatnonzero(last < first)} hold no FFT bin"


@pytest.mark.parametrize("sorted_centres", [True, False])
def test_huge_steps_keep_parameters_in_range_and_outputs_finite(sorted_centres):
    # a 4x smaller frame grid: saturated parameters make bands up to 3x wider and averaging up to
    # the range's top, whose plan costs grow with the window length
    frontend = FilterBank(n_bands=32, learn=("avg", "bw", "cf"), sorted_centres=sorted_centres,
                          averaging_sizes=[256.0] * 32, avg_range=(8.0, 1024.0), hop=63, window=256,
                          context=0)
    generator = torch.Generator().manual_seed(3)
    waveform = music_like(DEFAULT_GRID.num_samples(10), generator)
    # Adam's first step moves every parameter by ±lr: here by ±50 along a random loss's gradient
    optimiser = torch.optim.Adam(frontend.parameters(), lr=50.0)
    energies = frontend(waveform)
    (energies * torch.rand(energies.shape, generator=generator)).sum().backward()
    optimiser.step()
    assert_in_range(frontend)
    assert bool(torch.isfinite(frontend(waveform)).all())
    # logits at ±50 in a random pattern: every sigmoid and softmax saturated
    with torch.no_grad():
        for param in frontend.parameters():
            param.copy_(50 * torch.randn(param.shape, generator=generator, dtype=param.dtype).sign())
    assert_in_range(frontend)
    energies = frontend(waveform)
    energies.sum().backward()
    assert bool(torch.isfinite(energies).all())
    assert all(bool(torch.isfinite(p.grad).all()) for p in frontend.parameters())


NARROW_LAYOUTS = {
    # six bands 14 mel wide (about 23 Hz at 1100 mel, 1.07 bins): moved lower, they get narrower
    "cf": {"n_bands": 6, "centres_mel": [1100.0, 1200.0, 1300.0, 1400.0, 1500.0, 1600.0],
           "half_widths_mel": [7.0] * 6},
    # 40 bands on a 256-sample window: at half their initial width, or moved down with half
    # their width, the low bands would be narrower than the bin spacing (86 Hz)
    "bw": {"n_bands": 40, "hop": 63, "window": 256},
    "bw+cf": {"n_bands": 40, "hop": 63, "window": 256},
}


@pytest.mark.parametrize("learn", NARROW_LAYOUTS)
def test_narrow_learnable_bands_never_fall_between_fft_bins(learn):
    frontend = FilterBank(learn=learn.split("+"), context=0, **NARROW_LAYOUTS[learn])
    waveform = music_like(4000, torch.Generator().manual_seed(5))
    for logit in np.linspace(-12.0, 12.0, 481):  # every position the sigmoids give, finely
        with torch.no_grad():
            for param in frontend.parameters():
                param.fill_(float(logit))
        assert_in_range(frontend)
        if abs(logit) == 12.0:
            assert bool((frontend(waveform) > 0).all())


@pytest.mark.parametrize("centre_hz", [0.0, 50.0, 400.0, 3000.0])
def test_the_narrowest_half_width_makes_a_band_just_wider_than_a_bin(centre_hz):
    bin_hz = 22050 / 1024
    centre = float(hz_to_mel(centre_hz))
    half = float(narrowest_half_width(torch.tensor(centre, dtype=torch.float64), bin_hz))
    width_hz = mel_to_hz(centre + half) - mel_to_hz(centre - half)
    assert width_hz == pytest.approx(BIN_MARGIN * bin_hz, rel=1e-12)
    expected = centre if centre > half else 0.0  # below its half-width, a band holds the DC bin
    assert lowest_centre(np.array([half, 2 * half]), bin_hz) == pytest.approx(expected)


def test_the_paper_variants_keep_their_plain_ranges():
    # the default layout's bands are wide enough: nothing is raised, old models load unchanged
    assert build_frontend("fb-learn-cf").lowest_centre == 0.0
    bandwidths = build_frontend("fb-learn-bw")
    assert bool((bandwidths.lowest_width_factors(bandwidths.centres_mel()) == 0.5).all())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_bands": 200, "learn": ("bw",)},
     "a band is no wider than the FFT bin spacing (21.53 Hz) at its initial width"),
    # 10 Hz wide around bins 20 and 30: they hold a bin, but moved, they could miss every bin
    ({"n_bands": 2, "learn": ("cf",), "centres_mel": [hz_to_mel(430.66), hz_to_mel(646.0)],
      "half_widths_mel": [7.0, 7.0]},
     "learnable centres: the narrowest band would fall between the FFT bins (21.53 Hz apart) below"),
])
def test_layouts_whose_learnable_bands_could_fall_silent_are_refused(kwargs, message):
    with pytest.raises(VocalfrontError, match=re.escape(message)):
        FilterBank(context=0, **kwargs)


# ----------------------------------------------------------------- inspection
def small_bank(**kwargs) -> FilterBank:
    return FilterBank(n_bands=8, fmin=300, fmax=3000, context=0, **kwargs)


def test_parameters_are_reported_per_band_in_physical_units():
    sizes = [900.0 + 10 * k for k in range(8)]
    params = frontend_parameters(small_bank(averaging_sizes=sizes))
    edges = mel_band_edges(8, 300, 3000)
    assert sorted(params) == ["averaging_length_ms", "bandwidth_hz", "centre_hz", "centre_mel"]
    assert params["centre_hz"] == pytest.approx(edges[1:-1], rel=1e-9)
    assert params["centre_mel"] == pytest.approx(hz_to_mel(edges[1:-1]), rel=1e-9)
    assert params["bandwidth_hz"] == pytest.approx(edges[2:] - edges[:-2], rel=1e-9)
    assert params["averaging_length_ms"] == pytest.approx([s / 22.05 for s in sizes], rel=1e-9)


@pytest.mark.parametrize(("kwargs", "extra"), [
    ({"averaging": "gaussian-formula"}, ["averaging_sigma_ms"]),
    ({"averaging": "none"}, []),
    ({"learn": ("free",), "averaging_sizes": [1000.0] * 8}, ["averaging_length_ms", "free_correction_max"]),
])
def test_parameters_name_the_averaging_shape_and_the_free_correction(kwargs, extra):
    params = frontend_parameters(small_bank(**kwargs))
    assert sorted(params) == sorted(["bandwidth_hz", "centre_hz", "centre_mel", *extra])
    assert all(len(values) == 8 for values in params.values())
    assert params.get("free_correction_max", [0.0] * 8) == [0.0] * 8


def test_parameters_of_a_mel_spectrogram_are_refused():
    with pytest.raises(VocalfrontError, match="MelSpectrogram has no filter-bank parameters"):
        frontend_parameters(build_frontend("mel"))


def test_movement_is_measured_in_band_spacings_and_relative_lengths():
    initial = {"centre_hz": [100.0, 200.0, 300.0, 400.0], "centre_mel": [150.0, 283.0, 402.0, 509.0],
               "bandwidth_hz": [200.0, 200.0, 200.0, 200.0], "averaging_length_ms": [40.0] * 4}
    current = {**initial, "centre_hz": [100.0, 250.0, 300.0, 380.0], "bandwidth_hz": [200.0] * 3 + [100.0],
               "averaging_length_ms": [40.0, 40.0, 60.0, 20.0]}
    unmoved = {f"{q}_{s}": 0.0 for q in ("centre", "bandwidth", "averaging") for s in ("median", "max")}
    assert movement_summary(initial, initial) == unmoved
    assert movement_summary(initial, current) == pytest.approx({
        "centre_median": 0.1, "centre_max": 0.5, "bandwidth_median": 0.0, "bandwidth_max": 1.0,
        "averaging_median": 0.25, "averaging_max": 0.5})


def test_movement_between_different_layouts_is_refused():
    params = frontend_parameters(small_bank(averaging_sizes=[1000.0] * 8))
    fewer = frontend_parameters(FilterBank(n_bands=4, fmin=300, fmax=3000, averaging_sizes=[1000.0] * 4))
    with pytest.raises(VocalfrontError, match="different layouts"):
        movement_summary(params, fewer)


@pytest.mark.parametrize("name", ["fb", "mel"])
def test_measured_responses_match_the_design_in_the_passband(name):
    designed = small_bank(averaging_sizes=[1000.0] * 8)
    frontend = designed if name == "fb" else build_frontend("mel", n_bands=8, fmin=300, fmax=3000)
    freqs = np.linspace(200.0, 3500.0, 120)
    bins, weights = designed.triangle_table()
    design = band_power_response(torch.from_numpy(np.tile(freqs / 22050, (8, 1))),
                                 torch.from_numpy(bins), torch.from_numpy(weights), 1024).numpy()
    passband = design > design.max(axis=1, keepdims=True) / 100
    measured = power_responses(frontend, freqs)
    assert measured.shape == (8, 120)
    assert np.abs(measured / design - 1)[passband].max() < 1e-3


@pytest.mark.parametrize(("averaging", "height"), [("hann2", 700), ("none", 450)])
def test_filter_bank_figure_is_written_as_a_png(tmp_path, averaging, height):
    initial = small_bank(averaging=averaging, learn=("cf",), averaging_sizes=[1000.0] * 8)
    learned = small_bank(averaging=averaging, learn=("cf",), averaging_sizes=[1000.0] * 8)
    with torch.no_grad():
        learned.centre_logits.add_(0.1)
    path = tmp_path / "figures" / "filters.png"
    plot_filterbank(path, initial, learned, title="fb-learn-cf")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, height)
    assert [p.name for p in path.parent.iterdir()] == ["filters.png"]


def test_measured_responses_include_a_free_correction():
    frontend = small_bank(learn=("free",), averaging_sizes=[1000.0] * 8)
    freqs = np.linspace(200.0, 3500.0, 60)
    before = power_responses(frontend, freqs)
    with torch.no_grad():
        frontend.free_correction[0, 3] = -0.5  # band 3's filter at half amplitude everywhere
    ratio = power_responses(frontend, freqs) / before
    passband = before > before.max(axis=1, keepdims=True) / 100
    assert ratio[3][passband[3]] == pytest.approx(0.25, rel=1e-6)
    assert np.delete(ratio, 3, axis=0)[np.delete(passband, 3, axis=0)] == pytest.approx(1.0, rel=1e-9)
