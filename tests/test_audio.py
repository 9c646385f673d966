"""Audio loading: formats, channels, resampling, errors and the disk cache."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from vocalfront import audio
from vocalfront.audio import load_audio, load_channels, resample
from vocalfront.errors import AudioError


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(
        np.float32
    )


@pytest.mark.parametrize(
    ("name", "subtype", "tolerance"),
    [
        ("u8.wav", "PCM_U8", 1 / 64),
        ("s16.wav", "PCM_16", 1e-4),
        ("s24.wav", "PCM_24", 1e-6),
        ("s32.wav", "PCM_32", 1e-7),
        ("f32.wav", "FLOAT", 0),
        ("f64.wav", "DOUBLE", 1e-7),
        ("s16.flac", "PCM_16", 1e-4),
        ("s24.flac", "PCM_24", 1e-6),
        ("s16.aiff", "PCM_16", 1e-4),
    ],
)
def test_lossless_formats_load_as_float32_at_full_scale(tmp_path, name, subtype, tolerance):
    signal = tone(440, 22050, 0.2)
    sf.write(tmp_path / name, signal, 22050, subtype=subtype)
    loaded = load_audio(tmp_path / name)
    assert loaded.dtype == np.float32
    assert loaded.shape == signal.shape
    np.testing.assert_allclose(loaded, signal, atol=tolerance)


@pytest.mark.parametrize(("name", "fmt", "subtype"),
                         [("a.ogg", "OGG", "VORBIS"), ("a.mp3", "MP3", "MPEG_LAYER_III")])
def test_lossy_formats_keep_the_tone(tmp_path, name, fmt, subtype):
    signal = tone(1000, 22050, 0.5)
    sf.write(tmp_path / name, signal, 22050, format=fmt, subtype=subtype)
    loaded = load_audio(tmp_path / name)
    spectrum = np.abs(np.fft.rfft(loaded))
    peak_hz = np.argmax(spectrum) * 22050 / len(loaded)
    assert abs(peak_hz - 1000) < 5
    assert 0.3 < np.abs(loaded).max() < 0.7


def write_with_av(path, channels: np.ndarray, rate: int, codec: str, sample_format: str) -> None:
    """Encode float ``channels`` ``(channels, samples)`` in [-1, 1) into a media container with
    FFmpeg (PyAV), as ``sample_format`` (``fltp``; ``s16p``: 16-bit planar; ``flt``: packed)."""
    import av

    layout = "stereo" if len(channels) == 2 else "mono"
    samples = np.round(channels * 32768).clip(-32768, 32767).astype(np.int16) \
        if sample_format.startswith("s16") else channels.astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout, format=sample_format)
        size = stream.codec_context.frame_size or 1024
        for start in range(0, samples.shape[1], size):
            block = samples[:, start : start + size]
            if not sample_format.endswith("p"):  # packed: one row, channels interleaved
                block = block.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=sample_format,
                                               layout=layout)
            frame.rate = rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(("name", "codec", "sample_format", "rate"),
                         [("a.m4a", "aac", "fltp", 44100), ("a.m4a", "alac", "s16p", 44100),
                          ("a.webm", "libopus", "flt", 48000)])
def test_media_containers_are_decoded_through_ffmpeg_channel_by_channel(tmp_path, name, codec,
                                                                        sample_format, rate):
    left, right = tone(440, rate, 1.0), tone(1000, rate, 1.0, amplitude=0.25)
    write_with_av(tmp_path / name, np.stack([left, right]), rate, codec, sample_format)
    loaded = load_channels(tmp_path / name, 22050)
    assert loaded.dtype == np.float32 and loaded.shape[0] == 2
    assert abs(loaded.shape[1] / 22050 - 1.0) < 0.1
    for channel, hz, amplitude in ((loaded[0], 440, 0.5), (loaded[1], 1000, 0.25)):
        peak_hz = np.argmax(np.abs(np.fft.rfft(channel))) * 22050 / len(channel)
        assert abs(peak_hz - hz) < 5
        assert 0.8 * amplitude < np.sqrt(2 * np.mean(channel[2000:-2000] ** 2)) < 1.2 * amplitude
    if codec == "alac":  # lossless: the very samples
        np.testing.assert_allclose(load_channels(tmp_path / name, rate), np.stack([left, right]),
                                   atol=1 / 32768)
    assert audio.header_seconds(tmp_path / name) == pytest.approx(1.0, abs=0.1)


def test_a_damaged_or_silent_container_is_a_one_line_audio_error(tmp_path):
    (tmp_path / "noise.m4a").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioError, match=r"noise\.m4a: not a readable audio file \(") as caught:
        load_audio(tmp_path / "noise.m4a")
    assert "\n" not in str(caught.value)
    assert audio.header_seconds(tmp_path / "noise.m4a") == 0.0


def test_audio_longer_than_memory_is_a_one_line_audio_error(tmp_path, monkeypatch):
    sf.write(tmp_path / "long.flac", tone(440, 22050, 0.5), 22050)

    def out_of_memory(self, block: np.ndarray, last: bool = False) -> None:
        raise MemoryError

    monkeypatch.setattr(audio._Stream, "add", out_of_memory)
    with pytest.raises(AudioError, match=r"long\.flac: too long to hold in memory \(the header says 0\.0 h"):
        load_audio(tmp_path / "long.flac")


def test_folders_list_containers_beside_libsndfile_formats_and_skip_hidden_files(tmp_path):
    (tmp_path / ".trash").mkdir()
    for name in ("b.m4a", "a.flac", "c.WMA", "notes.txt", "._a.flac", ".trash/d.wav"):
        (tmp_path / name).write_bytes(b"x")
    assert [path.name for path in audio.audio_files(tmp_path)] == ["a.flac", "b.m4a", "c.WMA"]


@pytest.mark.parametrize("where", ["given", "below"])
def test_a_folder_that_cannot_be_listed_is_an_audio_error_naming_it(where, tmp_path, refuse_listing):
    locked = tmp_path / "music" / "locked"
    locked.mkdir(parents=True)
    (tmp_path / "music" / "a.flac").write_bytes(b"x")
    refuse_listing(locked)
    message = rf"^{re.escape(str(locked))}: cannot read folder \(Permission denied\)"
    with pytest.raises(AudioError, match=message):
        audio.audio_files(locked if where == "given" else tmp_path / "music")


def test_mp3_without_libsndfile_support_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "song.mp3"
    sf.write(path, tone(440, 22050, 0.2), 22050, format="MP3", subtype="MPEG_LAYER_III")
    monkeypatch.setattr(audio.sf, "available_formats", lambda: {"WAV": "WAV"})
    with pytest.raises(AudioError, match=r"MP3 is not supported.*convert"):
        load_audio(path)


def test_channels_are_kept_apart_and_mixed_by_mean_or_sum(tmp_path):
    channels = np.stack([tone(f, 16000, 0.1, 0.2) for f in (200, 300, 500)])
    path = tmp_path / "three.wav"
    sf.write(path, channels.T, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_channels(path, 16000), channels)
    np.testing.assert_allclose(load_audio(path, 16000), channels.mean(axis=0), atol=1e-7)
    np.testing.assert_allclose(load_audio(path, 16000, mix="sum"), channels.sum(axis=0), atol=1e-7)
    np.testing.assert_array_equal(load_audio(path, 16000, channel=2), channels[2])


def test_channel_out_of_range_names_the_channel_count(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.zeros((2000, 2), np.float32), 16000)
    with pytest.raises(AudioError, match=r"stereo.wav: channel 2 out of range.*2 channel"):
        load_audio(path, channel=2)
    with pytest.raises(AudioError, match=r"out of range"):
        load_audio(path, channel=-1)


def test_other_rates_are_resampled_to_22050_hz(tmp_path):
    path = tmp_path / "low.wav"
    sf.write(path, tone(1000, 16000, 1.0), 16000, subtype="FLOAT")
    loaded = load_audio(path)
    assert loaded.shape == (22050,)
    np.testing.assert_allclose(loaded[1000:-1000], tone(1000, 22050, 1.0)[1000:-1000], atol=1e-3)


def test_resampling_removes_content_above_the_new_nyquist_frequency():
    # a 10 kHz tone cannot exist at 16 kHz; a resampler without a low-pass folds it to 6 kHz
    downsampled = resample(tone(10000, 44100, 1.0), 44100, 16000)
    assert downsampled.shape == (16000,)
    assert np.sqrt(np.mean(downsampled[500:-500] ** 2)) < 1e-3


def test_resample_keeps_channel_layout_and_copies_at_equal_rates():
    stereo = np.stack([tone(300, 8000, 0.5), tone(700, 8000, 0.5)])
    assert resample(stereo, 8000, 16000).shape == (2, 8000)
    same = resample(stereo, 8000, 8000)
    np.testing.assert_array_equal(same, stereo)
    assert same is not stereo
    with pytest.raises(AudioError, match=r"positive"):
        resample(stereo, 0, 16000)


def test_missing_empty_and_non_audio_files_are_audio_errors(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio\n" * 10)
    (tmp_path / "folder.wav").mkdir()
    cases = {"missing.wav": "file not found", "empty.wav": r"empty file \(0 bytes\)",
             "text.wav": "not a readable audio file", "folder.wav": "not a file"}
    for name, problem in cases.items():
        with pytest.raises(AudioError, match=f"{name}: {problem}"):
            load_audio(tmp_path / name)


def test_corrupt_flac_is_an_audio_error(tmp_path):
    path = tmp_path / "broken.flac"
    sf.write(path, tone(440, 16000, 0.5), 16000)
    data = bytearray(path.read_bytes())
    data[100:] = np.random.default_rng(0).integers(0, 256, len(data) - 100, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=r"broken.flac: not a readable audio file"):
        load_audio(path)


def test_audio_file_without_samples_is_an_audio_error(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"contains no samples"):
        load_audio(path)


def test_nan_or_inf_samples_are_an_audio_error(tmp_path):
    signal = tone(440, 16000, 0.1)
    signal[10] = np.nan
    sf.write(tmp_path / "nan.wav", signal, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: contains NaN or Inf"):
        load_audio(tmp_path / "nan.wav")


def test_second_load_comes_from_the_cache_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440, 16000, 0.3), 16000)
    first = load_audio(path, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1

    def no_decoding(path):
        raise AssertionError("decoded again")

    monkeypatch.setattr(audio, "_decode", no_decoding)
    np.testing.assert_array_equal(load_audio(path, cache_dir=tmp_path / "cache"), first)
    np.testing.assert_array_equal(load_audio(path, channel=0, cache_dir=tmp_path / "cache"), first)


def test_cache_directory_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440, 16000, 0.3), 16000)
    monkeypatch.setenv(audio.CACHE_ENV, str(tmp_path / "envcache"))
    load_audio(path)
    assert len(list((tmp_path / "envcache").glob("*.npy"))) == 1


def test_without_cache_setting_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(audio.CACHE_ENV, raising=False)
    path = tmp_path / "a.wav"
    sf.write(path, tone(440, 16000, 0.3), 16000)
    load_audio(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_changed_content_or_rate_does_not_reuse_the_cache(tmp_path):
    path, cache = tmp_path / "a.wav", tmp_path / "cache"
    sf.write(path, tone(440, 16000, 0.3), 16000)
    at_22050 = load_audio(path, cache_dir=cache)
    at_16000 = load_audio(path, 16000, cache_dir=cache)
    assert at_16000.shape == (4800,) and at_22050.shape == (6615,)
    sf.write(path, tone(880, 16000, 0.4), 16000)
    assert load_audio(path, cache_dir=cache).shape == (8820,)
    assert len(list(cache.glob("*.npy"))) == 3


def test_damaged_cache_entry_is_decoded_again(tmp_path):
    path, cache = tmp_path / "a.wav", tmp_path / "cache"
    sf.write(path, tone(440, 16000, 0.3), 16000)
    expected = load_audio(path, cache_dir=cache)
    (entry,) = cache.glob("*.npy")
    entry.write_bytes(b"garbage")
    np.testing.assert_array_equal(load_audio(path, cache_dir=cache), expected)
    np.testing.assert_array_equal(np.load(entry)[0], expected)
