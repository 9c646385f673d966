"""Label files: parsing, validation, and mapping onto the frame grid."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vocalfront.data.labels import (
    JAMENDO_LABELS,
    MAX_LABEL_BYTES,
    mir1k_frames_to_grid,
    read_mir1k_labels,
    read_segments,
    segments_to_frames,
)
from vocalfront.errors import LabelError
from vocalfront.grid import DEFAULT_GRID, FrameGrid
from vocalfront.segments import Segment, format_audacity, format_csv, format_lab


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def spans(segments: list[Segment]) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.label) for s in segments]


def test_jamendo_lab_lines_are_read_in_order(tmp_path):
    path = write(tmp_path, "song.lab", "0 12.5 nosing\n12.5 30.25 sing\n30.25 41 nosing\n")
    assert spans(read_segments(path, label_set=JAMENDO_LABELS)) == [
        (0, 12.5, "nosing"), (12.5, 30.25, "sing"), (30.25, 41, "nosing")]


def test_generic_lines_without_label_mark_singing_and_comments_are_skipped(tmp_path):
    path = write(tmp_path, "a.txt", "# vocal regions\n\n1.0 2.0\n3.5\t4.5   chorus voice\n")
    assert spans(read_segments(path)) == [(1.0, 2.0, "sing"), (3.5, 4.5, "chorus voice")]


def test_audacity_label_track_skips_spectral_selection_lines(tmp_path):
    path = write(tmp_path, "track.txt",
                 "0.500000\t1.250000\tsinging\n\\\t100.0\t4000.0\n2.000000\t2.000000\tpoint\n")
    assert spans(read_segments(path)) == [(0.5, 1.25, "singing"), (2.0, 2.0, "point")]


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_with_header_in_either_delimiter_and_column_order(tmp_path, delimiter):
    text = "\n".join(delimiter.join(row) for row in [
        ("label", "onset", "offset"), ("vocal", "0.5", "1.5"), ("", "2", "3")]) + "\n"
    path = write(tmp_path, "notes.csv", text)
    assert spans(read_segments(path)) == [(0.5, 1.5, "vocal"), (2.0, 3.0, "sing")]


def test_csv_is_detected_by_its_header_in_a_txt_file(tmp_path):
    path = write(tmp_path, "notes.txt", "start;end\n1;2\n")
    assert spans(read_segments(path)) == [(1.0, 2.0, "sing")]


def test_csv_without_start_and_end_columns_is_an_error_on_line_1(tmp_path):
    path = write(tmp_path, "bad.csv", "from,to\n1,2\n")
    with pytest.raises(LabelError, match=r"bad.csv:1: CSV header must name start and end"):
        read_segments(path)


def test_segment_starting_at_a_frame_centre_includes_it_and_ending_at_one_excludes_it(tmp_path):
    times = DEFAULT_GRID.frame_times(40)
    path = write(tmp_path, "edges.lab", f"{float(times[10])!r} {float(times[20])!r} sing\n")
    frames = segments_to_frames(read_segments(path), 40)
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(np.flatnonzero(frames), np.arange(10, 20))


def test_segment_just_past_a_frame_centre_excludes_the_start_frame_and_includes_the_end_frame():
    times = DEFAULT_GRID.frame_times(40)
    segment = Segment(times[10] + 1e-9, times[20] + 1e-9, "sing")
    np.testing.assert_array_equal(np.flatnonzero(segments_to_frames([segment], 40)),
                                  np.arange(11, 21))


def test_only_singing_labels_count_case_insensitively_and_other_grids_work():
    grid = FrameGrid(sample_rate=100, hop=10, window=10)  # frame b centred at 0.05 + 0.1 b s
    segments = [Segment(0.0, 0.3, "SING"), Segment(0.3, 0.6, "nosing"), Segment(0.6, 1.0, "Vocal")]
    np.testing.assert_array_equal(segments_to_frames(segments, 10, grid),
                                  [1, 1, 1, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(
        segments_to_frames(segments, 10, grid, singing_labels={"nosing"}),
        [0, 0, 0, 1, 1, 1, 0, 0, 0, 0])


def test_mir1k_frame_nearest_to_each_frame_centre_is_taken_and_clamped_at_the_ends():
    values = np.arange(6, dtype=np.float32)  # MIR-1K frame k centred at 0.02 k + 0.02 s
    grid = FrameGrid(sample_rate=1000, hop=30, window=20)  # frames centred at 0.01 + 0.03 b s
    # centres 0.01, 0.04, 0.07, 0.10, 0.13, 0.16 s -> nearest MIR-1K frames -0.5(0), 1, 2.5(3), 4,
    # 5.5 (clamped 5), 7 (clamped 5); the ties never occur on the real grid, they round up here
    mapped = mir1k_frames_to_grid(values, 6, grid)
    assert mapped.dtype == np.float32
    np.testing.assert_array_equal(mapped, [0, 1, 3, 4, 5, 5])


def test_mir1k_labels_on_the_default_grid():
    values = (np.arange(100) >= 50).astype(np.int8)  # singing from 1.01 s (frame 50 starts there)
    frames = mir1k_frames_to_grid(values, 100)
    times = DEFAULT_GRID.frame_times(100)
    np.testing.assert_array_equal(frames, (times >= 1.01).astype(np.float32))


def test_mir1k_label_file_is_read_and_bad_values_name_their_line(tmp_path):
    path = write(tmp_path, "a.vocal", "0 \n1 \n1 \n\n")
    np.testing.assert_array_equal(read_mir1k_labels(path), [0, 1, 1])
    bad = write(tmp_path, "b.vocal", "0\n2\n1\nx\n")
    with pytest.raises(LabelError, match=r"b.vocal:2: expected 0 or 1, got '2'"):
        read_mir1k_labels(bad)
    problems: list[LabelError] = []
    read_mir1k_labels(bad, problems)
    assert [p.line for p in problems] == [2, 4]
    with pytest.raises(LabelError, match=r"no label values"):
        read_mir1k_labels(write(tmp_path, "c.vocal", "\n"))


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("0 1 sing\n1 2 3 4\nfoo\n", 3, "expected 'start end \\[label\\]'"),
        ("0 1 sing\nzero 2 sing\n", 2, "start time 'zero' is not a finite number"),
        ("0 nan sing\n", 1, "end time 'nan' is not a finite number"),
        ("-0.5 1 sing\n", 1, "negative start time"),
        ("0 1 sing\n3 2 sing\n", 2, "segment ends \\(2 s\\) before it starts \\(3 s\\)"),
        ("0 2 sing\n1.5 3 nosing\n", 2, "segment starting at 1.5 s overlaps the previous one"),
        ("2 3 sing\n0 1 nosing\n", 2, "segments not sorted: this one starts at 0 s"),
        ("0 1 sing\n1 2 humming\n", 2, "unknown label 'humming' \\(expected one of nosing, sing"),
        ("0 1 sing\n1 12 nosing\n", 2, "segment ends at 12 s, more than 1 s after the end of the audio"),
    ],
)
def test_label_problems_name_file_and_line(tmp_path, text, line, problem):
    path = write(tmp_path, "song.lab", text)
    with pytest.raises(LabelError, match=f"song.lab:{line}: {problem}") as caught:
        read_segments(path, label_set=JAMENDO_LABELS, duration=10.0)
    assert caught.value.line == line


def test_labels_within_the_tolerance_after_the_audio_end_are_accepted(tmp_path):
    path = write(tmp_path, "song.lab", "0 10.9 sing\n")
    assert len(read_segments(path, duration=10.0)) == 1
    with pytest.raises(LabelError, match=r"more than 0.5 s after"):
        read_segments(path, duration=10.0, tolerance=0.5)


def test_all_problems_are_collected_when_a_list_is_given(tmp_path):
    path = write(tmp_path, "song.lab", "0 1 sing\nx 2 sing\n3 2 sing\n1.5 2.5 sing\n2 2.2 sing\n")
    problems: list[LabelError] = []
    segments = read_segments(path, problems=problems)
    assert [p.line for p in problems] == [2, 3, 5]
    assert spans(segments) == [(0, 1, "sing"), (1.5, 2.5, "sing"), (2, 2.2, "sing")]


def test_lenient_mode_sorts_and_cuts_overlaps_with_a_warning(tmp_path):
    path = write(tmp_path, "song.lab", "2 4 sing\n0 1 nosing\n3 5 nosing\n4.2 4.8 sing\n")
    with pytest.warns(UserWarning) as caught:
        segments = read_segments(path, strict=False)
    assert [str(w.message).split("song.lab")[1][:30] for w in caught] == [
        ":2: segments not sorted: this ", ":4: segment starting at 4.2 s "]
    assert all(str(w.message).endswith("(repaired)") for w in caught)
    assert spans(segments) == [(0, 1, "nosing"), (2, 4, "sing"), (4, 5, "nosing")]


def test_touching_segments_and_rounding_overlaps_are_not_problems(tmp_path):
    path = write(tmp_path, "song.lab", "0 1.2345 nosing\n1.2345 2 sing\n1.9999999 3 nosing\n")
    assert len(read_segments(path)) == 3


def test_unreadable_label_files_are_label_errors(tmp_path):
    with pytest.raises(LabelError, match=r"missing.lab: label file not found"):
        read_segments(tmp_path / "missing.lab")
    (tmp_path / "binary.lab").write_bytes(b"\xff\xfe\x00\x80\x81")
    with pytest.raises(LabelError, match=r"binary.lab: not a UTF-8 text file"):
        read_segments(tmp_path / "binary.lab")


@pytest.mark.parametrize("special", ["fifo", "folder", "/dev/zero", "oversized"])
def test_a_label_path_that_is_no_bounded_regular_file_is_refused_unread(special, tmp_path):
    path = tmp_path / "song.lab"
    if special == "fifo":
        os.mkfifo(path)  # reading would wait for a writer for ever
    elif special == "folder":
        path.mkdir()
    elif special == "oversized":
        with path.open("wb") as handle:
            handle.truncate(MAX_LABEL_BYTES + 1)  # sparse: no disk space; read whole before
    else:
        path = Path(special)  # endless: read whole, it filled memory
    problem = "larger than 64 MiB" if special == "oversized" else "not a regular file"
    for read in (read_segments, read_mir1k_labels):
        with pytest.raises(LabelError, match=f"^{path}: {problem}"):
            read(path)


def test_empty_label_file_means_no_singing(tmp_path):
    assert read_segments(write(tmp_path, "silence.lab", "")) == []
    assert segments_to_frames([], 5).tolist() == [0, 0, 0, 0, 0]


@pytest.mark.parametrize(("name", "writer"), [
    ("out.lab", lambda segments: format_lab(segments, duration=5.0)),
    ("out.audacity.txt", format_audacity),
    ("out.csv", format_csv),
])
def test_files_written_by_the_detector_read_back_as_the_same_frames(tmp_path, name, writer):
    segments = [Segment(0.5, 1.25), Segment(2.0, 4.5)]
    path = write(tmp_path, name, writer(segments))
    np.testing.assert_array_equal(segments_to_frames(read_segments(path), 300),
                                  segments_to_frames(segments, 300))
