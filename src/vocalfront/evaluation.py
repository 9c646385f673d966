"""Frame-wise evaluation of singing-voice predictions (protocol of Schlüter & Grill 2015).

Per-frame probabilities are median-smoothed over 56 frames (0.8 s), thresholded (a frame is
predicted "singing" when its smoothed probability is strictly greater than the threshold, which
is chosen on the validation set to maximise accuracy) and compared with 0/1 labels on the same
frame grid. Metrics pool all frames of all files; per-file rows come alongside. AUROC and the
calibration error use the unsmoothed probabilities. Undefined ratios (0 / 0, e.g. precision of a
file where nothing was predicted positive) are NaN, never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import median_filter
from scipy.stats import rankdata

from .errors import VocalfrontError

SMOOTHING_FRAMES = 56
"""Median filter length in frames (0.8 s at 70 frames per second)."""
MAX_SMOOTHING = 10_000
"""Longest median filter in frames (143 s at 70 frames per second; longer ones only cost time)."""


def check_smoothing(frames: Any, what: str = "smoothing") -> int:
    """``frames`` as a median filter length: a whole number from 0 to :data:`MAX_SMOOTHING`
    (numpy integers included); otherwise a :class:`VocalfrontError` naming ``what``."""
    if isinstance(frames, bool | np.bool_) or not isinstance(frames, int | np.integer) \
            or not 0 <= frames <= MAX_SMOOTHING:
        raise VocalfrontError(f"{what} must be a whole number of frames from 0 to {MAX_SMOOTHING}, "
                              f"got {frames!r}")
    return int(frames)


def median_smooth(probabilities: np.ndarray, size: int = SMOOTHING_FRAMES) -> np.ndarray:
    """Running median of a 1-D probability curve over ``size`` frames (``size <= 1``: a copy).

    Edges repeat the first/last value (``mode="nearest"``). For even ``size`` the window of frame
    ``i`` is ``[i - size // 2, i + size // 2 - 1]`` and the result is the upper of the two middle
    values (``scipy.ndimage.median_filter``), as in Schlüter's evaluation code.
    """
    values = np.asarray(probabilities, dtype=np.float64)
    if values.ndim != 1:
        raise VocalfrontError(f"probabilities must be 1-D, got shape {values.shape}")
    size = check_smoothing(size, "median filter length")
    if size <= 1:
        return values.copy()
    return median_filter(values, size=size, mode="nearest")


def _binary_labels(labels: np.ndarray, source: str = "labels") -> np.ndarray:
    """0/1 (or boolean) labels as a boolean 1-D array; anything else is an error."""
    values = np.asarray(labels)
    if values.ndim != 1:
        raise VocalfrontError(f"{source}: labels must be 1-D, got shape {values.shape}")
    if not np.isin(values, (0, 1)).all():
        raise VocalfrontError(f"{source}: labels must be 0 or 1")
    return values.astype(bool)


def _pooled(probs_list: Sequence[np.ndarray], labels_list: Sequence[np.ndarray],
            names: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-file curves and labels after checking that their lengths agree."""
    if len(probs_list) != len(labels_list):
        raise VocalfrontError(f"{len(probs_list)} prediction curves but {len(labels_list)} label arrays")
    if not probs_list:
        raise VocalfrontError("no files to evaluate")
    names = names or [f"file {index}" for index in range(len(probs_list))]
    for name, probs, labels in zip(names, probs_list, labels_list, strict=True):
        if len(probs) != len(labels):
            raise VocalfrontError(f"{name}: {len(probs)} predictions but {len(labels)} labels")
    probs = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in probs_list])
    labels = np.concatenate([_binary_labels(y, name) for name, y in zip(names, labels_list,
                                                                        strict=True)])
    return probs, labels


def choose_threshold(probs_list: Sequence[np.ndarray], labels_list: Sequence[np.ndarray]) -> float:
    """Threshold maximising the accuracy of ``probability > threshold`` on all frames pooled.

    Every distinct split of the sorted values is tried (``O(n log n)``). The returned threshold
    lies midway between the highest value called negative and the lowest called positive;
    when all frames are best called positive it is just below the minimum, when all negative
    the maximum. Ties in accuracy go to the lowest threshold. For the protocol, pass
    median-smoothed validation curves (see :func:`median_smooth`).
    """
    probs, labels = _pooled(probs_list, labels_list)
    order = np.argsort(probs, kind="stable")
    values, positives = probs[order], labels[order]
    # index of the last frame of each run of equal values: splits "<= values[last]" negative
    last = np.flatnonzero(np.append(values[1:] != values[:-1], True))
    positives_below = np.cumsum(positives)[last]
    n_positive = positives_below[-1]
    # candidate 0: everything positive; candidate k: values <= values[last[k - 1]] negative
    correct = np.concatenate(([n_positive], last + 1 - 2 * positives_below + n_positive))
    best = int(np.argmax(correct))
    if best == 0:
        return float(np.nextafter(values[0], -np.inf))
    if best == len(last):
        return float(values[-1])
    split = last[best - 1]
    return float((values[split] + values[split + 1]) / 2)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def frame_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Confusion counts and rates of boolean frame predictions against 0/1 labels.

    Keys: ``frames``, ``tp``, ``fp``, ``tn``, ``fn`` (counts), ``accuracy``, ``error``
    (= 1 - accuracy), ``precision`` = tp / (tp + fp), ``recall`` = tp / (tp + fn),
    ``specificity`` = tn / (tn + fp), ``f_measure`` = 2 tp / (2 tp + fp + fn). A ratio whose
    denominator is 0 is NaN (F-measure too, only when tp = fp = fn = 0).
    """
    predicted = np.asarray(predictions, dtype=bool)
    truth = _binary_labels(labels)
    if predicted.shape != truth.shape:
        raise VocalfrontError(f"{predicted.size} predictions but {truth.size} labels")
    tp = int(np.sum(predicted & truth))
    fp = int(np.sum(predicted & ~truth))
    fn = int(np.sum(~predicted & truth))
    tn = truth.size - tp - fp - fn
    accuracy = _ratio(tp + tn, truth.size)
    return {"frames": truth.size, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "accuracy": accuracy, "error": 1.0 - accuracy,
            "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp), "f_measure": _ratio(2 * tp, 2 * tp + fp + fn)}


def auroc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U); ties count one half.

    NaN when the labels hold only one class.
    """
    scores = np.asarray(probabilities, dtype=np.float64).ravel()
    truth = _binary_labels(labels)
    if scores.shape != truth.shape:
        raise VocalfrontError(f"{scores.size} probabilities but {truth.size} labels")
    n_pos = int(truth.sum())
    n_neg = truth.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = rankdata(scores)[truth].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


BOUNDARY_EDGES = (0.1, 0.2, 0.4, 0.8)
"""Seconds: the distance bands of :func:`errors_by_boundary_distance` (0-0.1, 0.1-0.2, 0.2-0.4,
0.4-0.8 s and beyond)."""


def boundary_distance(labels: np.ndarray) -> np.ndarray:
    """Frames from each frame of 0/1 ``labels`` ``(frames,)`` to the nearest change of label,
    float ``(frames,)``: a change lies between two frames, so the frames on either side of it are
    0.5 from it; ``inf`` everywhere when the labels never change."""
    truth = _binary_labels(labels)
    changes = np.flatnonzero(truth[1:] != truth[:-1]) + 0.5
    frames = np.arange(truth.size, dtype=float)
    if not changes.size:
        return np.full(truth.size, np.inf)
    after = np.minimum(np.searchsorted(changes, frames), changes.size - 1)
    before = np.maximum(after - 1, 0)
    return np.minimum(np.abs(frames - changes[after]), np.abs(frames - changes[before]))


def errors_by_boundary_distance(predictions: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                                frame_rate: float, edges: Sequence[float] = BOUNDARY_EDGES
                                ) -> list[dict[str, float | None]]:
    """Where the errors of boolean frame ``predictions`` against 0/1 ``labels`` (one
    ``(frames,)`` pair per file) lie: one row per band of distance to the nearest label change
    (``edges`` in seconds, ``frame_rate`` frames per second; the last band is open), pooled over
    the files. A file whose labels never change lies wholly in the last band.

    Row keys: ``from``, ``to`` (seconds; ``to`` is ``None`` for the last band, so that the rows
    stay valid JSON), ``negatives`` and ``positives`` (frames without and with singing),
    ``false_alarm_rate`` = fp / negatives, ``miss_rate`` = fn / positives (NaN for an empty class)
    and ``error_share``, the band's share of all wrong frames. Frame errors in the first bands are
    about where a segment starts or ends, those in the last about whole passages.
    """
    if len(predictions) != len(labels):
        raise VocalfrontError(f"{len(predictions)} prediction arrays but {len(labels)} label arrays")
    bounds = np.array([0.0, *edges, np.inf])
    if np.any(np.diff(bounds) <= 0):
        raise VocalfrontError(f"boundary distance edges must increase from above 0, got {tuple(edges)}")
    counts = np.zeros((4, len(bounds) - 1), dtype=np.int64)  # negatives, false alarms, positives, misses
    for predicted, truth in zip(predictions, labels, strict=True):
        predicted, truth = np.asarray(predicted, dtype=bool), _binary_labels(truth)
        if predicted.shape != truth.shape:
            raise VocalfrontError(f"{predicted.size} predictions but {truth.size} labels")
        seconds = boundary_distance(truth) / frame_rate
        band = np.minimum(np.searchsorted(bounds, seconds, side="right") - 1, len(bounds) - 2)
        for row, chosen in enumerate((~truth, predicted & ~truth, truth, ~predicted & truth)):
            counts[row] += np.bincount(band[chosen], minlength=len(bounds) - 1)
    negatives, false_alarms, positives, misses = counts.tolist()
    wrong = sum(false_alarms) + sum(misses)
    return [{"from": float(bounds[k]), "to": None if np.isinf(bounds[k + 1]) else float(bounds[k + 1]),
             "negatives": negatives[k], "positives": positives[k],
             "false_alarm_rate": _ratio(false_alarms[k], negatives[k]),
             "miss_rate": _ratio(misses[k], positives[k]),
             "error_share": _ratio(false_alarms[k] + misses[k], wrong)}
            for k in range(len(bounds) - 1)]


BOUNDARY_COLUMNS = ("distance (s)", "non-singing frames", "false alarms %", "singing frames", "missed %",
                    "share of the errors %")
"""Column names of :func:`boundary_cells`."""


def boundary_cells(row: dict[str, float | None]) -> list[str]:
    """One row of :func:`errors_by_boundary_distance` as table cells (:data:`BOUNDARY_COLUMNS`):
    the band (``0.1-0.2``, ``0.8+``), frame counts, rates in percent (``–`` where undefined)."""
    def percent(value: float | None) -> str:
        return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"

    band = f"{row['from']:g}+" if row["to"] is None else f"{row['from']:g}-{row['to']:g}"
    return [band, str(row["negatives"]), percent(row["false_alarm_rate"]), str(row["positives"]),
            percent(row["miss_rate"]), percent(row["error_share"])]


CALIBRATION_BINS = 10
"""Equal-width probability bins of :func:`calibration_error`."""


def calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error (Naeini et al. 2015) of frame probabilities against 0/1 labels.

    The frames are put in ``bins`` equal-width bins of [0, 1] by probability; in each bin the
    mean probability is compared with the share of singing frames, and the absolute gaps are
    averaged, weighted by the bins' frame counts. 0 when every bin is calibrated (its frames of
    probability about 0.7 are singing 70 % of the time); at most 1. NaN for no frames.
    """
    scores = np.asarray(probabilities, dtype=np.float64).ravel()
    truth = _binary_labels(labels)
    if scores.shape != truth.shape:
        raise VocalfrontError(f"{scores.size} probabilities but {truth.size} labels")
    if not truth.size:
        return float("nan")
    index = np.clip((scores * bins).astype(np.int64), 0, bins - 1)
    predicted = np.bincount(index, weights=scores, minlength=bins)
    observed = np.bincount(index, weights=truth.astype(np.float64), minlength=bins)
    # the sum over bins of |predicted - observed| / frames is the count-weighted mean of the
    # per-bin gaps |mean probability - share of singing|
    return float(np.abs(predicted - observed).sum() / truth.size)


@dataclass(frozen=True)
class EvaluationReport:
    """Pooled metrics over all frames, and one row per file (``name`` plus the same keys).

    Metric keys are those of :func:`frame_metrics` plus ``auroc`` and ``ece``
    (:func:`calibration_error`), both of the unsmoothed probabilities.
    """

    threshold: float
    smoothing: int
    pooled: dict[str, float]
    files: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary of Python values (undefined metrics stay NaN)."""
        return {"threshold": self.threshold, "smoothing": self.smoothing,
                "pooled": self.pooled, "files": self.files}


def protocol_decisions(probabilities: np.ndarray, threshold: float,
                       smoothing: int = SMOOTHING_FRAMES) -> np.ndarray:
    """Boolean ``(frames,)``: the protocol's decision for each frame of one file's probabilities
    ``(frames,)``, singing where the median-smoothed probability is strictly above ``threshold``."""
    return median_smooth(probabilities, smoothing) > threshold


def evaluate_files(probs_list: Sequence[np.ndarray], labels_list: Sequence[np.ndarray],
                   threshold: float, names: Sequence[str] | None = None,
                   smoothing: int = SMOOTHING_FRAMES) -> EvaluationReport:
    """Smooth, threshold and score per-frame probabilities of several files.

    ``probs_list[i]`` and ``labels_list[i]`` are 1-D, of equal length (frames of file ``i`` on
    the common grid); ``names`` label the per-file rows (default ``"file <i>"``). Each curve is
    smoothed on its own (:func:`median_smooth` with ``smoothing`` frames) before pooling.
    """
    names = list(names) if names is not None else [f"file {i}" for i in range(len(probs_list))]
    if len(names) != len(probs_list):
        raise VocalfrontError(f"{len(names)} names for {len(probs_list)} files")
    raw, truth = _pooled(probs_list, labels_list, names)
    decided = np.concatenate([protocol_decisions(p, threshold, smoothing) for p in probs_list])
    bounds = np.cumsum([0, *(len(p) for p in probs_list)])
    files = [{"name": name, **frame_metrics(decided[start:stop], truth[start:stop]),
              "auroc": auroc(raw[start:stop], truth[start:stop]),
              "ece": calibration_error(raw[start:stop], truth[start:stop])}
             for name, start, stop in zip(names, bounds[:-1], bounds[1:], strict=True)]
    pooled = {**frame_metrics(decided, truth), "auroc": auroc(raw, truth),
              "ece": calibration_error(raw, truth)}
    return EvaluationReport(float(threshold), int(smoothing), pooled, files)
