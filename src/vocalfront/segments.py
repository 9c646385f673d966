"""Singing segments from frame decisions, and the files they are written to.

Time convention: frame ``b`` of a :class:`~vocalfront.grid.FrameGrid` is centred at
``c_b = (offset + hop * b) / sample_rate`` seconds and its decision covers the half-open interval
``[c_b - hop / 2, c_b + hop / 2)`` (in seconds: ``hop / 2 / sample_rate`` either side), so the
intervals of consecutive frames tile the time axis without gaps or overlaps. Times before the first
frame's interval and after the last one's are not covered by any decision; the ``lab`` writer
labels them ``nosing``.

Output formats (:data:`FORMATS`) and the names :func:`output_path` gives them for ``song.wav``:

========== ===================== ===========================================================
format     file                  content
========== ===================== ===========================================================
lab        ``song.lab``          ``start end sing|nosing`` lines covering the whole file
                                 (Jamendo corpus style), seconds with 3 decimals
audacity   ``song.audacity.txt`` Audacity label track: ``start<TAB>end<TAB>singing``, 6 decimals
csv        ``song.csv``          header ``start,end,label``, one row per singing segment
json       ``song.json``         ``{"file", "duration", "segments": [{start, end, label}],
                                 "threshold", "provenance"}``
frames     ``song.frames.csv``   header ``time,probability``, one row per frame (frame centres)
provenance ``song.provenance``   what made the outputs (:mod:`vocalfront.provenance`): written
           ``.json``             beside ``lab`` and ``audacity`` files, which cannot hold it
report     ``song.report.html``  one self-contained page: figure, segments, player, provenance
                                 (:mod:`vocalfront.report`)
========== ===================== ===========================================================

Given a :class:`~vocalfront.provenance.Provenance`, the CSV writers put it on a first line
``# vocalfront 0.3.0, model default.pt (sha256 ...), threshold 0.343, ...`` above the header, and
the JSON writer as a ``provenance`` object.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import VocalfrontError
from .fileio import write_text_atomic
from .grid import DEFAULT_GRID, FrameGrid
from .provenance import Provenance

SING = "sing"
"""Label of singing segments."""
NOSING = "nosing"
"""Label the ``lab`` format gives to everything that is not singing."""
AUDACITY_LABEL = "singing"
"""Text of every label in the Audacity label track."""

FORMATS = ("lab", "audacity", "csv", "json")
"""Segment formats accepted by :func:`format_segments` and :func:`write_segments`."""
FRAMES_FORMAT = "frames"
"""Name of the per-frame probability CSV for :func:`output_path`."""
PROVENANCE_FORMAT = "provenance"
"""Name of the provenance side file for :func:`output_path`."""
REPORT_FORMAT = "report"
"""Name of the HTML report page for :func:`output_path`."""
WITHOUT_COMMENTS = ("lab", "audacity")
"""Formats that cannot carry the provenance inside; it goes to a side file beside them."""
_SUFFIXES = {
    "lab": ".lab",
    "audacity": ".audacity.txt",
    "csv": ".csv",
    "json": ".json",
    FRAMES_FORMAT: ".frames.csv",
    PROVENANCE_FORMAT: ".provenance.json",
    REPORT_FORMAT: ".report.html",
}

_TOLERANCE = 1e-9
"""Seconds; durations within this of a limit count as equal to it (rounding of frame times)."""


@dataclass(frozen=True)
class Segment:
    """A labelled time interval ``[start, end)`` in seconds."""

    start: float
    end: float
    label: str = SING

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


def frames_to_segments(
    decisions: np.ndarray,
    grid: FrameGrid = DEFAULT_GRID,
    min_duration: float = 0.0,
    min_gap: float = 0.0,
    duration: float | None = None,
) -> list[Segment]:
    """Turn per-frame singing decisions into sorted, disjoint ``sing`` segments (seconds).

    ``decisions``: boolean array of shape ``(frames,)`` on ``grid`` (threshold probabilities first).
    Runs of ``True`` frames become segments (see the module docstring for the interval a frame
    covers); gaps between segments shorter than ``min_gap`` seconds are then filled
    (:func:`fill_short_gaps`), and segments shorter than ``min_duration`` seconds dropped. Segment
    times are clipped to ``[0, duration]`` (``duration`` in seconds, the audio length, when given).
    """
    decisions = fill_short_gaps(decisions, grid, min_gap)
    _check_non_negative(min_duration=min_duration)
    segments = [_clipped(_frame_edge(grid, first), _frame_edge(grid, stop), duration)
                for first, stop in true_runs(decisions)]
    return [s for s in segments if s.end > s.start and s.duration >= min_duration - _TOLERANCE]


def fill_short_gaps(decisions: np.ndarray, grid: FrameGrid = DEFAULT_GRID,
                    min_gap: float = 0.0) -> np.ndarray:
    """A copy of boolean frame ``decisions`` ``(frames,)`` on ``grid`` with every gap between two
    runs of ``True`` that is shorter than ``min_gap`` seconds set to ``True`` (a gap of ``g``
    frames lasts ``g * hop / sample_rate`` seconds, from the end of one frame's interval to the
    start of the next run's)."""
    decisions = _check_decisions(decisions)
    _check_non_negative(min_gap=min_gap)
    filled = decisions.copy()
    if min_gap <= _TOLERANCE:  # no gap of a frame or more is that short
        return filled
    runs = true_runs(decisions)
    for (_, stop), (first, _) in itertools.pairwise(runs):
        if (first - stop) * grid.hop / grid.sample_rate < min_gap - _TOLERANCE:
            filled[stop:first] = True
    return filled


def frames_inside(segments: Iterable[Segment], times: np.ndarray) -> np.ndarray:
    """Boolean ``(len(times),)``: whether each time (seconds, ascending; e.g. frame centres) lies
    in ``[start, end)`` of one of ``segments``."""
    times = np.asarray(times)
    inside = np.zeros(len(times), dtype=bool)
    for segment in segments:
        first, stop = np.searchsorted(times, [segment.start, segment.end], side="left")
        inside[first:stop] = True
    return inside


def _check_decisions(decisions: np.ndarray) -> np.ndarray:
    decisions = np.asarray(decisions)
    if decisions.ndim != 1:
        raise VocalfrontError(
            f"frame decisions must be one-dimensional, got shape {decisions.shape}"
        )
    if decisions.dtype != bool:
        raise VocalfrontError(
            f"frame decisions must be booleans, got {decisions.dtype} (threshold the probabilities)"
        )
    return decisions


def _check_non_negative(**limits: float) -> None:
    for name, value in limits.items():
        if not (math.isfinite(value) and value >= 0):
            raise VocalfrontError(f"{name} must be a non-negative number of seconds, got {value}")


def true_runs(decisions: np.ndarray) -> list[tuple[int, int]]:
    """``(first, stop)`` indices of each run of ``True`` in a 1-D boolean array (``stop`` exclusive)."""
    padded = np.concatenate(([0], decisions.astype(np.int8), [0]))
    changes = np.flatnonzero(np.diff(padded))
    return list(zip(changes[0::2].tolist(), changes[1::2].tolist(), strict=True))


def _frame_edge(grid: FrameGrid, index: int) -> float:
    """Time in seconds where frame ``index - 1``'s interval ends and frame ``index``'s begins."""
    return (grid.offset + grid.hop * (index - 0.5)) / grid.sample_rate


def _clipped(start: float, end: float, duration: float | None) -> Segment:
    if duration is not None:
        end = min(end, duration)
    return Segment(max(start, 0.0), end)


def clock(seconds: float) -> str:
    """``m:ss.mmm`` of a non-negative time in seconds, rounded to the millisecond (``83.5`` →
    ``1:23.500``); how the CLI and the HTML report show segment times."""
    millis = round(max(seconds, 0.0) * 1000)
    minutes, millis = divmod(millis, 60_000)
    return f"{minutes}:{millis // 1000:02d}.{millis % 1000:03d}"


def check_segments(segments: Sequence[Segment], duration: float | None = None) -> None:
    """Raise :class:`VocalfrontError` unless ``segments`` are non-empty intervals (seconds) in
    ``[0, duration]``, sorted and non-overlapping (as :func:`frames_to_segments` returns them)."""
    previous_end = 0.0
    for segment in segments:
        if not segment.start < segment.end:
            raise VocalfrontError(f"segment {segment} does not end after it starts")
        if segment.start < previous_end - _TOLERANCE:
            raise VocalfrontError(f"segment {segment} starts before 0 or overlaps the one before")
        if duration is not None and segment.end > duration + _TOLERANCE:
            raise VocalfrontError(f"segment {segment} ends after the audio ({duration} s)")
        previous_end = segment.end


def format_lab(segments: Sequence[Segment], duration: float | None = None) -> str:
    """Jamendo-style ``start end label`` lines (seconds, 3 decimals) covering ``[0, duration]``.

    The pieces between ``segments`` are labelled ``nosing``; without ``duration`` the lines end
    where the last segment ends. Pieces that vanish when rounded to milliseconds are left out,
    so every line starts where the previous one ends.
    """
    check_segments(segments, duration)
    lines = []
    for piece in _cover(segments, duration):
        start, end = f"{piece.start:.3f}", f"{piece.end:.3f}"
        if start != end:
            lines.append(f"{start} {end} {piece.label}\n")
    return "".join(lines)


def _cover(segments: Sequence[Segment], duration: float | None) -> list[Segment]:
    """``segments`` with ``nosing`` segments filling the gaps from 0 to ``duration``."""
    pieces = []
    position = 0.0
    for segment in segments:
        if segment.start > position:
            pieces.append(Segment(position, segment.start, NOSING))
        pieces.append(segment)
        position = segment.end
    if duration is not None and duration > position:
        pieces.append(Segment(position, duration, NOSING))
    return pieces


def format_audacity(segments: Sequence[Segment]) -> str:
    """Audacity label track: ``start<TAB>end<TAB>singing`` per segment, seconds with 6 decimals."""
    check_segments(segments)
    return "".join(f"{s.start:.6f}\t{s.end:.6f}\t{AUDACITY_LABEL}\n" for s in segments)


def _comment(provenance: Provenance | None) -> str:
    """The ``# ...`` line that CSV writers put above their header (empty without provenance)."""
    return "" if provenance is None else f"# {provenance.to_line()}\n"


def format_csv(segments: Sequence[Segment], provenance: Provenance | None = None) -> str:
    """CSV with header ``start,end,label`` and one row per segment, seconds with 6 decimals;
    a ``#`` comment line with the ``provenance`` above the header when given."""
    check_segments(segments)
    buffer = io.StringIO(_comment(provenance))
    buffer.seek(0, io.SEEK_END)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["start", "end", "label"])
    writer.writerows([f"{s.start:.6f}", f"{s.end:.6f}", s.label] for s in segments)
    return buffer.getvalue()


def format_json(
    segments: Sequence[Segment],
    duration: float | None = None,
    source: str | Path | None = None,
    threshold: float | None = None,
    provenance: Provenance | None = None,
) -> str:
    """JSON object ``{"file", "duration", "segments": [{"start", "end", "label"}], "threshold",
    "provenance"}``.

    Times in seconds rounded to 6 decimals; ``file`` (the audio path as given), ``duration``,
    ``threshold`` (the decision threshold on the probabilities) and ``provenance``
    (:meth:`~vocalfront.provenance.Provenance.to_dict`) are ``null`` when not given.
    """
    check_segments(segments, duration)
    document = {
        "file": None if source is None else str(source),
        "duration": None if duration is None else round(float(duration), 6),
        "segments": [
            {"start": round(s.start, 6), "end": round(s.end, 6), "label": s.label} for s in segments
        ],
        "threshold": None if threshold is None else float(threshold),
        "provenance": None if provenance is None else provenance.to_dict(),
    }
    return json.dumps(document, indent=2) + "\n"


def format_segments(
    segments: Sequence[Segment],
    format: str,
    duration: float | None = None,
    source: str | Path | None = None,
    threshold: float | None = None,
    provenance: Provenance | None = None,
) -> str:
    """Text of ``segments`` in ``format`` (one of :data:`FORMATS`); ``source`` and ``threshold``
    are used by ``json`` only, ``duration`` (seconds) by ``lab`` and ``json``, ``provenance`` by
    ``csv`` and ``json`` (the others need :func:`format_provenance` beside them)."""
    if format == "lab":
        return format_lab(segments, duration)
    if format == "audacity":
        return format_audacity(segments)
    if format == "csv":
        return format_csv(segments, provenance)
    if format == "json":
        return format_json(segments, duration, source, threshold, provenance)
    raise VocalfrontError(f"unknown segment format {format!r}; choose from {', '.join(FORMATS)}")


def write_segments(
    path: str | Path,
    segments: Sequence[Segment],
    format: str,
    duration: float | None = None,
    source: str | Path | None = None,
    threshold: float | None = None,
    provenance: Provenance | None = None,
) -> None:
    """Write :func:`format_segments` output to ``path`` atomically (complete file or none)."""
    write_text_atomic(path, format_segments(segments, format, duration, source, threshold, provenance))


def format_provenance(provenance: Provenance, source: str | Path | None, outputs: Sequence[Path]) -> str:
    """JSON side file ``{"file", "outputs", "provenance"}``: what made the ``outputs`` (file
    names) of the audio file ``source``."""
    document = {"file": None if source is None else str(source),
                "outputs": [Path(output).name for output in outputs],
                "provenance": provenance.to_dict()}
    return json.dumps(document, indent=2) + "\n"


def format_frame_probabilities(probabilities: np.ndarray, grid: FrameGrid = DEFAULT_GRID,
                               provenance: Provenance | None = None) -> str:
    """CSV with header ``time,probability``: frame centre (seconds) and probability, 6 decimals.

    ``probabilities``: shape ``(frames,)`` on ``grid``. ``provenance``: a ``#`` comment line
    above the header when given.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 1:
        raise VocalfrontError(
            f"frame probabilities must be one-dimensional, got shape {probabilities.shape}"
        )
    times = grid.frame_times(len(probabilities))
    rows = "".join(f"{t:.6f},{p:.6f}\n" for t, p in zip(times, probabilities, strict=True))
    return _comment(provenance) + "time,probability\n" + rows


def write_frame_probabilities(
    path: str | Path, probabilities: np.ndarray, grid: FrameGrid = DEFAULT_GRID,
    provenance: Provenance | None = None,
) -> None:
    """Write :func:`format_frame_probabilities` output to ``path`` atomically."""
    write_text_atomic(path, format_frame_probabilities(probabilities, grid, provenance))


def output_path(input_path: str | Path, out_dir: str | Path | None, format: str) -> Path:
    """Where the ``format`` output for ``input_path`` goes: in ``out_dir`` (or beside the input
    when ``None``), named after the input's stem, e.g. ``song.wav`` → ``song.audacity.txt``.

    ``format`` is one of :data:`FORMATS`, :data:`FRAMES_FORMAT`, :data:`PROVENANCE_FORMAT` or
    :data:`REPORT_FORMAT`.
    """
    if format not in _SUFFIXES:
        choices = ", ".join(_SUFFIXES)
        raise VocalfrontError(f"unknown output format {format!r}; choose from {choices}")
    input_path = Path(input_path)
    folder = input_path.parent if out_dir is None else Path(out_dir)
    return folder / (input_path.stem + _SUFFIXES[format])
