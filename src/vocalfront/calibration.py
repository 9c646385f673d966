"""Choosing a detector's decision settings (:class:`~vocalfront.postprocessing.PostProcessing`)
on validation data.

The settings are chosen to minimise the pooled frame error of the *final* decisions - what a
user gets in the label files - on validation clips, in two steps:

1. for each median filter length of ``smoothings`` (frames), the accuracy-maximising threshold
   of the smoothed probabilities (:func:`~vocalfront.evaluation.choose_threshold`);
2. at the best length and its threshold, every pair of ``min_gap`` and ``min_duration``
   (seconds): decisions → segments (:func:`~vocalfront.segments.frames_to_segments`: gaps
   filled, short segments dropped) → frames again.

Ties go to the smaller value (less smoothing, shorter limits), as the lists are searched in
ascending order. Never run this on the data that a reported figure comes from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .data.labels import segments_to_frames
from .evaluation import choose_threshold, frame_metrics, median_smooth
from .grid import DEFAULT_GRID, FrameGrid
from .postprocessing import PostProcessing
from .segments import frames_to_segments

SMOOTHINGS = (1, 14, 28, 42, 56, 84)
"""Median filter lengths tried, frames (0.2 s steps up to 0.8 s, then 1.2 s)."""
MIN_GAPS = (0.0, 0.2, 0.4, 0.6, 1.0)
"""Shortest kept gaps tried, seconds."""
MIN_DURATIONS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
"""Shortest kept segments tried, seconds."""


def final_decisions(probabilities: np.ndarray, settings: PostProcessing,
                    grid: FrameGrid = DEFAULT_GRID) -> np.ndarray:
    """Boolean ``(frames,)``: the frames inside the segments that ``settings`` make of
    ``probabilities`` ``(frames,)`` (what the label files say)."""
    smoothed = median_smooth(probabilities, settings.smoothing)
    segments = frames_to_segments(smoothed > settings.threshold, grid, settings.min_duration,
                                  settings.min_gap)
    return segments_to_frames(segments, len(probabilities), grid).astype(bool)


def final_error(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                settings: PostProcessing, grid: FrameGrid = DEFAULT_GRID) -> float:
    """Pooled frame error of :func:`final_decisions` against 0/1 ``labels``."""
    decided = np.concatenate([final_decisions(p, settings, grid) for p in probabilities])
    return float(frame_metrics(decided, np.concatenate(labels))["error"])


def choose_postprocessing(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                          grid: FrameGrid = DEFAULT_GRID, smoothings: Sequence[int] = SMOOTHINGS,
                          min_gaps: Sequence[float] = MIN_GAPS,
                          min_durations: Sequence[float] = MIN_DURATIONS,
                          ) -> tuple[PostProcessing, list[dict[str, float]]]:
    """The settings with the lowest final frame error on validation clips (see the module
    docstring), and every setting tried as rows ``{smoothing, threshold, min_gap, min_duration,
    error}``. ``probabilities`` and ``labels``: one ``(frames,)`` array per clip."""
    tried: list[dict[str, float]] = []
    best: tuple[float, PostProcessing] | None = None
    for smoothing in smoothings:
        threshold = choose_threshold([median_smooth(p, smoothing) for p in probabilities], labels)
        settings = PostProcessing(max(threshold, 0.0), smoothing, 0.0, 0.0)
        best = _keep_better(best, settings, probabilities, labels, grid, tried)
    assert best is not None
    smoothed_best = best[1]
    for min_gap in min_gaps:
        for min_duration in min_durations:
            settings = PostProcessing(smoothed_best.threshold, smoothed_best.smoothing, min_duration,
                                      min_gap)
            best = _keep_better(best, settings, probabilities, labels, grid, tried)
    return best[1], tried


def _keep_better(best: tuple[float, PostProcessing] | None, settings: PostProcessing,
                 probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray], grid: FrameGrid,
                 tried: list[dict[str, float]]) -> tuple[float, PostProcessing]:
    """``best`` or ``settings``, whichever has the lower final error (ties keep ``best``)."""
    error = final_error(probabilities, labels, settings, grid)
    tried.append({"smoothing": settings.smoothing, "threshold": settings.threshold,
                  "min_gap": settings.min_gap, "min_duration": settings.min_duration, "error": error})
    return (error, settings) if best is None or error < best[0] else best
