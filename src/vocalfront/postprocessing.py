"""How a detector's per-frame probabilities become singing segments, and who decides it.

Five settings, applied in this order by :meth:`PostProcessing.apply`:

- ``smoothing``: median filter length in frames (56 = 0.8 s at 70 frames per second);
- ``threshold``: a frame is singing when its smoothed probability is strictly above it, in [0, 1];
- ``min_gap`` (seconds): gaps between runs of singing frames shorter than this are filled;
- ``peak_threshold``: a run (gaps filled) stays singing only if its smoothed probability rises
  strictly above this somewhere (hysteresis, or double thresholding: ``threshold`` extends what
  ``peak_threshold`` found; at or below ``threshold``, 0 by default, every run stays). Music
  whose probability hovers around the threshold without a clear peak is not called singing,
  while a sung phrase is followed down to the lower threshold at its edges and across its
  breaths;
- ``min_duration`` (seconds): runs shorter than this are then dropped; the rest are the segments.

The model file owns them: :func:`~vocalfront.detector_file.save_detector`'s ``extra`` record holds
``threshold`` and ``median_filter`` (written by training) and, optionally, ``peak_threshold``,
``min_duration`` and ``min_gap``. A record without a key falls back to the ``DEFAULT_*`` values
here; options of the command line and arguments of the API override single settings
(:meth:`PostProcessing.override`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage

from .errors import VocalfrontError
from .evaluation import SMOOTHING_FRAMES, check_smoothing, median_smooth
from .grid import DEFAULT_GRID, FrameGrid
from .segments import Segment, fill_short_gaps, frames_to_segments

DEFAULT_THRESHOLD = 0.5
"""Threshold of a model whose record stores none (e.g. a bare :class:`~vocalfront.model.Detector`)."""
DEFAULT_SMOOTHING = SMOOTHING_FRAMES
"""Median filter length in frames (56 = 0.8 s, the protocol's) of a model whose record stores none."""
DEFAULT_MIN_DURATION = 0.75
"""Seconds; shortest segment kept when the model's record stores none. Chosen on the MIR-1K
validation singers with the 0.2 default model: frame error 14.16 % with these two limits,
14.24 % without; 1 s costs 0.2 points. Models trained since store their own
(:mod:`vocalfront.calibration`)."""
DEFAULT_MIN_GAP = 0.2
"""Seconds; shortest gap kept between segments when the model's record stores none (chosen as
:data:`DEFAULT_MIN_DURATION`; 0.3 s costs 0.03 points, 1 s 0.8): breaths between phrases are
filled, pauses stay."""
DEFAULT_PEAK_THRESHOLD = 0.0
"""No peak needed (every run above the threshold is kept) when the model's record stores none:
what every model before 0.12.0 did."""

RECORD_KEYS = {"threshold": "threshold", "smoothing": "median_filter", "min_duration": "min_duration",
               "min_gap": "min_gap", "peak_threshold": "peak_threshold"}
"""Setting -> key of the model file's ``extra`` record that stores it."""


@dataclass(frozen=True)
class PostProcessing:
    """Decision settings: ``threshold`` (smoothed probability, in [0, 1]), ``smoothing`` (median
    filter length, frames, 0 or 1 = none, at most :data:`~vocalfront.evaluation.MAX_SMOOTHING`),
    ``min_duration`` and ``min_gap`` (seconds, >= 0), ``peak_threshold`` (in [0, 1]; see the
    module docstring); checked and made Python numbers.

    Example:
        >>> settings = PostProcessing(threshold=0.3, smoothing=1, min_duration=0.0, min_gap=0.0,
        ...                           peak_threshold=0.8)
        >>> probabilities = np.array([0.1, 0.5, 0.9, 0.4, 0.1, 0.5, 0.6, 0.1])
        >>> settings.frame_decisions(probabilities).astype(int)   # the second run never passes 0.8
        array([0, 1, 1, 1, 0, 0, 0, 0])
        >>> smoothed, segments = settings.apply(probabilities)    # 70 frames per second
        >>> [(round(s.start, 3), round(s.end, 3)) for s in segments]
        [(0.03, 0.073)]
    """

    threshold: float = DEFAULT_THRESHOLD
    smoothing: int = DEFAULT_SMOOTHING
    min_duration: float = DEFAULT_MIN_DURATION
    min_gap: float = DEFAULT_MIN_GAP
    peak_threshold: float = DEFAULT_PEAK_THRESHOLD

    def __post_init__(self) -> None:
        for name in RECORD_KEYS:
            object.__setattr__(self, name, check_setting(name, getattr(self, name)))

    @classmethod
    def from_record(cls, extra: Mapping[str, Any], source: str | None = None) -> PostProcessing:
        """The settings stored in a model file's ``extra`` record (missing keys: the defaults).

        An unusable stored value is a :class:`VocalfrontError` naming the key (``stored median
        filter ...``), after ``source`` when given. A stored threshold a hair below 0 (the
        validation choice "every frame is singing" when the lowest probability is 0) is read as 0.
        """
        stored = {name: extra[key] for name, key in RECORD_KEYS.items() if key in extra}
        if is_number(stored.get("threshold")) and -1e-6 < stored["threshold"] < 0:
            stored["threshold"] = 0.0
        try:
            checked = {name: check_setting(name, value, "stored " + RECORD_KEYS[name].replace("_", " "))
                       for name, value in stored.items()}
        except VocalfrontError as error:
            raise VocalfrontError(str(error) if source is None else f"{source}: {error}") from None
        return cls(**checked)

    def override(self, threshold: float | None = None, smoothing: int | None = None,
                 min_duration: float | None = None, min_gap: float | None = None,
                 peak_threshold: float | None = None) -> PostProcessing:
        """These settings with the given ones replaced (``None`` keeps this one); checked."""
        given = {"threshold": threshold, "smoothing": smoothing, "min_duration": min_duration,
                 "min_gap": min_gap, "peak_threshold": peak_threshold}
        return replace(self, **{name: value for name, value in given.items() if value is not None})

    def to_record(self) -> dict[str, float | int]:
        """The ``extra`` keys that store these settings in a model file."""
        return {key: getattr(self, name) for name, key in RECORD_KEYS.items()}

    def frame_decisions(self, smoothed: np.ndarray, grid: FrameGrid = DEFAULT_GRID) -> np.ndarray:
        """Boolean ``(frames,)``: the frames of smoothed probabilities ``(frames,)`` on ``grid``
        strictly above ``threshold``, gaps shorter than ``min_gap`` between them filled, in runs
        that rise strictly above ``peak_threshold`` somewhere (``min_duration`` not applied)."""
        joined = fill_short_gaps(np.asarray(smoothed) > self.threshold, grid, self.min_gap)
        if not peak_applies(self.threshold, self.peak_threshold):
            return joined
        return runs_peaking_above(joined, smoothed, self.peak_threshold)

    def apply(self, probabilities: np.ndarray, grid: FrameGrid = DEFAULT_GRID,
              duration: float | None = None) -> tuple[np.ndarray, list[Segment]]:
        """The median-smoothed probabilities ``(frames,)`` of per-frame ``probabilities``
        ``(frames,)`` on ``grid``, and the singing segments all five settings make of them
        (seconds, clipped to ``duration`` when given)."""
        smoothed = median_smooth(probabilities, self.smoothing)
        segments = frames_to_segments(self.frame_decisions(smoothed, grid), grid, self.min_duration,
                                      duration=duration)  # gaps are filled already
        return smoothed, segments


def peak_applies(threshold: float, peak_threshold: float | None) -> bool:
    """Whether ``peak_threshold`` can drop a run of frames above ``threshold``: only when it lies
    above it (every such run already rises above a lower one; ``None`` is no peak threshold)."""
    return peak_threshold is not None and peak_threshold > threshold


def runs_peaking_above(decisions: np.ndarray, values: np.ndarray, peak: float) -> np.ndarray:
    """Boolean ``(frames,)``: the runs of ``True`` in ``decisions`` ``(frames,)`` in which
    ``values`` ``(frames,)`` rise strictly above ``peak`` somewhere."""
    runs, count = ndimage.label(decisions)
    if count == 0:
        return np.zeros(len(decisions), dtype=bool)
    peaks = np.asarray(ndimage.maximum(values, runs, np.arange(1, count + 1)))
    return np.concatenate([[False], peaks > peak])[runs]


def check_setting(name: str, value: Any, what: str | None = None) -> float | int:
    """``value`` checked as the setting ``name`` (a field of :class:`PostProcessing`) and made a
    Python number; otherwise a one-line :class:`VocalfrontError` naming ``what`` (default:
    ``name``). Python and numpy numbers are accepted."""
    what = what or name
    if name in ("threshold", "peak_threshold"):
        return check_threshold(value, what)
    if name == "smoothing":
        return check_smoothing(value, what)
    if not is_number(value) or value < 0:
        raise VocalfrontError(f"{what} must be a non-negative number of seconds, got {value!r}")
    return float(value)


def check_threshold(value: Any, what: str = "threshold") -> float:
    """``value`` as a decision threshold: a number from 0 to 1, else a :class:`VocalfrontError`."""
    if not is_number(value) or not 0 <= value <= 1:
        raise VocalfrontError(f"{what} must be a number from 0 to 1, got {value!r}")
    return float(value)


def is_number(value: Any) -> bool:
    """A finite real number: Python or numpy, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) \
        and math.isfinite(value)
