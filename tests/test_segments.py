"""Frame decisions to segments, and the segment/probability file formats."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID, FrameGrid
from vocalfront.segments import (
    FORMATS,
    Segment,
    check_segments,
    format_frame_probabilities,
    format_lab,
    format_segments,
    frames_to_segments,
    output_path,
    write_frame_probabilities,
    write_segments,
)

FRAME = DEFAULT_GRID.hop / DEFAULT_GRID.sample_rate  # seconds per frame


def edge(index: float) -> float:
    """Start time (s) of frame ``index``'s interval on the default grid: centre minus half a hop."""
    return (512 + 315 * index - 157.5) / 22050


def decisions(pattern: str) -> np.ndarray:
    return np.array([c == "1" for c in pattern])


def assert_spans(segments: list[Segment], expected: list[tuple[float, float]]) -> None:
    assert len(segments) == len(expected)
    np.testing.assert_allclose([(s.start, s.end) for s in segments], expected, rtol=0, atol=1e-12)


def test_each_frame_covers_half_a_hop_either_side_of_its_centre():
    segments = frames_to_segments(decisions("01101"))
    assert_spans(segments, [(edge(1), edge(3)), (edge(4), edge(5))])
    assert all(s.label == "sing" for s in segments)
    centre_1 = DEFAULT_GRID.frame_times(2)[1]
    assert segments[0].start == pytest.approx(centre_1 - FRAME / 2)


def test_no_singing_frames_give_no_segments():
    assert frames_to_segments(decisions("0000")) == []
    assert frames_to_segments(np.zeros(0, dtype=bool)) == []


def test_segments_are_clipped_to_zero_and_to_the_duration():
    grid = FrameGrid(sample_rate=100, hop=10, window=4)  # frame 0 covers [-0.03, 0.07) s
    (segment,) = frames_to_segments(decisions("111"), grid, duration=0.2)
    assert (segment.start, segment.end) == pytest.approx((0.0, 0.2))


def test_a_gap_exactly_min_gap_long_is_kept_and_a_shorter_one_filled():
    pattern = decisions("1100111")
    assert len(frames_to_segments(pattern, min_gap=2 * FRAME)) == 2
    (merged,) = frames_to_segments(pattern, min_gap=3 * FRAME)
    assert (merged.start, merged.end) == pytest.approx((edge(0), edge(7)))


def test_leading_and_trailing_silence_is_not_a_gap():
    (segment,) = frames_to_segments(decisions("000110000"), min_gap=10 * FRAME)
    assert (segment.start, segment.end) == pytest.approx((edge(3), edge(5)))


def test_a_segment_exactly_min_duration_long_is_kept_and_a_shorter_one_dropped():
    pattern = decisions("0111001111")
    kept = frames_to_segments(pattern, min_duration=3 * FRAME)
    assert_spans(kept, [(edge(1), edge(4)), (edge(6), edge(10))])
    assert_spans(frames_to_segments(pattern, min_duration=4 * FRAME), [(edge(6), edge(10))])


def test_gaps_are_filled_before_short_segments_are_dropped():
    (segment,) = frames_to_segments(decisions("11011"), min_gap=2 * FRAME, min_duration=5 * FRAME)
    assert (segment.start, segment.end) == pytest.approx((edge(0), edge(5)))


@pytest.mark.parametrize(
    ("values", "options"),
    [
        (np.array([0.2, 0.9]), {}),
        (np.ones((2, 3), dtype=bool), {}),
        (np.ones(3, dtype=bool), {"min_gap": -1.0}),
        (np.ones(3, dtype=bool), {"min_duration": float("nan")}),
    ],
)
def test_bad_decisions_or_limits_are_rejected(values, options):
    with pytest.raises(VocalfrontError):
        frames_to_segments(values, **options)


@pytest.mark.parametrize(
    "segments",
    [
        [Segment(1.0, 1.0)],
        [Segment(-0.5, 1.0)],
        [Segment(0.0, 2.0), Segment(1.0, 3.0)],
        [Segment(2.0, 3.0), Segment(0.0, 1.0)],
        [Segment(0.0, 11.0)],
    ],
)
def test_writers_reject_empty_negative_overlapping_unsorted_or_overlong_segments(segments):
    with pytest.raises(VocalfrontError):
        check_segments(segments, duration=10.0)


def parse_lab(text: str) -> list[tuple[float, float, str]]:
    rows = [line.split(" ") for line in text.splitlines()]
    return [(float(start), float(end), label) for start, end, label in rows]


def test_lab_covers_the_whole_duration_with_alternating_labels():
    duration = 1.0
    segments = frames_to_segments(decisions("0011100011" + "0" * 50), duration=duration)
    rows = parse_lab(format_lab(segments, duration))
    assert rows[0][0] == 0.0
    assert rows[-1][1] == duration
    assert all(a[1] == b[0] for a, b in itertools.pairwise(rows))
    assert [label for *_, label in rows] == ["nosing", "sing", "nosing", "sing", "nosing"]
    assert rows[1][:2] == (round(edge(2), 3), round(edge(5), 3))


def test_lab_leaves_out_pieces_shorter_than_its_millisecond_resolution():
    end = edge(4)
    rows = parse_lab(format_lab([Segment(0.0, end)], duration=end + 0.0002))
    assert rows == [(0.0, round(end, 3), "sing")]


def test_lab_without_duration_ends_with_the_last_segment():
    rows = parse_lab(format_lab([Segment(1.0, 2.0)]))
    assert rows == [(0.0, 1.0, "nosing"), (1.0, 2.0, "sing")]


def parse_audacity(text: str) -> list[tuple[float, float, str]]:
    rows = [line.split("\t") for line in text.splitlines()]
    return [(float(start), float(end), label) for start, end, label in rows]


def parse_csv(text: str) -> list[tuple[float, float, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == ["start", "end", "label"]
    return [(float(row["start"]), float(row["end"]), row["label"]) for row in reader]


def parse_json(text: str) -> list[tuple[float, float, str]]:
    return [(s["start"], s["end"], s["label"]) for s in json.loads(text)["segments"]]


SEGMENTS = [Segment(0.0123456789, 1.5), Segment(2.25, 3.0)]


@pytest.mark.parametrize(
    ("format", "parse", "label"),
    [
        ("audacity", parse_audacity, "singing"),
        ("csv", parse_csv, "sing"),
        ("json", parse_json, "sing"),
    ],
)
def test_segment_formats_read_back_to_the_segments_at_microsecond_precision(format, parse, label):
    rows = parse(format_segments(SEGMENTS, format, duration=4.0))
    assert rows == [(pytest.approx(s.start, abs=5e-7), s.end, label) for s in SEGMENTS]


def test_json_names_the_file_duration_and_threshold():
    document = json.loads(
        format_segments(
            SEGMENTS,
            "json",
            duration=np.float32(4.0),
            source="a/song.wav",
            threshold=np.float32(0.5),
        )
    )
    assert document["file"] == "a/song.wav"
    assert document["duration"] == 4.0
    assert document["threshold"] == 0.5


def test_empty_segment_lists_are_written_as_valid_files():
    assert parse_lab(format_lab([], duration=2.0)) == [(0.0, 2.0, "nosing")]
    assert parse_csv(format_segments([], "csv")) == []
    assert parse_audacity(format_segments([], "audacity")) == []
    assert json.loads(format_segments([], "json"))["segments"] == []


def test_unknown_format_is_rejected():
    with pytest.raises(VocalfrontError, match="unknown segment format 'txt'"):
        format_segments(SEGMENTS, "txt")


def test_frame_probabilities_csv_has_one_row_per_frame_at_its_centre():
    probabilities = np.array([0.0, 0.25, 1.0])
    reader = csv.DictReader(io.StringIO(format_frame_probabilities(probabilities)))
    assert reader.fieldnames == ["time", "probability"]
    rows = [(float(r["time"]), float(r["probability"])) for r in reader]
    times = DEFAULT_GRID.frame_times(3)
    expected = [(pytest.approx(t, abs=5e-7), p) for t, p in zip(times, probabilities, strict=True)]
    assert rows == expected


def test_frame_probabilities_must_be_one_dimensional():
    with pytest.raises(VocalfrontError, match="one-dimensional"):
        format_frame_probabilities(np.zeros((2, 2)))


@pytest.mark.parametrize("format", FORMATS)
def test_write_segments_writes_the_formatted_text_and_no_temporary_files(tmp_path: Path, format):
    path = tmp_path / "out" / f"song.{format}"
    write_segments(path, SEGMENTS, format, duration=4.0, source="song.wav", threshold=0.5)
    expected = format_segments(SEGMENTS, format, duration=4.0, source="song.wav", threshold=0.5)
    assert path.read_text(encoding="utf-8") == expected
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_write_frame_probabilities_writes_the_csv(tmp_path: Path):
    path = tmp_path / "song.frames.csv"
    write_frame_probabilities(path, np.array([0.5, 0.75]))
    assert path.read_text(encoding="utf-8") == format_frame_probabilities(np.array([0.5, 0.75]))


@pytest.mark.parametrize(
    ("format", "name"),
    [
        ("lab", "song.lab"),
        ("audacity", "song.audacity.txt"),
        ("csv", "song.csv"),
        ("json", "song.json"),
        ("frames", "song.frames.csv"),
    ],
)
def test_output_path_names_outputs_after_the_input_stem(format, name):
    assert output_path("music/song.flac", "out", format) == Path("out") / name
    assert output_path("music/song.flac", None, format) == Path("music") / name


def test_output_path_rejects_unknown_formats():
    with pytest.raises(VocalfrontError, match="unknown output format"):
        output_path("song.wav", None, "xml")
