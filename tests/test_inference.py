"""Whole-file inference: dense == excerpt-wise, chunked == one-shot, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vocalfront.audio import load_audio
from vocalfront.detector_file import load_detector_file
from vocalfront.errors import AudioError, VocalfrontError
from vocalfront.frontends import BandNorm, FrontEnd, LogCompression, build_frontend
from vocalfront.inference import (
    BF16_TOLERANCE,
    compute_features,
    excerpt_frame_logits,
    frame_logits,
    predict_waveform,
)
from vocalfront.model import Detector, SchlueterCNN, pad_context
from vocalfront.pretrained import default_model_path

SR = 22050


def make_detector(frontend: FrontEnd | None = None, batch_norm: bool = False) -> Detector:
    torch.manual_seed(0)
    norm = BandNorm(80)
    norm.mean.fill_(-6.0)
    norm.std.fill_(3.0)
    return Detector(frontend or build_frontend("mel"), LogCompression(), norm,
                    SchlueterCNN(batch_norm=batch_norm))


@pytest.fixture(scope="module")
def detector() -> Detector:
    """A random-init mel detector shared by the tests that do not change it."""
    return make_detector()


@pytest.fixture(scope="module")
def cnn() -> SchlueterCNN:
    torch.manual_seed(1)
    return SchlueterCNN()


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_dense_inference_equals_excerpt_by_excerpt_inference(batch_norm):
    torch.manual_seed(2)
    cnn = SchlueterCNN(batch_norm=batch_norm)
    for module in cnn.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    features = torch.randn(2, 80, 25)
    dense = frame_logits(cnn, features)
    reference = excerpt_frame_logits(cnn, features)
    assert dense.shape == reference.shape == (2, 25)
    torch.testing.assert_close(dense, reference, atol=1e-5, rtol=0)


def test_edge_frames_see_zero_padding(cnn):
    features = torch.randn(1, 80, 10)
    excerpt = F.pad(features, (57, 57 + 115 - 124))[..., :115]  # frame 0 at the excerpt centre
    with torch.inference_mode():
        expected = cnn.eval()(excerpt.unsqueeze(1))
    torch.testing.assert_close(frame_logits(cnn, features)[:, 0], expected, atol=1e-5, rtol=0)


def test_chunked_dense_inference_equals_one_chunk(cnn):
    features = torch.randn(1, 80, 30)
    whole = frame_logits(cnn, features, chunk_frames=30)
    for chunk in (4, 13, 29, 1024):
        torch.testing.assert_close(frame_logits(cnn, features, chunk_frames=chunk), whole,
                                   atol=1e-5, rtol=0)


def test_step_1_is_plain_dense_evaluation_bit_for_bit(cnn):
    features = torch.randn(1, 80, 30)
    with torch.inference_mode():
        dense = cnn.eval().dense(pad_context(features, cnn.context).unsqueeze(1))
    assert torch.equal(frame_logits(cnn, features, step=1), dense)


@pytest.mark.parametrize("step", [3, 9])
def test_frame_step_anchors_equal_step_1_logits_for_any_chunk_size(cnn, step):
    features = torch.randn(2, 80, 40)  # 40 frames: the last anchor lies beyond the last frame
    every = frame_logits(cnn, features)
    for chunk in (1, 4, 13, 40, 1024):
        strided = frame_logits(cnn, features, chunk_frames=chunk, step=step)
        assert strided.shape == every.shape
        torch.testing.assert_close(strided[:, ::step], every[:, ::step], atol=1e-5, rtol=0)


@pytest.mark.parametrize("step", [3, 9])
def test_frames_between_anchors_get_the_linear_interpolation_of_their_logits(cnn, step):
    features = torch.randn(1, 80, 4 * step + 1)
    strided = frame_logits(cnn, features, step=step)[0]
    anchors = strided[::step]
    for frame in range(len(strided)):
        left, offset = divmod(frame, step)
        expected = anchors[left] if offset == 0 else \
            anchors[left] + (anchors[left + 1] - anchors[left]) * offset / step
        torch.testing.assert_close(strided[frame], expected, atol=1e-6, rtol=0)
    assert not torch.allclose(strided, frame_logits(cnn, features), atol=1e-3)  # interpolated


@pytest.mark.parametrize("step", [3, 9])
def test_frame_step_logits_do_not_depend_on_chunk_frames(cnn, step):
    features = torch.randn(1, 80, 50)
    whole = frame_logits(cnn, features, chunk_frames=1024, step=step)
    for chunk in (1, step, 2 * step + 1, 49):
        torch.testing.assert_close(frame_logits(cnn, features, chunk_frames=chunk, step=step), whole,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("frames", [1, 2, 8, 9, 10])
def test_inputs_shorter_than_a_step_get_one_logit_per_frame(cnn, frames):
    features = torch.randn(1, 80, frames)
    every = frame_logits(cnn, features)
    for step in (3, 9):
        strided = frame_logits(cnn, features, step=step)
        assert strided.shape == (1, frames)
        torch.testing.assert_close(strided[:, ::step], every[:, ::step], atol=1e-5, rtol=0)


@pytest.mark.parametrize("step", [0, 2, True, 3.0])
def test_a_bad_frame_step_is_refused_before_any_work(detector, step):
    with pytest.raises(VocalfrontError, match=r"^frame step must be one of 1, 3, 9, got "):
        frame_logits(detector.cnn, torch.randn(1, 80, 5), step=step)
    with pytest.raises(VocalfrontError, match=r"^frame step must be one of 1, 3, 9, got "):
        predict_waveform(detector, np.zeros(10, dtype=np.float32), step=step)  # too short, too


def test_inference_leaves_the_training_mode_as_it_was(cnn):
    cnn.train()
    cnn.dropout.eval()
    frame_logits(cnn, torch.randn(1, 80, 5))
    assert cnn.training and cnn.units[0].training and not cnn.dropout.training
    cnn.eval()
    frame_logits(cnn, torch.randn(1, 80, 5))
    assert not cnn.training


@pytest.mark.parametrize("margin", [0, 8192])
def test_chunked_features_equal_one_shot_features(detector, margin):
    audio = noise(3.1)
    with torch.no_grad():
        expected = detector.eval().features(torch.from_numpy(audio)[None])[0]
    chunked = compute_features(detector, audio, chunk_seconds=0.4, margin=margin)
    torch.testing.assert_close(chunked, expected, atol=1e-5, rtol=1e-5)


class WideContextFrontEnd(FrontEnd):
    """Toy front-end whose frames depend on samples up to ``reach`` beyond their window.

    Smoothed power (zero-padded moving average over ``2 * reach + 1`` samples) sampled at the
    frame centres and repeated over 80 bands.
    """

    name = "wide"

    def __init__(self, reach: int = 3000):
        super().__init__(80)
        self.reach = reach

    def band_energies(self, waveform):
        power = F.pad(waveform.double().square(), (self.reach + 1, self.reach))
        total = power.cumsum(-1)
        smooth = (total[:, 2 * self.reach + 1 :] - total[:, : -2 * self.reach - 1]).float()
        centres = torch.from_numpy(self.grid.frame_centres(self.grid.num_frames(waveform.shape[-1])))
        scales = torch.linspace(1.0, 2.0, self.n_bands)[None, :, None]
        return smooth[:, None, centres] * scales


def test_margin_removes_chunk_border_effects_of_wide_front_ends():
    detector = make_detector(WideContextFrontEnd(reach=3000)).eval()
    audio = noise(4.0) * np.linspace(0.1, 1.0, 4 * SR, dtype=np.float32)
    with torch.no_grad():
        expected = detector.features(torch.from_numpy(audio)[None])[0]
    exact = compute_features(detector, audio, chunk_seconds=0.5, margin=3000)
    torch.testing.assert_close(exact, expected, atol=1e-4, rtol=1e-4)
    cut = compute_features(detector, audio, chunk_seconds=0.5, margin=0)
    assert (cut - expected).abs().max() > 0.01


@pytest.mark.parametrize("samples", [1024, 1024 + 314, 1024 + 315, 50_000])
def test_one_probability_per_grid_frame(detector, samples):
    probabilities = predict_waveform(detector, noise(1.0)[:samples].copy() if samples < SR
                                     else noise(samples / SR))
    assert probabilities.shape == (detector.grid.num_frames(samples),)
    assert probabilities.dtype == np.float32
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_predictions_match_excerpt_wise_reference_and_ignore_chunking():
    detector = make_detector(batch_norm=True)
    audio = noise(0.5, seed=3)
    with torch.inference_mode():
        features = detector.eval().features(torch.from_numpy(audio)[None])
    reference = torch.sigmoid(excerpt_frame_logits(detector.cnn, features))[0].numpy()
    for chunk_seconds in (0.3, 60.0):
        probabilities = predict_waveform(detector, audio, chunk_seconds=chunk_seconds)
        np.testing.assert_allclose(probabilities, reference, atol=1e-5)


def test_numpy_float64_and_tensor_audio_give_the_same_result(detector):
    audio = noise(1.0)
    expected = predict_waveform(detector, audio)
    np.testing.assert_allclose(predict_waveform(detector, audio.astype(np.float64)), expected,
                               atol=1e-6)
    np.testing.assert_allclose(predict_waveform(detector, torch.from_numpy(audio)), expected,
                               atol=1e-6)


@pytest.mark.parametrize(("audio", "problem"), [
    (np.zeros(1023, dtype=np.float32), "too short: 1023 samples"),
    (np.zeros((2, 5000), dtype=np.float32), "mono"),
    (np.zeros(5000, dtype=np.int16), "floating point"),
    (np.full(5000, np.nan, dtype=np.float32), "NaN"),
    ([0.0] * 5000, "numpy array or tensor"),
])
def test_unusable_audio_raises_an_error_naming_the_source(detector, audio, problem):
    with pytest.raises(AudioError, match=problem) as caught:
        predict_waveform(detector, audio, source="song.wav")
    assert str(caught.value).startswith("song.wav: ")


def test_bf16_probabilities_stay_within_the_stated_tolerance_of_float32(detector):
    audio = noise(10.0)
    exact = predict_waveform(detector, audio)
    fast = predict_waveform(detector, audio, bf16=True)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert 0 < np.abs(fast - exact).max() <= BF16_TOLERANCE  # bf16 did run, and stayed close


@pytest.mark.skipif(not default_model_path().is_file(), reason="no packaged model")
def test_bf16_keeps_the_packaged_model_within_the_stated_tolerance_on_its_example():
    trained = load_detector_file(default_model_path()).detector
    folder = default_model_path().parents[1] / "examples"
    audio = load_audio(str(folder / "example.flac"), trained.grid.sample_rate)
    exact = predict_waveform(trained, audio)
    fast = predict_waveform(trained, audio, bf16=True)
    assert np.abs(fast - exact).max() <= BF16_TOLERANCE
