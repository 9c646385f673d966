"""Choosing a detector's decision settings (:class:`~vocalfront.postprocessing.PostProcessing`)
on validation data.

The settings are chosen to minimise the pooled frame error of the *final* decisions - what a
user gets in the label files - on validation clips, in steps:

1. for each median filter length of ``smoothings`` (frames), the accuracy-maximising threshold
   of the smoothed probabilities (:func:`~vocalfront.evaluation.choose_threshold`);
2. at the best length and its threshold, every pair of ``min_gap`` and ``min_duration``
   (seconds): decisions → segments (:func:`~vocalfront.segments.frames_to_segments`: gaps
   filled, short segments dropped) → frames again;
3. only with ``peak_thresholds`` (e.g. :data:`PEAK_THRESHOLDS`; none by default): every pair of
   a threshold at or below the best one (down by ``threshold_steps``) and a peak threshold above
   it (hysteresis, :meth:`~vocalfront.postprocessing.PostProcessing.frame_decisions`), then
   step 2 again at the best pair. Off by default because its gain did not carry over: for the
   0.11.0 model the pair chosen on validation lowered the validation error (11.40 -> 11.05 %)
   but raised the test error (8.6 -> 9.2 %), and chosen on one half of the validation clips it
   lost to one threshold on the other half (MODEL_CARD.md, "Tried and not shipped").

Ties go to the setting found first: less smoothing, shorter limits, no peak threshold. Never run
this on the data that a reported figure comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .data.labels import segments_to_frames
from .evaluation import choose_threshold, frame_metrics, median_smooth
from .grid import DEFAULT_GRID, FrameGrid
from .postprocessing import PostProcessing

SMOOTHINGS = (1, 14, 28, 42, 56, 84)
"""Median filter lengths tried, frames (0.2 s steps up to 0.8 s, then 1.2 s)."""
MIN_GAPS = (0.0, 0.2, 0.4, 0.6, 1.0)
"""Shortest kept gaps tried, seconds."""
MIN_DURATIONS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
"""Shortest kept segments tried, seconds."""
PEAK_THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
"""Peak thresholds to try when asked (those above the threshold they go with)."""
THRESHOLD_STEPS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
"""How far below the best single threshold the lower threshold of a hysteresis pair is tried."""


def final_decisions(probabilities: np.ndarray, settings: PostProcessing,
                    grid: FrameGrid = DEFAULT_GRID) -> np.ndarray:
    """Boolean ``(frames,)``: the frames inside the segments that ``settings`` make of
    ``probabilities`` ``(frames,)`` (what the label files say)."""
    _, segments = settings.apply(probabilities, grid)
    return segments_to_frames(segments, len(probabilities), grid).astype(bool)


def final_metrics(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                  settings: PostProcessing, grid: FrameGrid = DEFAULT_GRID) -> dict[str, float]:
    """Pooled :func:`~vocalfront.evaluation.frame_metrics` of :func:`final_decisions` against 0/1
    ``labels`` (error, recall, specificity, ...)."""
    decided = np.concatenate([final_decisions(p, settings, grid) for p in probabilities])
    return frame_metrics(decided, np.concatenate(labels))


def final_error(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                settings: PostProcessing, grid: FrameGrid = DEFAULT_GRID) -> float:
    """Pooled frame error of :func:`final_decisions` against 0/1 ``labels``."""
    return float(final_metrics(probabilities, labels, settings, grid)["error"])


def choose_postprocessing(probabilities: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                          grid: FrameGrid = DEFAULT_GRID, smoothings: Sequence[int] = SMOOTHINGS,
                          min_gaps: Sequence[float] = MIN_GAPS,
                          min_durations: Sequence[float] = MIN_DURATIONS,
                          peak_thresholds: Sequence[float] = (),
                          threshold_steps: Sequence[float] = THRESHOLD_STEPS,
                          ) -> tuple[PostProcessing, list[dict[str, float]]]:
    """The settings with the lowest final frame error on validation clips (see the module
    docstring), and every setting tried as rows ``{smoothing, threshold, peak_threshold,
    min_gap, min_duration, error}``. ``probabilities`` and ``labels``: one ``(frames,)`` array
    per clip; no ``peak_thresholds`` (the default): no hysteresis (step 3 left out)."""
    tried: list[dict[str, float]] = []
    best: tuple[float, PostProcessing] | None = None

    def keep_better(settings: PostProcessing) -> None:
        nonlocal best
        error = final_error(probabilities, labels, settings, grid)
        tried.append({"smoothing": settings.smoothing, "threshold": settings.threshold,
                      "peak_threshold": settings.peak_threshold, "min_gap": settings.min_gap,
                      "min_duration": settings.min_duration, "error": error})
        if best is None or error < best[0]:
            best = (error, settings)

    def search_limits(around: PostProcessing) -> None:
        for min_gap in min_gaps:
            for min_duration in min_durations:
                keep_better(replace(around, min_duration=min_duration, min_gap=min_gap))

    for smoothing in smoothings:
        threshold = choose_threshold([median_smooth(p, smoothing) for p in probabilities], labels)
        keep_better(PostProcessing(max(threshold, 0.0), smoothing, 0.0, 0.0))
    assert best is not None
    search_limits(best[1])
    if peak_thresholds:
        single = best[1]
        for step in threshold_steps:
            for peak in peak_thresholds:
                if peak > single.threshold - step >= 0:
                    keep_better(replace(single, threshold=single.threshold - step, peak_threshold=peak))
        search_limits(best[1])
    return best[1], tried
