"""The Schlüter & Grill CNN, the detector around it, and building it from a config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vocalfront.errors import VocalfrontError
from vocalfront.frontends import BandNorm, LogCompression, build_frontend
from vocalfront.model import Detector, SchlueterCNN, build_detector, pad_context


def make_detector(batch_norm: bool = False, seed: int = 0) -> Detector:
    torch.manual_seed(seed)
    norm = BandNorm(80)
    norm.mean.normal_(-5.0, 1.0)
    norm.std.uniform_(1.0, 3.0)
    return Detector(build_frontend("mel"), LogCompression(), norm,
                    SchlueterCNN(batch_norm=batch_norm)).eval()


@pytest.fixture(scope="module")
def cnn() -> SchlueterCNN:
    """A default random-init CNN in eval mode, shared by tests that do not change it."""
    torch.manual_seed(0)
    return SchlueterCNN().eval()


@pytest.fixture(scope="module")
def detector() -> Detector:
    """A mel detector shared by tests that do not change it."""
    return make_detector()


def randomise_batch_norm(cnn: SchlueterCNN) -> None:
    """Give every batch-norm layer non-trivial running statistics and affine parameters."""
    for module in cnn.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


def test_parameter_count_matches_the_published_layer_sizes(cnn):
    conv = 64 * 9 + 64 + 32 * 64 * 9 + 32 + 128 * 32 * 9 + 128 + 64 * 128 * 9 + 64
    dense = 64 * 7 * 11 * 256 + 256 + 256 * 64 + 64 + 64 + 1
    assert sum(p.numel() for p in cnn.parameters()) == conv + dense


def test_excerpt_logits_have_one_value_per_excerpt(cnn):
    assert cnn(torch.randn(3, 1, 80, 115)).shape == (3,)


@pytest.mark.parametrize("shape", [(2, 1, 80, 114), (2, 1, 79, 115), (2, 80, 115)])
def test_wrong_input_shape_is_rejected(cnn, shape):
    with pytest.raises(VocalfrontError):
        cnn(torch.zeros(shape))


def test_hidden_weights_are_orthogonal_with_leaky_relu_gain(cnn):
    gain = nn.init.calculate_gain("leaky_relu", 0.01)
    weight = cnn.units[1].conv.weight.detach().flatten(1)  # 32 x 576: orthogonal rows
    torch.testing.assert_close(weight @ weight.T, gain**2 * torch.eye(32), atol=1e-4, rtol=0)
    assert torch.count_nonzero(cnn.units[1].conv.bias) == 0


def test_batch_norm_variant_normalises_every_hidden_layer_and_drops_biases():
    cnn = SchlueterCNN(batch_norm=True)
    norms = [m for m in cnn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [n.num_features for n in norms] == [64, 32, 128, 64, 256, 64]
    assert all(unit.conv.bias is None for unit in cnn.units[:6])


@pytest.mark.parametrize(("n_bands", "context"), [(80, 115), (40, 61)])
def test_dense_evaluation_equals_each_excerpt_in_eval_mode(n_bands, context):
    torch.manual_seed(1)
    cnn = SchlueterCNN(n_bands, context, batch_norm=True).eval()
    randomise_batch_norm(cnn)
    x = torch.randn(2, 1, n_bands, context + 25)
    with torch.no_grad():
        dense = cnn.dense(x)
        single = torch.stack([cnn(x[..., t : t + context]) for t in range(0, 26, 5)], dim=1)
    assert dense.shape == (2, 26)
    torch.testing.assert_close(dense[:, ::5], single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("step", [3, 9])
@pytest.mark.parametrize(("n_bands", "context"), [(80, 115), (40, 61)])
def test_dense_evaluation_with_a_frame_step_equals_every_step_th_excerpt(n_bands, context, step):
    torch.manual_seed(1)
    cnn = SchlueterCNN(n_bands, context, batch_norm=True).eval()
    randomise_batch_norm(cnn)
    x = torch.randn(2, 1, n_bands, context + 40)
    with torch.no_grad():
        strided = cnn.dense(x, step)
        single = torch.stack([cnn(x[..., t : t + context]) for t in range(0, 41, step)], dim=1)
    assert strided.shape == (2, 40 // step + 1)
    torch.testing.assert_close(strided, single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("step", [0, 2, 27, True, 3.0, "3"])
def test_a_frame_step_other_than_1_3_or_9_is_refused(cnn, step):
    with pytest.raises(VocalfrontError, match=r"^frame step must be one of 1, 3, 9, got "):
        cnn.dense(torch.zeros(1, 1, 80, 115), step)


def test_excerpt_logits_are_the_same_with_and_without_gradients(cnn):
    # pooling takes another (faster) implementation when no gradient is needed
    x = torch.randn(3, 1, 80, 115)
    with torch.no_grad():
        without = cnn(x)
    assert torch.equal(cnn(x.requires_grad_()).detach(), without)


def test_training_mode_trains_batch_norm_and_gradients_reach_the_input():
    cnn = SchlueterCNN(batch_norm=True).train()
    x = torch.randn(4, 1, 80, 115, requires_grad=True)
    cnn(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert cnn.units[0].norm.num_batches_tracked == 1


@pytest.mark.parametrize(("n_bands", "context"), [(80, 114), (20, 115), (80, 40)])
def test_impossible_geometry_is_rejected(n_bands, context):
    with pytest.raises(VocalfrontError):
        SchlueterCNN(n_bands=n_bands, context=context)


def test_other_band_counts_and_contexts_build_matching_dense_layer():
    cnn = SchlueterCNN(n_bands=40, context=61)
    assert cnn.units[4].conv.kernel_size == (2, 5)
    assert cnn.eval()(torch.randn(1, 1, 40, 61)).shape == (1,)


def test_pad_context_adds_half_a_context_of_zeros_each_side():
    features = torch.ones(1, 80, 3)
    padded = pad_context(features, 115)
    assert padded.shape == (1, 80, 117)
    assert padded[..., :57].abs().sum() == 0 and padded[..., -57:].abs().sum() == 0
    assert torch.equal(padded[..., 57:60], features)


def test_detector_features_are_normalised_log_mel_bands(detector):
    wave = torch.randn(2, 5000)
    expected = (torch.log(detector.frontend(wave).clamp_min(1e-7))
                - detector.norm.mean[:, None]) / detector.norm.std[:, None]
    torch.testing.assert_close(detector.features(wave), expected)
    assert detector.features(wave).shape == (2, 80, detector.grid.num_frames(5000))


def test_detector_predicts_the_centre_frame_of_an_excerpt(detector):
    assert detector.excerpt_samples == 1024 + 114 * 315
    assert detector.grid.num_frames(detector.excerpt_samples) == 115
    wave = torch.randn(2, detector.excerpt_samples + 2 * 315)
    with torch.no_grad():
        logits = detector(wave)
        centred = detector.cnn(detector.features(wave)[..., 1:116].unsqueeze(1))
    assert logits.shape == (2,)
    torch.testing.assert_close(logits, centred)


def test_excerpt_with_ambiguous_centre_is_rejected(detector):
    with pytest.raises(VocalfrontError, match="even"):
        detector.excerpt_logits(torch.zeros(1, 80, 116))


def test_detector_rejects_disagreeing_band_counts(cnn):
    with pytest.raises(VocalfrontError, match="band counts"):
        Detector(build_frontend("mel"), LogCompression(), BandNorm(40), cnn)


def test_build_detector_rebuilds_the_same_architecture_from_its_config():
    detector = make_detector(batch_norm=True)
    rebuilt = build_detector(detector.get_config())
    assert rebuilt.get_config() == detector.get_config()
    rebuilt.load_state_dict(detector.state_dict())
    wave = torch.randn(1, detector.excerpt_samples)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(wave), detector(wave))


def test_build_detector_reports_missing_and_bad_entries(detector):
    config = detector.get_config()
    with pytest.raises(VocalfrontError, match="lacks cnn"):
        build_detector({key: value for key, value in config.items() if key != "cnn"})
    with pytest.raises(VocalfrontError, match="invalid detector config"):
        build_detector({**config, "cnn": {"n_layers": 3}})


def test_norm_and_the_cnn_band_count_default_to_the_front_ends():
    detector = build_detector({"frontend": {"name": "mel", "n_bands": 40}, "compression": {"name": "log"},
                               "cnn": {"context": 25}})
    assert detector.norm.n_bands == detector.cnn.n_bands == 40
