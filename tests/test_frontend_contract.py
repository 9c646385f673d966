"""What every registered front-end promises: shapes, grid, bad input errors, finite silence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalfront.errors import VocalfrontError
from vocalfront.frontends import LogCompression, available_frontends, build_frontend
from vocalfront.frontends.base import check_waveform
from vocalfront.frontends.registry import _REGISTRY
from vocalfront.grid import DEFAULT_GRID

NAMES = available_frontends()


@pytest.fixture(scope="module")
def frontends():
    sizes = build_frontend("fb").averaging_sizes().tolist()
    built = {}
    for name in NAMES:
        kwargs = {}
        if _REGISTRY[name][0].__name__ == "FilterBank" and _REGISTRY[name][1].get("averaging") is None:
            kwargs["averaging_sizes"] = sizes
        built[name] = build_frontend(name, **kwargs)
    return built


def test_all_paper_front_ends_are_registered():
    expected = {"mel", "fb", "fb-noavg", "fb-learn-cf", "fb-learn-avg", "fb-learn-bw", "fb-free"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("samples", [1024, 5000, 36225])
def test_output_is_nonnegative_on_the_common_grid(frontends, name, samples):
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, samples))).float()
    out = frontends[name](x)
    assert out.shape == (2, 80, DEFAULT_GRID.num_frames(samples))
    assert bool((out >= 0).all())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "waveform, message",
    [
        (torch.zeros(1000), "too short"),
        (torch.zeros(4096, dtype=torch.int16), "floating point"),
        (torch.zeros(1, 1, 4096), "shape"),
        (torch.tensor([float("nan")] * 4096), "NaN or Inf"),
        (torch.tensor([float("inf")] * 4096), "NaN or Inf"),
        (torch.tensor([0.0] * 4000 + [-float("inf")] + [0.0] * 95), "NaN or Inf"),
        (torch.tensor([float("inf"), -float("inf")] * 2048), "NaN or Inf"),
    ],
)
def test_bad_input_is_a_clear_value_error(frontends, name, waveform, message):
    with pytest.raises(ValueError, match=message):
        frontends[name](waveform)


def test_finite_samples_whose_sum_overflows_are_accepted():
    huge = torch.full((1, 4096), 3e38)  # float32: the sum is Inf, every sample finite
    assert check_waveform(huge, 1024) is not None


@pytest.mark.parametrize("name", NAMES)
def test_wrong_sample_rate_is_refused(frontends, name):
    with pytest.raises(ValueError, match="sample rate 16000 Hz"):
        frontends[name](torch.zeros(4096), sample_rate=16000)


@pytest.mark.parametrize("name", NAMES)
def test_silence_gives_finite_log_features_and_gradients(frontends, name):
    frontend = frontends[name]
    x = torch.zeros(1, 8000, requires_grad=True)
    features = LogCompression()(frontend(x))
    features.sum().backward()
    assert bool(torch.isfinite(features).all())
    assert bool(torch.isfinite(x.grad).all())
    for parameter in frontend.parameters():
        assert parameter.grad is None or bool(torch.isfinite(parameter.grad).all())


@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_after_inference_on_the_same_parameters(frontends, name):
    """Validation under ``torch.inference_mode``, then a training step on a signal of the same
    length: whatever the first call planned or cached must not block backpropagation (to the
    waveform and to any learnable parameter)."""
    frontend = frontends[name]
    time = torch.arange(66150) / DEFAULT_GRID.sample_rate  # a length no other test here uses
    waveform = (0.3 * torch.sin(2 * np.pi * 440 * time) + 0.01 * torch.cos(7 * time))[None]
    with torch.inference_mode():
        validated = frontend(waveform)
    waveform.requires_grad_()
    energies = frontend(waveform)
    inputs = [waveform, *(p for p in frontend.parameters() if p.requires_grad)]
    grads = torch.autograd.grad(energies.sum(), inputs)
    assert torch.allclose(energies.detach(), validated)
    assert all(bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0) for grad in grads)


def test_unknown_front_end_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"available: .*fb"):
        build_frontend("sincnet")


@pytest.mark.parametrize(("name", "options", "message"), [
    ("fb", {"averaging": "boxcar"}, "unknown averaging"),
    ("fb", {"learn": ("cf", "colour")}, "unknown learnable parts"),
    ("mel", {"convention": "slany"}, "unknown mel convention"),
    ("mel", {"power": 3.0}, "power must be 1"),
])
def test_a_bad_front_end_option_is_a_vocalfront_error(name, options, message):
    with pytest.raises(VocalfrontError, match=message):
        build_frontend(name, **options)
