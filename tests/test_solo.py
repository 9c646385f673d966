"""Solo-singing readers (SSVD, GTSinger): labels on the grid, voice activity, fixed splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vocalfront.data.solo import (
    GtsingerDataset,
    GtsingerSpeechDataset,
    SsvdDataset,
    close_gaps,
    drop_short,
    split_of_key,
    voice_activity,
)
from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID

RATE = 48000  # Opus files (as the corpora have them) are 48 kHz


def tone(seconds: float, active: list[tuple[float, float]], rate: int = RATE) -> np.ndarray:
    """A 300 Hz tone inside the ``active`` spans, faint noise elsewhere."""
    t = np.arange(int(seconds * rate)) / rate
    audio = 1e-4 * np.random.default_rng(0).standard_normal(len(t))
    for start, end in active:
        audio += 0.3 * np.sin(2 * np.pi * 300 * t) * ((t >= start) & (t < end))
    return audio.astype(np.float32)


def frames_between(labels: np.ndarray, start: float, end: float) -> np.ndarray:
    times = DEFAULT_GRID.frame_times(len(labels))
    return labels[(times > start) & (times < end)]


def write_ssvd(root: Path, name: str, notes: list[tuple[float, float]], seconds: float = 4.0) -> None:
    (root / "test").mkdir(parents=True, exist_ok=True)
    sf.write(root / "test" / f"{name}.ogg", tone(seconds, notes), RATE, format="OGG", subtype="OPUS")
    (root / "test" / f"{name}.ogg").rename(root / "test" / f"{name}.opus")
    (root / "test" / f"{name}.txt").write_text("".join(f"{a:.2f}\t{b:.2f}\t60.0\n" for a, b in notes))


def test_ssvd_notes_become_singing_and_short_gaps_between_notes_are_closed(tmp_path):
    write_ssvd(tmp_path, "1001", [(0.5, 1.0), (1.1, 1.5), (2.5, 3.0)])
    item = SsvdDataset(tmp_path)[0]
    assert len(item.labels) == DEFAULT_GRID.num_frames(len(item.audio))
    assert frames_between(item.labels, 0.55, 1.45).all()        # 0.1 s gap closed
    assert not frames_between(item.labels, 1.55, 2.45).any()    # 1 s gap kept
    assert frames_between(item.labels, 2.55, 2.95).all()
    assert not frames_between(item.labels, 0.0, 0.45).any()
    assert item.metadata["source"] == "ssvd" and item.metadata["split"] in ("train", "valid", "test")


def test_ssvd_bad_note_line_is_reported_with_its_line(tmp_path):
    write_ssvd(tmp_path, "1002", [(0.5, 1.0)])
    (tmp_path / "test" / "1002.txt").write_text("0.5\t1.0\t60\nnot a note\n")
    item, problems = SsvdDataset(tmp_path).check(SsvdDataset(tmp_path).clips[0])
    assert item is not None and len(problems) == 1 and problems[0].line == 2


def write_gtsinger(root: Path, folder: str, stem: str, active: list[tuple[float, float]]) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    path = root / folder / f"{stem}.ogg"
    sf.write(path, tone(4.0, active), RATE, format="OGG", subtype="OPUS")
    path.rename(path.with_suffix(".opus"))


def test_gtsinger_voice_activity_follows_the_voice_level(tmp_path):
    write_gtsinger(tmp_path, "singing", "fr01_Control-abc", [(1.0, 2.0), (2.1, 3.0)])
    item = GtsingerDataset(tmp_path)[0]
    assert frames_between(item.labels, 1.05, 2.95).all()
    assert not frames_between(item.labels, 0.0, 0.9).any()
    assert not frames_between(item.labels, 3.1, 4.0).any()
    assert item.metadata["source"] == "gtsinger"


def test_gtsinger_speech_is_voice_from_its_level_in_its_singers_split(tmp_path):
    singers = [f"fr{i:02d}" for i in range(1, 13)]
    for singer in singers:
        write_gtsinger(tmp_path, "singing", f"{singer}_Control-abc", [(1.0, 3.0)])
        write_gtsinger(tmp_path, "speech", f"{singer}_Speech-xyz", [(0.5, 1.5), (2.0, 2.5)])
    singing, speech = GtsingerDataset(tmp_path), GtsingerSpeechDataset(tmp_path)
    assert [clip.name for clip in speech.clips] == [f"{singer}_Speech-xyz" for singer in singers]
    split_of = {clip.name[:4]: clip.metadata["split"] for clip in singing.clips}
    assert {clip.metadata["split"] for clip in speech.clips} == set(split_of.values())
    assert all(clip.metadata["split"] == split_of[clip.name[:4]] for clip in speech.clips)
    item = speech[0]
    assert item.metadata["source"] == "gtsinger_speech"
    assert frames_between(item.labels, 0.55, 1.45).all() and frames_between(item.labels, 2.05, 2.45).all()
    assert not frames_between(item.labels, 1.6, 1.9).any()     # a 0.5 s pause is not voice
    assert not frames_between(item.labels, 2.6, 4.0).any()


def test_gtsinger_speech_without_its_folder_is_a_one_line_error(tmp_path):
    write_gtsinger(tmp_path, "singing", "fr01_Control-abc", [(1.0, 3.0)])
    with pytest.raises(VocalfrontError, match=r"no GTSinger recordings \(speech/\*\.opus\)"):
        GtsingerSpeechDataset(tmp_path)


def test_gtsinger_recordings_of_one_song_share_a_split():
    assert GtsingerDataset.group_key("fr01_Breathy-C9tUB44p") == "fr01"
    assert GtsingerDataset.group_key("EN-Alto-2-Mixed_Voice_and_Falsetto-Control-BMv") == "EN-Alto-2"
    assert GtsingerDataset.group_key("EN-Alto-2-Vibrato-Control-BZSq") == "EN-Alto-2"


def test_split_of_key_is_fixed_and_near_its_shares():
    splits = [split_of_key(f"ssvd/{i}") for i in range(2000)]
    assert splits == [split_of_key(f"ssvd/{i}") for i in range(2000)]
    shares = {name: splits.count(name) / len(splits) for name in ("train", "valid", "test")}
    assert shares["train"] == pytest.approx(0.7, abs=0.04)
    assert shares["valid"] == pytest.approx(0.15, abs=0.04)


def test_close_gaps_and_drop_short_change_only_inner_gaps_and_short_runs():
    labels = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0], np.float32)
    assert close_gaps(labels, 2).tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0]
    assert drop_short(labels, 2).tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]


def test_voice_activity_of_silence_is_finite_and_all_zero():
    labels = voice_activity(np.zeros(RATE * 2, np.float32), DEFAULT_GRID)
    assert not labels.any()


def test_missing_corpus_folders_are_one_line_errors(tmp_path):
    with pytest.raises(VocalfrontError, match="no SSVD recordings"):
        SsvdDataset(tmp_path)
    with pytest.raises(VocalfrontError, match="no GTSinger recordings"):
        GtsingerDataset(tmp_path)
