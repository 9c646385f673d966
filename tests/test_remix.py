"""Remixing voice and accompaniment stems, and the pool of instrumental music."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vocalfront.data.remix import (
    INSTRUMENTAL_EXCLUDED,
    InstrumentalPool,
    RemixConfig,
    RemixMode,
    remix,
)
from vocalfront.errors import AudioError, VocalfrontError
from vocalfront.grid import DEFAULT_GRID as GRID

RATE = GRID.sample_rate
ONLY = {mode: {other.value: float(other is mode) for other in RemixMode} for mode in RemixMode}


@pytest.fixture
def stems():
    """Two seconds of voice (a tone), accompaniment (noise) and random frame labels."""
    rng = np.random.default_rng(0)
    times = np.arange(2 * RATE) / RATE
    voice = (0.3 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)
    accompaniment = (0.1 * rng.standard_normal(len(times))).astype(np.float32)
    labels = (rng.random(GRID.num_frames(len(times))) > 0.5).astype(np.float32)
    return voice, accompaniment, labels


def sine(seconds: float, hz: float, rate: int = RATE) -> np.ndarray:
    """A sine of ``hz`` Hz, float32, RMS 1/√2."""
    return np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate).astype(np.float32)


def test_voice_mode_is_the_scaled_voice_with_its_labels(stems):
    voice, accompaniment, labels = stems
    result = remix(
        voice, accompaniment, labels, np.random.default_rng(1), RemixConfig(**ONLY[RemixMode.VOICE])
    )
    assert result.mode is RemixMode.VOICE
    assert -6.0 <= result.gain_db <= 6.0
    np.testing.assert_allclose(result.audio, voice * 10 ** (result.gain_db / 40), rtol=1e-5)
    np.testing.assert_array_equal(result.labels, labels)


def test_accompaniment_mode_is_the_scaled_accompaniment_with_zero_labels(stems):
    voice, accompaniment, labels = stems
    config = RemixConfig(**ONLY[RemixMode.ACCOMPANIMENT])
    result = remix(voice, accompaniment, labels, np.random.default_rng(2), config)
    np.testing.assert_allclose(result.audio, accompaniment * 10 ** (-result.gain_db / 40), rtol=1e-5)
    assert result.labels.shape == labels.shape and not result.labels.any()


def test_own_mode_mixes_voice_and_accompaniment_at_the_drawn_gain(stems):
    voice, accompaniment, labels = stems
    config = RemixConfig(**ONLY[RemixMode.OWN], gain_db_range=(-4.0, 2.0))
    gains = []
    for seed in range(20):
        result = remix(voice, accompaniment, labels, np.random.default_rng(seed), config)
        weight = 10 ** (result.gain_db / 40)
        np.testing.assert_allclose(result.audio, voice * weight + accompaniment / weight, atol=1e-6)
        np.testing.assert_array_equal(result.labels, labels)
        gains.append(result.gain_db)
    assert min(gains) >= -4.0 and max(gains) <= 2.0 and max(gains) - min(gains) > 3.0


def test_own_mode_at_zero_gain_is_the_original_mixture(stems):
    voice, accompaniment, labels = stems
    config = RemixConfig(**ONLY[RemixMode.OWN], gain_db_range=(0.0, 0.0))
    result = remix(voice, accompaniment, labels, np.random.default_rng(3), config)
    np.testing.assert_allclose(result.audio, voice + accompaniment, atol=1e-7)


def test_external_mode_puts_pool_music_under_the_voice_at_the_accompaniment_level(stems):
    voice, accompaniment, labels = stems
    pool = InstrumentalPool({"organ": sine(5.0, 1000.0)})
    config = RemixConfig(**ONLY[RemixMode.EXTERNAL], gain_db_range=(0.0, 0.0))
    result = remix(voice, accompaniment, labels, np.random.default_rng(4), config, pool)
    music = result.audio - voice
    spectrum = np.abs(np.fft.rfft(music))
    assert np.argmax(spectrum) * RATE / len(music) == pytest.approx(1000, abs=1)
    assert np.sqrt(np.mean(music**2)) == pytest.approx(np.sqrt(np.mean(accompaniment**2)), rel=0.02)
    np.testing.assert_array_equal(result.labels, labels)


@pytest.mark.parametrize("mode", list(RemixMode))
def test_level_neutral_examples_all_have_the_accompaniments_level_whatever_their_mode(stems, mode):
    voice, accompaniment, labels = stems
    pool = InstrumentalPool({"organ": sine(5.0, 1000.0)})
    config = RemixConfig(**ONLY[mode], gain_db_range=(-8.0, 6.0), level_neutral=True)
    for seed in range(5):
        result = remix(voice, accompaniment, labels, np.random.default_rng(seed), config, pool)
        level = np.sqrt(np.mean(accompaniment**2))
        assert np.sqrt(np.mean(result.audio**2)) == pytest.approx(level, rel=1e-4)


def test_without_level_neutral_a_voice_makes_the_example_louder_than_its_music(stems):
    voice, accompaniment, labels = stems
    config = RemixConfig(**ONLY[RemixMode.OWN], gain_db_range=(0.0, 0.0))
    result = remix(voice, accompaniment, labels, np.random.default_rng(0), config)
    assert np.sqrt(np.mean(result.audio**2)) > 1.5 * np.sqrt(np.mean(accompaniment**2))


def test_level_neutral_solo_voices_take_the_voices_level(stems):
    voice, _, labels = stems
    pool = InstrumentalPool({"organ": sine(5.0, 1000.0)})
    config = RemixConfig(own=0.0, external=1.0, voice=1.0, accompaniment=0.0, instrumental=1.0,
                         level_neutral=True)
    for seed in range(6):
        result = remix(voice, np.zeros_like(voice), labels, np.random.default_rng(seed), config, pool)
        assert np.sqrt(np.mean(result.audio**2)) == pytest.approx(np.sqrt(np.mean(voice**2)), rel=1e-4)


def test_external_weight_without_a_pool_is_an_error(stems):
    with pytest.raises(VocalfrontError, match="InstrumentalPool"):
        remix(*stems, np.random.default_rng(0), RemixConfig(external=0.5))


def test_modes_follow_their_weights_and_repeat_for_a_seed(stems):
    config = RemixConfig(own=0.5, external=0.0, voice=0.25, accompaniment=0.25)

    def draw(seed: int) -> list[RemixMode]:
        rng = np.random.default_rng(seed)
        return [remix(*stems, rng, config).mode for _ in range(400)]

    modes = draw(5)
    assert modes == draw(5) and modes != draw(6)
    shares = {mode: modes.count(mode) / len(modes) for mode in RemixMode}
    assert shares[RemixMode.EXTERNAL] == 0
    assert shares[RemixMode.OWN] == pytest.approx(0.5, abs=0.08)
    assert shares[RemixMode.VOICE] == pytest.approx(0.25, abs=0.07)


def test_a_mode_and_gain_drawn_beforehand_make_the_example_remix_would_draw(stems):
    config = RemixConfig(own=0.4, external=0.0, voice=0.2, accompaniment=0.4)
    for seed in range(6):
        drawn_here = remix(*stems, np.random.default_rng(seed), config)
        rng = np.random.default_rng(seed)
        drawn_before = remix(*stems, rng, config, drawn=config.draw(rng))
        assert (drawn_before.mode, drawn_before.gain_db) == (drawn_here.mode, drawn_here.gain_db)
        assert np.array_equal(drawn_before.audio, drawn_here.audio)
        assert drawn_here.labels.any() == drawn_here.mode.keeps_voice


def test_mismatched_stems_are_rejected(stems):
    voice, accompaniment, labels = stems
    with pytest.raises(AudioError, match="accompaniment"):
        remix(voice, accompaniment[:-1], labels, np.random.default_rng(0), RemixConfig(external=0))
    with pytest.raises(AudioError, match="frame labels"):
        remix(voice, accompaniment, labels[:-1], np.random.default_rng(0), RemixConfig(external=0))


@pytest.mark.parametrize(
    "settings",
    [
        {"own": -1.0},
        {"own": 0, "external": 0, "voice": 0, "accompaniment": 0},
        {"gain_db_range": (3.0, -3.0)},
    ],
)
def test_invalid_remix_config_is_rejected(settings):
    with pytest.raises(VocalfrontError, match="remix"):
        RemixConfig(**settings)


def test_pool_reads_a_folder_and_skips_excluded_unreadable_and_other_files(tmp_path):
    assert "nunc_dimittis.ogg" in INSTRUMENTAL_EXCLUDED
    (tmp_path / "pkg").mkdir()
    sf.write(tmp_path / "pkg" / "nunc_dimittis.ogg", sine(1.0, 300.0), RATE, format="OGG")
    sf.write(tmp_path / "pkg" / "march.wav", sine(1.0, 500.0), RATE)
    sf.write(tmp_path / "Choir.FLAC", sine(1.0, 600.0), RATE)
    sf.write(tmp_path / "strings.flac", sine(1.0, 700.0), RATE)
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    (tmp_path / "notes.txt").write_text("track list")

    default = InstrumentalPool(tmp_path)
    assert sorted(default.names) == ["Choir.FLAC", "pkg/march.wav", "strings.flac"]
    assert len(default.failures) == 1 and "broken.wav" in default.failures[0]

    custom = InstrumentalPool(tmp_path, exclude=["choir.flac", "MARCH.wav"])
    assert sorted(custom.names) == ["pkg/nunc_dimittis.ogg", "strings.flac"]
    by_path = InstrumentalPool(tmp_path, exclude=["PKG/march.wav", "other/strings.flac"])
    assert sorted(by_path.names) == ["Choir.FLAC", "pkg/nunc_dimittis.ogg", "strings.flac"]


def test_pool_skips_silent_tracks_and_needs_one_usable_track():
    pool = InstrumentalPool({"silence": np.zeros(RATE), "tune": sine(1.0, 440.0)})
    assert pool.names == ("tune",)
    assert pool.failures == ["silence: instrumental track is silent"]
    with pytest.raises(VocalfrontError, match="no usable instrumental tracks"):
        InstrumentalPool({"silence": np.zeros(RATE)})
    with pytest.raises(AudioError, match="folder not found"):
        InstrumentalPool("/nonexistent/music")


def test_excerpt_loops_a_short_track():
    track = np.linspace(-1.0, 1.0, 1000, dtype=np.float32) ** 3
    pool = InstrumentalPool([track])
    excerpt = pool.excerpt(np.random.default_rng(0), 3500)
    assert excerpt.shape == (3500,) and excerpt.dtype == np.float32
    np.testing.assert_array_equal(excerpt[1000:2000], excerpt[:1000])
    np.testing.assert_array_equal(excerpt[2000:3000], excerpt[:1000])
    normalised = track / np.sqrt(np.mean(track.astype(np.float64) ** 2))
    np.testing.assert_allclose(np.sort(excerpt[:1000]), np.sort(normalised), rtol=1e-6)


def test_excerpt_crops_a_long_track_at_a_random_start():
    track = np.arange(1, 10_001, dtype=np.float32)
    level = np.sqrt(np.mean(track.astype(np.float64) ** 2))
    pool = InstrumentalPool([track])
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(5):
        indices = np.rint(pool.excerpt(rng, 500) * level)
        np.testing.assert_array_equal(np.diff(indices), 1)  # contiguous, no wrap-around
        starts.add(indices[0])
    assert len(starts) == 5


def test_excerpts_repeat_for_a_seed():
    pool = InstrumentalPool([sine(1.0, 220.0), sine(2.0, 330.0)])
    first = pool.excerpt(np.random.default_rng(3), 4000)
    np.testing.assert_array_equal(first, pool.excerpt(np.random.default_rng(3), 4000))


def test_max_seconds_keeps_the_middle_of_each_track():
    track = np.arange(1, 5001, dtype=np.float32)
    pool = InstrumentalPool([track], sample_rate=1000, max_seconds=1.0)
    assert pool.total_samples == 1000
    excerpt = pool.excerpt(np.random.default_rng(0), 1000)
    level = np.sqrt(np.mean(track.astype(np.float64) ** 2))
    np.testing.assert_allclose(excerpt * level, np.arange(2001, 3001), rtol=1e-5)


def test_instrumental_mode_is_pool_music_alone_with_zero_labels(stems):
    voice, accompaniment, labels = stems
    pool = InstrumentalPool([sine(3.0, 1000.0)])
    result = remix(voice, accompaniment, labels, np.random.default_rng(5),
                   RemixConfig(**ONLY[RemixMode.INSTRUMENTAL]), pool)
    assert result.mode is RemixMode.INSTRUMENTAL and not result.labels.any()
    spectrum = np.abs(np.fft.rfft(result.audio))
    assert np.argmax(spectrum) == pytest.approx(1000 * len(result.audio) / RATE, abs=2)  # no voice
    with pytest.raises(VocalfrontError, match="InstrumentalPool"):
        remix(voice, accompaniment, labels, np.random.default_rng(5),
              RemixConfig(**ONLY[RemixMode.INSTRUMENTAL]))


def test_a_solo_voice_over_external_music_gets_music_at_the_voice_level(stems):
    voice, _, labels = stems
    pool = InstrumentalPool([sine(3.0, 1000.0)])
    result = remix(voice, np.zeros_like(voice), labels, np.random.default_rng(6),
                   RemixConfig(**ONLY[RemixMode.EXTERNAL], gain_db_range=(0.0, 0.0)), pool)
    music = result.audio - voice
    assert np.sqrt(np.mean(music ** 2)) == pytest.approx(np.sqrt(np.mean(voice ** 2)), rel=1e-3)
    np.testing.assert_array_equal(result.labels, labels)


def test_pool_folders_hold_out_whole_subfolders(tmp_path):
    for folder, hz in (("train-music", 300.0), ("valid-music", 500.0), ("test-music", 700.0)):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / f"{folder}.flac", sine(2.0, hz), RATE)
    training = InstrumentalPool(tmp_path, skip_folders=["valid-music", "test-music"])
    held_out = InstrumentalPool(tmp_path, folders=["valid-music"])
    assert training.names == ("train-music/train-music.flac",)
    assert held_out.names == ("valid-music/valid-music.flac",)


def test_pool_keeps_tracks_of_different_folders_that_share_a_file_name(tmp_path):
    for folder, hz in (("game-a", 300.0), ("game-b", 500.0)):
        (tmp_path / folder).mkdir()
        sf.write(tmp_path / folder / "menu.ogg", sine(2.0, hz), RATE, format="OGG")
    pool = InstrumentalPool(tmp_path)
    assert pool.names == ("game-a/menu.ogg", "game-b/menu.ogg")
    assert pool.total_samples == 2 * 2 * RATE


def test_pool_refuses_music_that_would_not_fit_in_memory_before_decoding(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    sf.write(tmp_path / "pkg" / "long.flac", sine(2.0, 300.0), RATE)   # 2 s: 176 400 bytes as float32
    monkeypatch.setattr("vocalfront.data.remix.physical_memory", lambda: 200_000)

    def decode(*args, **kwargs):
        raise AssertionError("audio decoded before the memory check")

    with monkeypatch.context() as patch:
        patch.setattr("vocalfront.audio._decode", decode)
        with pytest.raises(AudioError, match=r"would take .* GB in memory, more than 50% .*max_seconds"):
            InstrumentalPool(tmp_path)
    pool = InstrumentalPool(tmp_path, max_seconds=1.0)   # 1 s of it: 88 200 bytes fit
    assert pool.total_samples == RATE
