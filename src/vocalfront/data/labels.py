"""Singing-voice annotations: label files → segments → 0/1 targets on the frame grid.

Segment files (times in seconds, one segment per line):

- ``"text"``: whitespace-separated ``start end [label]`` lines. This covers the Jamendo corpus
  ``.lab`` files (``start end sing|nosing``), generic annotations, and Audacity label tracks
  (tab-separated ``start\\tend\\tlabel``; their spectral-selection lines, which start with ``\\``,
  are skipped). Everything after the end time is the label, so labels may contain spaces; a line
  without a label marks singing (``default_label``). Blank lines and ``#`` comments are skipped.
- ``"csv"``: a header naming the columns ``start`` and ``end`` (also ``onset``/``begin``,
  ``offset``/``stop``) and optionally ``label`` (or ``class``); comma or semicolon delimited.

MIR-1K ``.vocal`` files hold one 0/1 value per 20 ms label frame instead (frame ``k`` centred at
``0.02 k + 0.02`` s); :func:`mir1k_frames_to_grid` moves them onto our grid.

Validation problems are :class:`~vocalfront.errors.LabelError` with file and line. Functions
taking ``problems`` raise the first problem when it is ``None``; given a list, they append every
problem found to it and carry on with what is usable (``vocalfront data check`` reports them all).
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import LabelError
from ..grid import DEFAULT_GRID, FrameGrid
from ..segments import NOSING, SING, Segment, frames_inside

LabelFormat = Literal["auto", "text", "csv"]

SINGING_LABELS = frozenset({"sing", "singing", "vocal", "vocals", "voice", "1"})
"""Label names (compared case-insensitively) that mark singing; anything else is no singing."""
JAMENDO_LABELS = frozenset({SING, NOSING})
"""The two label names of the Jamendo corpus ``.lab`` files."""
DEFAULT_LABEL = SING
"""Label of a ``start end`` line without a label: listing a segment means it is sung."""
DEFAULT_TOLERANCE = 1.0
"""Seconds by which labels may extend past the end of the audio."""
OVERLAP_EPSILON = 1e-6
"""Seconds of overlap between neighbouring segments ignored as rounding in the file."""
MIR1K_HOP = 0.02
"""Seconds between MIR-1K label frames."""
MIR1K_OFFSET = 0.02
"""Centre time in seconds of MIR-1K label frame 0."""
MAX_LABEL_BYTES = 1 << 26
"""Largest label file read (64 MiB; hours of segments or MIR-1K frames take well under 1 MiB)."""

_START_COLUMNS = ("start", "onset", "begin")
_END_COLUMNS = ("end", "offset", "stop")
_LABEL_COLUMNS = ("label", "class")

_Numbered = list[tuple[Segment, int]]  # segments with their 1-based line in the file


class _Problems:
    """Raise the first problem, or collect them all into a caller's list."""

    def __init__(self, sink: list[LabelError] | None):
        self.sink = sink

    def add(self, error: LabelError) -> None:
        if self.sink is None:
            raise error
        self.sink.append(error)


def read_segments(
    path: str | Path,
    format: LabelFormat = "auto",
    *,
    default_label: str = DEFAULT_LABEL,
    label_set: Collection[str] | None = None,
    strict: bool = True,
    duration: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    problems: list[LabelError] | None = None,
) -> list[Segment]:
    """Read and validate a segment label file (see the module docstring for the formats).

    ``format="auto"`` picks CSV for ``.csv`` files and for text whose first line contains a comma
    or semicolon and does not start with a number, else the whitespace text format. Validation as in
    :func:`validate_segments`. Returns the segments in file order (sorted and repaired when
    ``strict`` is false).
    """
    path = Path(path)
    sink = _Problems(problems)
    text = _read_text(path)
    fmt = _detect_format(path, text) if format == "auto" else format
    if fmt == "csv":
        numbered = _parse_csv(text, path, default_label, sink)
    elif fmt == "text":
        numbered = _parse_text(text, path, default_label, sink)
    else:
        raise LabelError(path, f"unknown label format {format!r} (expected auto, text or csv)")
    return validate_segments(
        [segment for segment, _ in numbered], path, lines=[line for _, line in numbered],
        label_set=label_set, strict=strict, duration=duration, tolerance=tolerance,
        problems=problems,
    )


def validate_segments(
    segments: Iterable[Segment],
    source: str | Path,
    *,
    lines: Sequence[int] | None = None,
    label_set: Collection[str] | None = None,
    strict: bool = True,
    duration: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    problems: list[LabelError] | None = None,
) -> list[Segment]:
    """Check segments read from ``source`` and return the usable ones.

    ``lines`` (optional) gives the 1-based line of each segment in ``source`` for the messages.

    Always problems: a negative time, an end before the start, a label outside ``label_set``
    (case-insensitive; not checked when ``None``), an end more than ``tolerance`` seconds after
    ``duration`` (the audio length in seconds; not checked when ``None``). Unsorted or
    overlapping segments are problems when ``strict``; otherwise they are sorted, each overlap is
    cut from the later segment, and a warning is issued per repair.
    """
    sink = _Problems(problems)
    segments = list(segments)
    numbered = zip(segments, [None] * len(segments) if lines is None else lines, strict=True)
    allowed = None if label_set is None else {name.lower() for name in label_set}
    usable = []
    for segment, line in numbered:
        problem = _segment_problem(segment, allowed, duration, tolerance)
        if problem is None:
            usable.append((segment, line))
        else:
            sink.add(LabelError(source, problem, line))
    if not strict:
        return _repair_order(usable, source)
    for (previous, _), (segment, line) in itertools.pairwise(usable):
        problem = _order_problem(previous, segment)
        if problem is not None:
            sink.add(LabelError(source, problem, line))
    return [segment for segment, _ in usable]


def segments_to_frames(
    segments: Iterable[Segment],
    num_frames: int,
    grid: FrameGrid = DEFAULT_GRID,
    singing_labels: Collection[str] = SINGING_LABELS,
) -> np.ndarray:
    """Singing targets per frame, float32 ``(num_frames,)`` of 0/1.

    Frame ``b`` is singing iff its centre time (``grid.frame_times``) lies in ``[start, end)`` of
    a segment whose label is in ``singing_labels`` (case-insensitive): a segment starting exactly
    at a frame centre includes that frame, one ending exactly at a frame centre excludes it.
    """
    singing = {name.lower() for name in singing_labels}
    sung = [segment for segment in segments if segment.label.lower() in singing]
    return frames_inside(sung, grid.frame_times(num_frames)).astype(np.float32)


def read_mir1k_labels(path: str | Path, problems: list[LabelError] | None = None) -> np.ndarray:
    """MIR-1K ``.vocal`` file: one 0/1 value per line → int8 ``(label_frames,)``.

    A line that is not 0 or 1 is a problem; with ``problems`` given it is read as 0. A file with
    no values always raises.
    """
    path = Path(path)
    sink = _Problems(problems)
    lines = _read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    values = np.zeros(len(lines), dtype=np.int8)
    for number, line in enumerate(lines, start=1):
        if line.strip() in ("0", "1"):
            values[number - 1] = int(line)
        else:
            sink.add(LabelError(path, f"expected 0 or 1, got {line.strip()!r}", number))
    if not len(values):
        raise LabelError(path, "no label values")
    return values


def mir1k_span(num_label_frames: int) -> float:
    """Seconds of audio covered by ``num_label_frames`` MIR-1K label frames (40 ms windows)."""
    return MIR1K_OFFSET + MIR1K_HOP * num_label_frames


def mir1k_frames_to_grid(
    values: np.ndarray, num_frames: int, grid: FrameGrid = DEFAULT_GRID
) -> np.ndarray:
    """MIR-1K label frames (``0.02 k + 0.02`` s centres) → float32 ``(num_frames,)`` on ``grid``.

    Each grid frame takes the value of the MIR-1K frame whose centre is nearest to its own centre
    time, clamped to the first/last MIR-1K frame at the ends.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 1 or not len(values):
        raise LabelError("MIR-1K labels", f"need a non-empty 1-D array, got shape {values.shape}")
    nearest = np.floor((grid.frame_times(num_frames) - MIR1K_OFFSET) / MIR1K_HOP + 0.5)
    return values[np.clip(nearest.astype(int), 0, len(values) - 1)]


def _read_text(path: Path) -> str:
    """The file's text (UTF-8, optional BOM), or a LabelError saying why not; a pipe or device is
    never read, nor more than :data:`MAX_LABEL_BYTES`."""
    try:
        if path.exists() and not path.is_file():
            raise LabelError(path, "not a regular file (a folder, pipe or device?)")
        with path.open("rb") as handle:
            data = handle.read(MAX_LABEL_BYTES + 1)
        if len(data) > MAX_LABEL_BYTES:
            raise LabelError(path, f"larger than {MAX_LABEL_BYTES >> 20} MiB; not a label file")
        return data.decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelError(path, "label file not found") from None
    except UnicodeDecodeError:
        raise LabelError(path, "not a UTF-8 text file") from None
    except OSError as error:
        raise LabelError(path, f"cannot read ({error.strerror or error})") from None


def _detect_format(path: Path, text: str) -> Literal["text", "csv"]:
    """``csv`` for a ``.csv`` file or a header-like first line with a delimiter, else ``text``."""
    if path.suffix.lower() == ".csv":
        return "csv"
    first = next((line for line in text.splitlines() if line.strip()), "")
    first_token = first.split(None, 1)[0] if first.strip() else ""
    if ("," in first or ";" in first) and _to_float(first_token) is None:
        return "csv"
    return "text"


def _parse_text(text: str, path: Path, default_label: str, sink: _Problems) -> _Numbered:
    """Segments of the whitespace ``start end [label]`` format (Jamendo, generic, Audacity)."""
    segments = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "\\")):
            continue
        fields = stripped.split(None, 2)
        if len(fields) < 2:
            sink.add(LabelError(path, f"expected 'start end [label]', got {stripped!r}", number))
            continue
        label = fields[2].strip() if len(fields) == 3 else default_label
        segment = _make_segment(fields[0], fields[1], label, path, number, sink)
        if segment is not None:
            segments.append((segment, number))
    return segments


def _parse_csv(text: str, path: Path, default_label: str, sink: _Problems) -> _Numbered:
    """Segments of a CSV file with a ``start,end[,label]`` header (comma or semicolon)."""
    lines = text.splitlines()
    header_line = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_line is None:
        return []
    delimiter = ";" if lines[header_line].count(";") > lines[header_line].count(",") else ","
    rows = csv.reader(lines[header_line:], delimiter=delimiter)
    header = [name.strip().lower() for name in next(rows)]
    columns = [_find_column(header, names) for names in (_START_COLUMNS, _END_COLUMNS)]
    if None in columns:
        sink.add(LabelError(
            path, f"CSV header must name start and end columns, got {delimiter.join(header)!r}",
            header_line + 1,
        ))
        return []
    label_column = _find_column(header, _LABEL_COLUMNS)
    needed = max(c for c in [*columns, label_column] if c is not None) + 1
    segments = []
    for number, row in enumerate(rows, start=header_line + 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < needed:
            sink.add(LabelError(path, f"expected {needed} columns, got {len(row)}", number))
            continue
        label = row[label_column].strip() if label_column is not None else default_label
        segment = _make_segment(row[columns[0]], row[columns[1]], label or default_label,
                                path, number, sink)
        if segment is not None:
            segments.append((segment, number))
    return segments


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    """Index of the first header cell that is one of ``names``, or None."""
    return next((i for i, cell in enumerate(header) if cell in names), None)


def _make_segment(
    start: str, end: str, label: str, path: Path, line: int, sink: _Problems
) -> Segment | None:
    """A segment from the text of its fields, or None (reported) if a time is not a number."""
    times = [_to_float(start), _to_float(end)]
    for text, value, name in zip((start, end), times, ("start", "end"), strict=True):
        if value is None:
            sink.add(LabelError(path, f"{name} time {text.strip()!r} is not a finite number", line))
            return None
    return Segment(times[0], times[1], label)


def _to_float(text: str) -> float | None:
    """The finite float in ``text``, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _segment_problem(
    segment: Segment, allowed: set[str] | None, duration: float | None, tolerance: float
) -> str | None:
    """What is wrong with one segment on its own, or None."""
    if segment.start < 0:
        return f"negative start time {segment.start:g} s"
    if segment.end < segment.start:
        return f"segment ends ({segment.end:g} s) before it starts ({segment.start:g} s)"
    if allowed is not None and segment.label.lower() not in allowed:
        return f"unknown label {segment.label!r} (expected one of {', '.join(sorted(allowed))})"
    if duration is not None and segment.end > duration + tolerance:
        return (f"segment ends at {segment.end:g} s, more than {tolerance:g} s after the end of "
                f"the audio ({duration:.3f} s)")
    return None


def _order_problem(previous: Segment, segment: Segment) -> str | None:
    """What is wrong with ``segment`` following ``previous``, or None."""
    if segment.start < previous.start:
        return (f"segments not sorted: this one starts at {segment.start:g} s, before the "
                f"previous one ({previous.start:g} s)")
    if segment.start < previous.end - OVERLAP_EPSILON:
        return (f"segment starting at {segment.start:g} s overlaps the previous one, which ends "
                f"at {previous.end:g} s")
    return None


def _repair_order(
    numbered: list[tuple[Segment, int | None]], source: str | Path
) -> list[Segment]:
    """Sort segments and cut overlaps from the later one, warning about each repair."""
    for (previous, _), (segment, line) in itertools.pairwise(numbered):
        problem = _order_problem(previous, segment)
        if problem is not None:
            warnings.warn(f"{LabelError(source, problem, line)} (repaired)", stacklevel=2)
    repaired: list[Segment] = []
    for segment in sorted((segment for segment, _ in numbered), key=lambda s: (s.start, s.end)):
        if repaired and segment.start < repaired[-1].end:
            segment = replace(segment, start=repaired[-1].end)
            if segment.end <= segment.start:
                continue
        repaired.append(segment)
    return repaired
