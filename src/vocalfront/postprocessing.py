"""How a detector's per-frame probabilities become singing segments, and who decides it.

Four settings, applied in this order by :func:`vocalfront.detect.decide`:

- ``smoothing``: median filter length in frames (56 = 0.8 s at 70 frames per second);
- ``threshold``: a frame is singing when its smoothed probability is strictly above it, in [0, 1];
- ``min_gap`` (seconds): gaps between segments shorter than this are filled;
- ``min_duration`` (seconds): segments shorter than this are then dropped.

The model file owns them: :func:`~vocalfront.detector_file.save_detector`'s ``extra`` record holds
``threshold`` and ``median_filter`` (written by training) and, optionally, ``min_duration`` and
``min_gap``. A record without a key falls back to the ``DEFAULT_*`` values here; options of the
command line and arguments of the API override single settings (:meth:`PostProcessing.override`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import VocalfrontError
from .evaluation import SMOOTHING_FRAMES, check_smoothing

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

RECORD_KEYS = {"threshold": "threshold", "smoothing": "median_filter",
               "min_duration": "min_duration", "min_gap": "min_gap"}
"""Setting -> key of the model file's ``extra`` record that stores it."""


@dataclass(frozen=True)
class PostProcessing:
    """Decision settings: ``threshold`` (smoothed probability, in [0, 1]), ``smoothing`` (median
    filter length, frames, 0 or 1 = none, at most :data:`~vocalfront.evaluation.MAX_SMOOTHING`),
    ``min_duration`` and ``min_gap`` (seconds, >= 0); checked and made Python numbers."""

    threshold: float = DEFAULT_THRESHOLD
    smoothing: int = DEFAULT_SMOOTHING
    min_duration: float = DEFAULT_MIN_DURATION
    min_gap: float = DEFAULT_MIN_GAP

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
                 min_duration: float | None = None, min_gap: float | None = None) -> PostProcessing:
        """These settings with the given ones replaced (``None`` keeps this one); checked."""
        given = {"threshold": threshold, "smoothing": smoothing, "min_duration": min_duration,
                 "min_gap": min_gap}
        return replace(self, **{name: value for name, value in given.items() if value is not None})

    def to_record(self) -> dict[str, float | int]:
        """The ``extra`` keys that store these settings in a model file."""
        return {key: getattr(self, name) for name, key in RECORD_KEYS.items()}


def check_setting(name: str, value: Any, what: str | None = None) -> float | int:
    """``value`` checked as the setting ``name`` (a field of :class:`PostProcessing`) and made a
    Python number; otherwise a one-line :class:`VocalfrontError` naming ``what`` (default:
    ``name``). Python and numpy numbers are accepted."""
    what = what or name
    if name == "threshold":
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
