"""``check_dataset`` and ``vocalfront data check``: every problem listed, or a summary."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import soundfile as sf
from test_readers import write_mir1k, write_song

from vocalfront.cli import data as data_cli
from vocalfront.data.check import check_dataset, detect_format


def main(argv: list[str]) -> int:
    from vocalfront.cli import main as cli_main

    return cli_main(argv)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vocalfront data")
    data_cli.add_arguments(parser)
    return data_cli.run(parser.parse_args(list(argv)))


@pytest.fixture
def mir1k(tmp_path):
    write_mir1k(tmp_path, {"amy": 2, "leon": 1, "yifen": 1, "davidson": 1}, seconds=1.5)
    return tmp_path


def test_clean_mir1k_summary_per_split(mir1k):
    report = check_dataset(mir1k)
    assert report.ok and report.format == "mir1k" and report.clips == 5
    assert [(s.name, s.clips, len(s.singers)) for s in report.splits] == [
        ("train", 3, 2), ("valid", 2, 2), ("total", 5, 4)]
    total = report.splits[-1]
    assert total.seconds == pytest.approx(7.5)
    # voice from 1.0 s in 1.5 s clips: 102 frames, the last 34 (centres >= 0.99 s) are nearest
    # to sung MIR-1K label frames
    assert total.frames == 5 * 102
    assert total.vocal_fraction == pytest.approx(34 / 102)


def test_cli_prints_the_summary_table_and_exits_0_when_clean(mir1k, capsys):
    assert run_cli("check", str(mir1k)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"MIR-1K at {mir1k}: 5 clips, no problems"
    assert lines[1].split() == ["split", "singers", "clips", "minutes", "vocal"]
    assert lines[2].split()[:3] == ["train", "2", "3"]
    assert lines[4].split() == ["total", "4", "5", "0.1", "33.3%"]


def test_every_problem_is_listed_with_file_and_line_and_exit_status_1(mir1k, capsys):
    (mir1k / "Wavfile" / "amy_1_02.flac").write_bytes(b"not audio at all")
    (mir1k / "vocal-nonvocalLabel" / "leon_1_01.vocal").write_text("0\n1\n7\n" + "1\n" * 45 + "x\n")
    (mir1k / "vocal-nonvocalLabel" / "yifen_1_01.vocal").unlink()
    (mir1k / "vocal-nonvocalLabel" / "davidson_1_01.vocal").write_text("1\n" * 200)
    assert run_cli("check", str(mir1k)) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{mir1k}/Wavfile/amy_1_02.flac: not a readable audio file (Format not recognised)"
    assert lines[1].startswith(f"{mir1k}/vocal-nonvocalLabel/davidson_1_01.vocal: 200 label frames")
    assert lines[2] == f"{mir1k}/vocal-nonvocalLabel/leon_1_01.vocal:3: expected 0 or 1, got '7'"
    assert lines[3] == f"{mir1k}/vocal-nonvocalLabel/leon_1_01.vocal:49: expected 0 or 1, got 'x'"
    assert lines[4].startswith(f"{mir1k}/Wavfile/yifen_1_01.flac: no label file")
    assert lines[5] == f"MIR-1K at {mir1k}: 5 problems in 4 of 5 clips"


def test_folder_problems_empty_audio_and_label_lines(tmp_path):
    write_song(tmp_path / "good.wav")
    (tmp_path / "good.lab").write_text("0 1 sing\n")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "empty.lab").write_text("0 1 sing\n")
    write_song(tmp_path / "late.wav")
    (tmp_path / "late.lab").write_text("0 1 sing\n1 5 nosing\n0.5 0.7 sing\n")
    report = check_dataset(tmp_path)
    assert report.format == "jamendo"
    assert [str(p).removeprefix(f"{tmp_path}/") for p in report.problems] == [
        "empty.wav: empty file (0 bytes)",
        "late.lab:2: segment ends at 5 s, more than 1 s after the end of the audio (2.000 s)",
        "late.lab:3: segment starting at 0.5 s overlaps the previous one, which ends at 1 s",
    ]
    assert [p.line for p in check_dataset(tmp_path, tolerance=3.5).problems] == [None, 3]


def test_jamendo_filelists_give_the_summary_splits(tmp_path):
    for name, split in (("a", "train"), ("b", "valid"), ("c", "test")):
        write_song(tmp_path / "audio" / f"{name}.wav", seconds=1.5)
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"{name}.lab").write_text("0 0.75 sing\n0.75 1.5 nosing\n")
        (tmp_path / "filelists").mkdir(exist_ok=True)
        (tmp_path / "filelists" / split).write_text(f"{name}.wav\n")
    report = check_dataset(tmp_path, "jamendo")
    assert report.ok
    assert [s.name for s in report.splits] == ["train", "valid", "test", "total"]
    assert report.splits[-1].vocal_fraction == pytest.approx(0.5, abs=0.03)
    assert "singers" not in report.to_text()


def test_folder_of_csv_labels_has_a_single_summary_row(tmp_path):
    write_song(tmp_path / "x.flac")
    (tmp_path / "x.csv").write_text("start,end,label\n0,1,vocal\n")
    report = check_dataset(tmp_path)
    assert report.format == "folder" == detect_format(tmp_path)
    assert [s.name for s in report.splits] == ["all"]
    assert report.to_text().splitlines()[0] == f"labelled folder at {tmp_path}: 1 clip, no problems"


def test_missing_or_empty_dataset_folder_is_a_problem_not_a_traceback(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"{tmp_path}/nowhere: no such folder; give the dataset folder" in captured.err
    assert "mirlab.org" in captured.err
    assert run_cli("check", str(tmp_path), "--format", "mir1k") == 1
    assert "Wavfile: MIR-1K audio folder not found" in capsys.readouterr().out


def test_nan_audio_is_reported(tmp_path):
    signal = np.full(30000, np.nan, dtype=np.float32)
    sf.write(tmp_path / "nan.wav", signal, 22050, subtype="FLOAT")
    (tmp_path / "nan.txt").write_text("0 1\n")
    (problem,) = check_dataset(tmp_path).problems
    assert problem.problem == "contains NaN or Inf samples"


def write_music(root, files: dict[str, float]) -> None:
    """Tracks of noise at the given paths below ``root``, lengths in seconds."""
    rng = np.random.default_rng(0)
    for name, seconds in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, 0.1 * rng.standard_normal(int(22050 * seconds)), 22050)


def test_instrumental_music_is_summarised_per_folder_with_the_tracks_left_out(tmp_path, capsys):
    write_music(tmp_path, {"games/a.flac": 3.0, "games/b.flac": 3.0, "midi/c.flac": 6.0,
                           "games/nunc_dimittis.ogg": 1.5})
    assert run_cli("check", str(tmp_path), "--format", "instrumental") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"instrumental music at {tmp_path}: 4 tracks, no problems"
    assert out[1].split() == ["folder", "tracks", "minutes"]
    assert out[2].split() == ["games", "3", "0.1"] and out[3].split() == ["midi", "1", "0.1"]
    assert out[4].split() == ["total", "4", "0.2"]
    assert out[5] == "left out by name (INSTRUMENTAL_EXCLUDED): games/nunc_dimittis.ogg"


def test_unreadable_instrumental_tracks_are_listed_and_the_check_fails(tmp_path, capsys):
    write_music(tmp_path, {"games/a.flac": 1.0})
    (tmp_path / "games" / "broken.ogg").write_bytes(b"OggS but not really")
    assert run_cli("check", str(tmp_path), "--format", "instrumental") == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "broken.ogg: not a readable audio file" in out[0]
    assert out[1] == f"instrumental music at {tmp_path}: 1 problem in 1 of 2 tracks"
    (tmp_path / "empty").mkdir()
    assert run_cli("check", str(tmp_path / "empty"), "--format", "instrumental") == 1
    assert f"{tmp_path / 'empty'}: no audio files found" in capsys.readouterr().out
