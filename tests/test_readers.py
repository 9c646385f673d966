"""Dataset readers (MIR-1K, Jamendo, labelled folders) and the fixed MIR-1K split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vocalfront.data.readers import JamendoDataset, LabelledFolder, Mir1kDataset
from vocalfront.data.split import MIR1K_TEST_SINGERS, MIR1K_TRAIN_SINGERS, MIR1K_VALID_SINGERS, mir1k_split
from vocalfront.errors import AudioError, LabelError, VocalfrontError
from vocalfront.grid import DEFAULT_GRID

MIR1K_RATE = 16000
VOICE_FROM = 1.0  # seconds; synthetic clips are silent before, sung after


def write_mir1k(root: Path, clips: dict[str, int], seconds: float = 2.0) -> None:
    """A tiny MIR-1K folder: ``clips`` maps singer → number of clips of song 1.

    Left channel: an accompaniment throughout, four tones whose levels step every 0.1 s, tones
    and steps the singer's own (so no two singers share a backing track); right channel: a 1 kHz
    "voice" from ``VOICE_FROM`` s on, labelled accordingly (label frame k centred at 0.02 k + 0.02 s).
    """
    (root / "Wavfile").mkdir(parents=True, exist_ok=True)
    (root / "vocal-nonvocalLabel").mkdir(exist_ok=True)
    t = np.arange(int(seconds * MIR1K_RATE)) / MIR1K_RATE
    voice = 0.4 * np.sin(2 * np.pi * 1000 * t) * (t >= VOICE_FROM)
    centres = 0.02 * np.arange(round(seconds / 0.02) - 1) + 0.02
    labels = "".join(f"{int(c >= VOICE_FROM)} \n" for c in centres)
    for singer, count in clips.items():
        rng = np.random.default_rng(list(singer.encode()))
        accompaniment = sum(rng.uniform(0.2, 1.0, int(seconds * 10) + 1)[(t * 10).astype(int)]
                            * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) for _ in range(4))
        stereo = np.stack([0.1 * accompaniment, voice], axis=1)
        for n in range(1, count + 1):
            name = f"{singer}_1_{n:02d}"
            sf.write(root / "Wavfile" / f"{name}.flac", stereo, MIR1K_RATE)
            (root / "vocal-nonvocalLabel" / f"{name}.vocal").write_text(labels)


def write_song(path: Path, seconds: float = 2.0, rate: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * rate)) / 7), rate)


def singing_span(labels: np.ndarray) -> tuple[float, float]:
    """Centre times (s) of the first and last singing frame."""
    times = DEFAULT_GRID.frame_times(len(labels))[labels == 1]
    return float(times[0]), float(times[-1])


def test_mir1k_clips_are_listed_with_singer_and_song(tmp_path):
    write_mir1k(tmp_path, {"amy": 2, "Kenshin": 1})
    dataset = Mir1kDataset(tmp_path)
    assert len(dataset) == 3
    assert [clip.name for clip in dataset.clips] == ["Kenshin_1_01", "amy_1_01", "amy_1_02"]
    assert dataset.clips[1].metadata == {"singer": "amy", "song": "1"}
    assert dataset.clips[1].label_path == tmp_path / "vocal-nonvocalLabel" / "amy_1_01.vocal"


def test_mir1k_clip_loads_as_mixture_at_22050_hz_with_labels_on_the_grid(tmp_path):
    write_mir1k(tmp_path, {"amy": 1})
    audio, labels, metadata = Mir1kDataset(tmp_path)[0]
    assert audio.dtype == labels.dtype == np.float32
    assert audio.shape == (44100,)
    assert labels.shape == (DEFAULT_GRID.num_frames(44100),)
    first, last = singing_span(labels)
    assert VOICE_FROM - 0.02 < first < VOICE_FROM + 0.02
    assert last == DEFAULT_GRID.frame_times(len(labels))[-1]
    assert metadata["name"] == "amy_1_01" and metadata["singer"] == "amy"
    assert metadata["seconds"] == pytest.approx(2.0)


def test_mir1k_stems_are_voice_right_accompaniment_left_and_sum_to_the_mixture(tmp_path):
    write_mir1k(tmp_path, {"amy": 1})
    dataset = Mir1kDataset(tmp_path)
    voice, accompaniment, labels = dataset.load_stems(dataset.clips[0])
    np.testing.assert_allclose(voice + accompaniment, dataset[0].audio, atol=1e-6)
    np.testing.assert_array_equal(labels, dataset[0].labels)
    before = slice(0, int(0.9 * 22050))
    assert np.abs(voice[before]).max() < 1e-3 < np.abs(accompaniment[before]).max()


def test_mir1k_singers_are_selected_case_insensitively(tmp_path):
    write_mir1k(tmp_path, {"amy": 2, "Kenshin": 1, "leon": 1})
    assert [c.name for c in Mir1kDataset(tmp_path, ["kenshin", "LEON"]).clips] == [
        "Kenshin_1_01", "leon_1_01"]
    with pytest.raises(VocalfrontError, match="no MIR-1K clips of singers tammy"):
        Mir1kDataset(tmp_path, ["tammy"])


def test_missing_dataset_folders_are_errors(tmp_path):
    with pytest.raises(VocalfrontError, match="dataset folder not found"):
        Mir1kDataset(tmp_path / "nowhere")
    with pytest.raises(VocalfrontError, match="Wavfile: MIR-1K audio folder not found"):
        Mir1kDataset(tmp_path)
    with pytest.raises(VocalfrontError, match="no audio files"):
        LabelledFolder(tmp_path)


def test_mir1k_label_count_disagreeing_with_the_audio_length_is_a_label_error(tmp_path):
    write_mir1k(tmp_path, {"amy": 1})
    label = tmp_path / "vocal-nonvocalLabel" / "amy_1_01.vocal"
    label.write_text("1\n" * 30)
    with pytest.raises(LabelError, match=r"amy_1_01.vocal: 30 label frames cover 0.62 s but"):
        Mir1kDataset(tmp_path)[0]
    assert len(Mir1kDataset(tmp_path, tolerance=1.5)[0].labels) == DEFAULT_GRID.num_frames(44100)


def test_mir1k_mono_file_is_an_audio_error(tmp_path):
    write_mir1k(tmp_path, {"amy": 1})
    sf.write(tmp_path / "Wavfile" / "amy_1_01.flac", np.zeros(32000), MIR1K_RATE)
    with pytest.raises(AudioError, match=r"expected 2 channels \(accompaniment, voice\), got 1"):
        Mir1kDataset(tmp_path)[0]


def test_bad_clips_are_skipped_with_a_warning_or_raise(tmp_path):
    write_mir1k(tmp_path, {"amy": 3})
    (tmp_path / "vocal-nonvocalLabel" / "amy_1_02.vocal").unlink()
    dataset = Mir1kDataset(tmp_path, on_error="skip")
    assert dataset.clips[1].label_path is None
    with pytest.warns(UserWarning, match="skipping clip amy_1_02: .*no label file"):
        names = [item.metadata["name"] for item in dataset]
    assert names == ["amy_1_01", "amy_1_03"]
    with pytest.raises(LabelError, match=r"amy_1_02.flac: no label file \(looked for"):
        list(Mir1kDataset(tmp_path, on_error="raise"))
    with pytest.raises(VocalfrontError, match="on_error must be"):
        Mir1kDataset(tmp_path, on_error="ignore")


def test_jamendo_layout_with_audio_and_labels_folders_and_filelists(tmp_path):
    write_song(tmp_path / "audio" / "01 - First.ogg")
    write_song(tmp_path / "audio" / "02 - Second.ogg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "01 - First.lab").write_text("0 0.5 nosing\n0.5 1.5 sing\n1.5 2 nosing\n")
    (tmp_path / "labels" / "02 - Second.lab").write_text("0 2 nosing\n")
    (tmp_path / "filelists").mkdir()
    (tmp_path / "filelists" / "train").write_text("01 - First.ogg\n")
    (tmp_path / "filelists" / "test").write_text("02 - Second.ogg\n")
    dataset = JamendoDataset(tmp_path)
    assert [(c.name, c.metadata) for c in dataset.clips] == [
        ("01 - First", {"split": "train"}), ("02 - Second", {"split": "test"})]
    first, last = singing_span(dataset[0].labels)
    assert 0.5 <= first < 0.5 + 1 / 70 and 1.5 - 1 / 70 <= last < 1.5
    assert dataset[1].labels.sum() == 0


def test_jamendo_files_side_by_side_and_unknown_labels(tmp_path):
    write_song(tmp_path / "song.wav")
    (tmp_path / "song.lab").write_text("0 1 sing\n1 2 instrumental\n")
    with pytest.raises(LabelError, match=r"song.lab:2: unknown label 'instrumental'"):
        JamendoDataset(tmp_path)[0]


def test_labelled_folder_finds_txt_and_csv_labels_in_subfolders(tmp_path):
    write_song(tmp_path / "rock" / "a.flac", rate=44100)
    (tmp_path / "rock" / "a.txt").write_text("0.25\t0.75\tvoice\n")
    write_song(tmp_path / "pop" / "b.wav", seconds=1.0)
    (tmp_path / "pop" / "b.csv").write_text("start;end;label\n0.5;1.0;singing\n")
    dataset = LabelledFolder(tmp_path)
    assert [c.name for c in dataset.clips] == ["pop/b", "rock/a"]
    pop, rock = dataset
    assert rock.audio.shape == (44100,)
    assert 0.25 <= singing_span(rock.labels)[0] < 0.25 + 1 / 70
    assert 0.5 <= singing_span(pop.labels)[0] < 0.5 + 1 / 70


def test_labelled_folder_missing_label_and_too_short_audio_are_errors(tmp_path):
    write_song(tmp_path / "nolabel.wav")
    write_song(tmp_path / "short.wav", seconds=0.03)
    (tmp_path / "short.lab").write_text("")
    dataset = LabelledFolder(tmp_path)
    with pytest.raises(LabelError, match=r"nolabel.wav: no label file \(looked for nolabel.lab, "):
        dataset[0]
    with pytest.raises(AudioError, match=r"short.wav: too short: 0.030 s, one frame needs 0.046 s"):
        dataset[1]


def test_lenient_folder_repairs_overlaps_with_a_warning(tmp_path):
    write_song(tmp_path / "a.wav")
    (tmp_path / "a.lab").write_text("0 1 sing\n0.5 1.5 sing\n")
    with pytest.raises(LabelError, match="overlaps"):
        LabelledFolder(tmp_path)[0]
    with pytest.warns(UserWarning, match="repaired"):
        labels = LabelledFolder(tmp_path, strict=False)[0].labels
    assert singing_span(labels)[1] < 1.5


def test_mir1k_split_is_singer_disjoint_and_leaves_out_other_singers(tmp_path):
    singers = [*MIR1K_TRAIN_SINGERS, *MIR1K_VALID_SINGERS, *MIR1K_TEST_SINGERS, "heldout"]
    write_mir1k(tmp_path, dict.fromkeys(singers, 2), seconds=0.1)
    train, valid, test = mir1k_split(tmp_path, on_error="skip")
    singers_of = [{clip.metadata["singer"] for clip in split.clips} for split in (train, valid, test)]
    assert singers_of[1] == set(MIR1K_VALID_SINGERS)
    assert singers_of[2] == set(MIR1K_TEST_SINGERS)
    # fdps_1 shares its backing track with yifen_1 (MIR1K_SHARED_BACKING): not in training
    assert singers_of[0] == set(MIR1K_TRAIN_SINGERS) - {"fdps"}
    names = [{clip.name for clip in split.clips} for split in (train, valid, test)]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert (len(train), len(valid), len(test)) == (10, 4, 4)
    assert train.on_error == valid.on_error == test.on_error == "skip"


def test_mir1k_split_without_test_singers_has_no_test_reader(tmp_path):
    write_mir1k(tmp_path, dict.fromkeys([*MIR1K_TRAIN_SINGERS, *MIR1K_VALID_SINGERS], 1), seconds=0.1)
    assert mir1k_split(tmp_path).test is None
