"""Production-like voice processing: pitch shift, compression, plate and room reverb."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
import soundfile as sf

from vocalfront.data.production import (
    ImpulseResponses,
    VoiceEffectsConfig,
    process_voice,
    room_impulse_response,
)
from vocalfront.errors import AudioError, VocalfrontError

RATE = 22050
ONLY_PITCH = VoiceEffectsConfig(pitch_probability=1.0, pitch_semitones_range=(-3.0, 3.0))
ONLY_COMPRESSION = VoiceEffectsConfig(compress_probability=1.0)
ONLY_ROOMS = VoiceEffectsConfig(reverb_probability=1.0, plate_share=0.0)


def sung_note(seconds: float = 2.0, frequency: float = 220.0, stop: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = (t < stop) * (0.2 + 0.8 * (np.sin(2 * np.pi * 3 * t) > 0))  # loud and soft syllables
    return (0.3 * envelope * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / RATE)[np.argmax(spectrum)])


def test_processing_keeps_length_finiteness_and_is_fixed_by_the_generator():
    voice = sung_note()
    config = VoiceEffectsConfig(pitch_probability=0.5, compress_probability=0.5, reverb_probability=0.5)
    for seed in range(6):
        first = process_voice(voice, np.random.default_rng(seed), config)
        again = process_voice(voice, np.random.default_rng(seed), config)
        assert first.shape == voice.shape and first.dtype == np.float32
        assert np.isfinite(first).all()
        np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("peak", [0.0, 4e-19, 1e-30])
def test_silence_stays_silent_and_finite(peak):
    silence = (peak * np.sin(np.arange(RATE))).astype(np.float32)
    config = VoiceEffectsConfig(pitch_probability=1, compress_probability=1, reverb_probability=1)
    processed = process_voice(silence, np.random.default_rng(0), config)
    np.testing.assert_array_equal(processed, silence)


def test_pitch_shift_moves_the_voice_within_its_range():
    voice = np.sin(2 * np.pi * 220 * np.arange(2 * RATE) / RATE).astype(np.float32)
    ratios = [dominant_frequency(process_voice(voice, np.random.default_rng(seed), ONLY_PITCH)[2000:-2000])
              / 220 for seed in range(5)]
    assert all(2 ** (-3.2 / 12) <= ratio <= 2 ** (3.2 / 12) for ratio in ratios)
    assert max(abs(np.log2(ratio)) for ratio in ratios) > 1 / 12


def formant_shaped_tone(f0: float, formant: float = 800.0, seconds: float = 2.0) -> np.ndarray:
    """Harmonics of ``f0`` under one fixed resonance at ``formant`` Hz (a vowel-like envelope)."""
    t = np.arange(int(seconds * RATE)) / RATE
    harmonics = np.arange(1, int(0.45 * RATE / f0))
    weights = np.exp(-((harmonics * f0 - formant) / 300.0) ** 2)
    tone = (weights[:, None] * np.sin(2 * np.pi * f0 * harmonics[:, None] * t)).sum(axis=0)
    return (0.3 * tone / np.abs(tone).max()).astype(np.float32)


def fundamental(audio: np.ndarray) -> float:
    """Autocorrelation estimate of the fundamental (60-500 Hz): the shortest lag that correlates
    nearly as well as the best one (longer ones are multiples of the period)."""
    audio = audio.astype(np.float64)
    lags = np.arange(RATE // 500, RATE // 60)
    correlation = np.array([np.dot(audio[:-lag], audio[lag:]) for lag in lags])
    return RATE / float(lags[np.argmax(correlation >= 0.9 * correlation.max())])


def spectral_centroid(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    return float(np.sum(np.fft.rfftfreq(len(audio), 1 / RATE) * spectrum) / np.sum(spectrum))


def test_a_downward_range_lowers_every_voice():
    voice = formant_shaped_tone(220.0)
    config = VoiceEffectsConfig(pitch_probability=1.0, pitch_semitones_range=(-10.0, -6.0))
    for seed in range(4):
        lowered = process_voice(voice, np.random.default_rng(seed), config)[2000:-2000]
        assert 220 * 2 ** (-10.2 / 12) <= fundamental(lowered) <= 220 * 2 ** (-5.8 / 12)


def test_pitch_shift_keeps_the_formants_where_they_were():
    voice = formant_shaped_tone(220.0)
    config = VoiceEffectsConfig(pitch_probability=1.0, pitch_semitones_range=(-8.0, -8.0))
    lowered = process_voice(voice, np.random.default_rng(0), config)[2000:-2000]
    resampled = pedalboard.PitchShift(semitones=-8.0)(voice, RATE)[2000:-2000]  # formants move along
    assert fundamental(lowered) == pytest.approx(220 * 2 ** (-8 / 12), rel=0.02)
    assert spectral_centroid(lowered) > 1.15 * spectral_centroid(resampled)
    assert spectral_centroid(lowered) > 0.8 * spectral_centroid(voice[2000:-2000])


def test_pitch_shift_can_move_the_formants_along_as_earlier_models_were_trained():
    voice = formant_shaped_tone(220.0)
    config = VoiceEffectsConfig(pitch_probability=1.0, pitch_semitones_range=(-8.0, -8.0),
                                pitch_keep_formants=False)
    lowered = process_voice(voice, np.random.default_rng(0), config)
    np.testing.assert_array_equal(lowered, pedalboard.PitchShift(semitones=-8.0)(voice, RATE))


def test_compression_evens_out_loud_and_soft_syllables_at_the_same_level():
    voice = sung_note(stop=2.0)
    squashed = process_voice(voice, np.random.default_rng(1), ONLY_COMPRESSION)

    def rms(audio):
        return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))

    def loud_to_soft(audio):  # the 3 Hz syllables: loud in the first half of each period
        t = np.arange(len(audio)) / RATE
        settled = t > 0.5
        loud = settled & (np.sin(2 * np.pi * 3 * t) > 0.2)
        soft = settled & (np.sin(2 * np.pi * 3 * t) < -0.2)
        return rms(audio[loud]) / rms(audio[soft])

    assert rms(squashed) == pytest.approx(rms(voice), rel=1e-3)
    assert loud_to_soft(squashed) < 0.8 * loud_to_soft(voice)


def test_reverb_leaves_a_tail_after_the_voice_stops():
    voice = sung_note(stop=1.0)
    wet = process_voice(voice, np.random.default_rng(2), ONLY_ROOMS)
    tail = slice(int(1.05 * RATE), int(1.3 * RATE))
    assert not voice[tail].any()
    assert np.sqrt(np.mean(wet[tail] ** 2)) > 1e-4


def test_plate_reverb_uses_the_given_impulse_responses(tmp_path):
    decay = np.exp(-np.arange(RATE) / 2000.0) * np.random.default_rng(0).standard_normal(RATE)
    sf.write(tmp_path / "plate.flac", (0.5 * decay / np.abs(decay).max()).astype(np.float32), RATE)
    plates = ImpulseResponses(tmp_path)
    assert plates.names == ("plate.flac",) and np.sum(plates.responses[0] ** 2) == pytest.approx(1, rel=1e-4)
    config = VoiceEffectsConfig(reverb_probability=1.0, plate_share=1.0)
    wet = process_voice(sung_note(stop=1.0), np.random.default_rng(3), config, plates)
    assert np.sqrt(np.mean(wet[int(1.05 * RATE):int(1.2 * RATE)] ** 2)) > 1e-4


def test_simulated_rooms_are_finite_unit_energy_and_differ():
    first = room_impulse_response(np.random.default_rng(0), (0.2, 0.8))
    second = room_impulse_response(np.random.default_rng(1), (0.2, 0.8))
    for response in (first, second):
        assert np.isfinite(response).all()
        assert np.sum(response.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-4)
    assert len(first) != len(second) or not np.allclose(first, second)


def test_bad_effect_settings_and_folders_are_one_line_errors(tmp_path):
    with pytest.raises(VocalfrontError, match="reverb_probability"):
        VoiceEffectsConfig(reverb_probability=1.5)
    with pytest.raises(VocalfrontError, match="pitch_semitones_range"):
        VoiceEffectsConfig(pitch_semitones_range=(-13.0, 2.0))
    with pytest.raises(VocalfrontError, match="pitch_semitones_range"):
        VoiceEffectsConfig(pitch_semitones_range=(3.0, -3.0))
    with pytest.raises(VocalfrontError, match="rt60_range"):
        VoiceEffectsConfig(rt60_range=(0.9, 0.1))
    with pytest.raises(AudioError, match="no impulse responses"):
        ImpulseResponses(tmp_path)
    with pytest.raises(AudioError, match="not found"):
        ImpulseResponses(tmp_path / "missing")
