"""Waveform augmentation: label alignment after speed changes, EQ and gain ranges, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from vocalfront.data.augment import (
    AugmentConfig,
    augment,
    change_speed,
    eq_curve_db,
    equalise,
    random_eq_curve,
    remap_labels,
)
from vocalfront.errors import AudioError, VocalfrontError
from vocalfront.grid import DEFAULT_GRID as GRID

RATE = GRID.sample_rate
ONLY_EQ = AugmentConfig(speed_probability=0.0, gain_probability=0.0)


def tone_burst(seconds: float = 4.0, start: float = 1.5, stop: float = 2.5):
    """Silence with a 1 kHz tone in ``[start, stop)`` s, and labels marking frames centred there."""
    times = np.arange(round(seconds * RATE)) / RATE
    audio = np.where((times >= start) & (times < stop), np.sin(2 * np.pi * 1000 * times), 0.0)
    centres = GRID.frame_times(GRID.num_frames(len(audio)))
    labels = ((centres >= start) & (centres < stop)).astype(np.float32)
    return audio.astype(np.float32), labels


def frames_with_sound(audio: np.ndarray) -> np.ndarray:
    """1 for frames whose centre (± 2 ms) carries the tone, else 0."""
    half = 44
    centres = GRID.frame_centres(GRID.num_frames(len(audio)))
    energy = np.array([np.mean(audio[c - half : c + half] ** 2) for c in centres])
    return (energy > 0.25 * energy.max()).astype(np.float32)


def near_label_change(labels: np.ndarray, index: int) -> bool:
    """Whether frames ``index - 1 .. index + 1`` do not all carry the same label."""
    around = labels[max(0, index - 1) : index + 2]
    return around.min() != around.max()


@pytest.mark.parametrize("factor", [0.7, 0.83, 1.0, 1.17, 1.3])
def test_speed_change_keeps_labels_on_the_tone_burst(factor):
    audio, labels = tone_burst()
    config = AugmentConfig(eq_probability=0.0, gain_probability=0.0, speed_range=(factor, factor))
    faster, new_labels = augment(audio, labels, np.random.default_rng(0), config)
    assert abs(len(faster) - len(audio) / factor) <= 1
    assert len(new_labels) == GRID.num_frames(len(faster))
    sound = frames_with_sound(faster)
    wrong = np.flatnonzero(sound != new_labels)
    assert all(near_label_change(new_labels, index) for index in wrong)
    assert abs(new_labels.sum() - GRID.frame_rate / factor) <= 2  # the burst lasts 1 s / factor


def test_speed_change_scales_pitch_by_the_factor():
    audio, labels = tone_burst()
    faster, _ = change_speed(audio, labels, 1.25)
    spectrum = np.abs(np.fft.rfft(faster))
    peak_hz = np.argmax(spectrum) * RATE / len(faster)
    assert peak_hz == pytest.approx(1250, abs=2)


def test_remap_labels_for_factor_one_is_identity():
    labels = (np.random.default_rng(1).random(300) > 0.5).astype(np.float32)
    np.testing.assert_array_equal(remap_labels(labels, 1.0, 300), labels)


def test_remap_labels_reads_the_frame_at_the_scaled_centre_time():
    labels = np.arange(100, dtype=np.float32)  # label = frame index
    remapped = remap_labels(labels, 2.0, 40)
    expected = GRID.frame_at_time(2.0 * GRID.frame_times(40))
    np.testing.assert_array_equal(remapped, expected)


def test_augment_is_deterministic_for_a_seed():
    audio = np.random.default_rng(2).standard_normal(3 * RATE).astype(np.float32)
    labels = np.ones(GRID.num_frames(len(audio)), dtype=np.float32)
    first = augment(audio, labels, np.random.default_rng(7))
    second = augment(audio, labels, np.random.default_rng(7))
    other = augment(audio, labels, np.random.default_rng(8))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert len(first[0]) != len(other[0]) or not np.array_equal(first[0], other[0])


def test_augment_output_is_finite_float32_with_matching_labels():
    audio = np.random.default_rng(3).uniform(-1, 1, 2 * RATE)
    labels = np.zeros(GRID.num_frames(len(audio)))
    for seed in range(5):
        out, out_labels = augment(audio, labels, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out_labels.dtype == np.float32
        assert np.all(np.isfinite(out))
        assert len(out_labels) == GRID.num_frames(len(out))


def test_gain_stays_within_the_configured_range():
    audio = np.random.default_rng(4).standard_normal(RATE).astype(np.float32) * 0.1
    labels = np.ones(GRID.num_frames(len(audio)), dtype=np.float32)
    config = AugmentConfig(speed_probability=0.0, eq_probability=0.0, gain_db_range=(-3.0, 5.0))
    gains = []
    for seed in range(30):
        out, out_labels = augment(audio, labels, np.random.default_rng(seed), config)
        np.testing.assert_array_equal(out_labels, labels)
        ratio = out / audio
        assert np.allclose(ratio, ratio[0], rtol=1e-5)
        gains.append(20 * np.log10(ratio[0]))
    assert min(gains) >= -3.0 - 1e-4 and max(gains) <= 5.0 + 1e-4
    assert max(gains) - min(gains) > 4.0


def measured_response_db(before: np.ndarray, after: np.ndarray):
    """Frequencies (Hz) and output/input power ratio (dB) from Welch spectra."""
    frequencies, power_before = welch(before, RATE, nperseg=4096)
    _, power_after = welch(after, RATE, nperseg=4096)
    return frequencies, 10 * np.log10(power_after / power_before)


def test_equalise_applies_the_interpolated_curve():
    noise = np.random.default_rng(5).standard_normal(1 << 17).astype(np.float32)
    control_hz = np.geomspace(30, 10000, 6)
    control_db = np.array([8.0, -10.0, 4.0, 10.0, -6.0, 0.0])
    frequencies, response = measured_response_db(noise, equalise(noise, control_hz, control_db, RATE))
    band = (frequencies > 100) & (frequencies < 10500)
    expected = eq_curve_db(frequencies[band], control_hz, control_db)
    np.testing.assert_allclose(response[band], expected, atol=0.5)


def test_random_eq_stays_within_its_limit_on_white_noise():
    noise = np.random.default_rng(6).standard_normal(1 << 16).astype(np.float32)
    labels = np.zeros(GRID.num_frames(len(noise)), dtype=np.float32)
    largest = 0.0
    for seed in range(5):
        out, _ = augment(noise, labels, np.random.default_rng(seed), ONLY_EQ)
        _, response = measured_response_db(noise, out)
        largest = max(largest, np.abs(response[1:]).max())
        assert np.abs(response[1:]).max() <= 10.5
    assert largest > 3.0  # the curves are not flat


def test_eq_curve_never_overshoots_its_control_points():
    frequencies = np.linspace(0, RATE / 2, 5000)
    for seed in range(20):
        control_hz, control_db = random_eq_curve(np.random.default_rng(seed), AugmentConfig())
        curve = eq_curve_db(frequencies, control_hz, control_db)
        assert np.abs(control_db).max() <= 10.0
        assert control_db.min() - 1e-9 <= curve.min() and curve.max() <= control_db.max() + 1e-9


def test_limit_peak_scales_loud_audio_to_unit_peak():
    audio = np.random.default_rng(9).uniform(-0.9, 0.9, RATE).astype(np.float32)
    labels = np.zeros(GRID.num_frames(len(audio)), dtype=np.float32)
    config = AugmentConfig(
        speed_probability=0.0, eq_probability=0.0, gain_db_range=(12.0, 12.0), limit_peak=True
    )
    out, _ = augment(audio, labels, np.random.default_rng(0), config)
    assert np.max(np.abs(out)) == pytest.approx(1.0)
    unlimited = AugmentConfig(speed_probability=0.0, eq_probability=0.0, gain_db_range=(12.0, 12.0))
    loud, _ = augment(audio, labels, np.random.default_rng(0), unlimited)
    assert np.max(np.abs(loud)) > 3.0


def test_loud_mastering_raises_the_level_and_keeps_peaks_within_full_scale():
    rng = np.random.default_rng(4)
    envelope = np.sin(np.linspace(0, 20, 2 * RATE)) ** 2
    audio = (0.1 * rng.standard_normal(2 * RATE) * envelope).astype(np.float32)
    labels = np.zeros(GRID.num_frames(len(audio)), dtype=np.float32)
    config = AugmentConfig(speed_probability=0.0, eq_probability=0.0, gain_probability=0.0,
                           master_probability=1.0, master_drive_db_range=(18.0, 18.0))
    out, out_labels = augment(audio, labels, np.random.default_rng(0), config)
    assert out.dtype == np.float32 and out.shape == audio.shape and np.all(np.isfinite(out))
    assert np.max(np.abs(out)) <= 1.0
    louder_db = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(audio**2)))
    assert 8.0 < louder_db < 19.0  # the drive raises the level; the limiter takes some of it back
    assert _crest_factor(out) < 0.7 * _crest_factor(audio)  # flattened peaks
    np.testing.assert_array_equal(out_labels, labels)


def _crest_factor(audio: np.ndarray) -> float:
    return float(np.max(np.abs(audio)) / np.sqrt(np.mean(audio**2)))


def test_loud_mastering_is_off_by_default_and_finite_on_silence():
    silence = np.zeros(RATE, dtype=np.float32)
    labels = np.zeros(GRID.num_frames(RATE), dtype=np.float32)
    assert AugmentConfig().master_probability == 0.0
    out, _ = augment(silence, labels, np.random.default_rng(0),
                     AugmentConfig(master_probability=1.0, master_drive_db_range=(40.0, 40.0)))
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.0


@pytest.mark.parametrize(
    ("audio", "labels", "problem"),
    [
        (np.zeros(4096), np.zeros(5), "frame labels"),
        (np.full(4096, np.nan), np.zeros(10), "NaN"),
        (np.zeros((2, 4096)), np.zeros(10), "1-D"),
        (np.zeros(500), np.zeros(0), "shorter than one frame"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(audio, labels, problem):
    with pytest.raises(AudioError, match=problem):
        augment(audio, labels, np.random.default_rng(0))


@pytest.mark.parametrize(
    "settings",
    [
        {"speed_probability": 1.5},
        {"speed_range": (1.2, 0.8)},
        {"speed_range": (0.0, 1.0)},
        {"eq_points": 1},
        {"eq_max_db": -1.0},
        {"gain_db_range": (3.0, -3.0)},
        {"master_probability": -0.1},
        {"master_drive_db_range": (0.0, 80.0)},
        {"master_drive_db_range": (6.0, 0.0)},
    ],
)
def test_invalid_config_is_rejected(settings):
    with pytest.raises(VocalfrontError, match="augmentation"):
        AugmentConfig(**settings)
