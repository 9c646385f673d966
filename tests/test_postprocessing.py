"""Decision settings: hysteresis (a peak threshold above the threshold), records and checks."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from vocalfront import postprocessing
from vocalfront.data.labels import segments_to_frames
from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID as GRID
from vocalfront.postprocessing import PostProcessing, runs_peaking_above

# three runs above 0.3: the first peaks at 0.9, the second at 0.6, the third exactly at 0.8
SMOOTHED = np.array([0.1, 0.4, 0.9, 0.35, 0.2, 0.5, 0.6, 0.5, 0.1, 0.4, 0.8, 0.1], np.float32)


def frame_decisions(smoothed: np.ndarray, threshold: float, peak_threshold: float) -> np.ndarray:
    """The frame decisions at two thresholds, without gap filling."""
    return PostProcessing(threshold, 1, 0.0, 0.0, peak_threshold).frame_decisions(smoothed)


def test_runs_that_never_rise_above_the_peak_threshold_are_dropped_whole():
    decided = frame_decisions(SMOOTHED, threshold=0.3, peak_threshold=0.7)
    assert decided.astype(int).tolist() == [0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0]


def test_the_peak_must_be_exceeded_strictly_like_the_threshold():
    assert not frame_decisions(SMOOTHED, 0.3, 0.8)[9:11].any()
    assert frame_decisions(SMOOTHED, 0.3, 0.79)[9:11].all()


@pytest.mark.parametrize("peak", [0.0, 0.2, 0.3])
def test_a_peak_threshold_at_or_below_the_threshold_keeps_every_run(peak):
    np.testing.assert_array_equal(frame_decisions(SMOOTHED, 0.3, peak), SMOOTHED > 0.3)


def test_silence_and_all_singing_need_no_special_case():
    assert not frame_decisions(np.zeros(50), 0.3, 0.7).any()
    assert frame_decisions(np.ones(50), 0.3, 0.7).all()
    assert frame_decisions(np.zeros(0), 0.3, 0.7).shape == (0,)


def test_runs_are_judged_after_gaps_are_filled_and_before_short_ones_are_dropped():
    probabilities = np.zeros(700, np.float32)
    probabilities[100:300] = 0.9
    probabilities[310:360] = 0.5        # a weak run 10 frames (0.14 s) after a strong one: joined
    probabilities[500:600] = 0.5        # a weak run on its own: dropped
    probabilities[650:655] = 0.9        # a strong 0.07 s blip: too short
    settings = PostProcessing(threshold=0.3, smoothing=1, min_duration=0.2, min_gap=0.2, peak_threshold=0.7)
    smoothed, segments = settings.apply(probabilities, GRID)
    np.testing.assert_array_equal(smoothed, probabilities)
    assert segments_to_frames(segments, 700, GRID).nonzero()[0].tolist() == list(range(100, 360))


def test_runs_peaking_above_keeps_whole_runs_only():
    decisions = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1], bool)
    values = np.array([0.2, 0.9, 0.0, 0.3, 0.4, 0.5, 0.9, 0.9, 0.6])
    assert runs_peaking_above(decisions, values, 0.55).astype(int).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert not runs_peaking_above(np.zeros(3, bool), np.ones(3), 0.5).any()


def test_a_record_without_a_peak_threshold_keeps_every_run():
    assert PostProcessing.from_record({"threshold": 0.4}).peak_threshold == 0.0
    stored = PostProcessing(0.4, 9, 0.25, 0.125, 0.8)
    assert PostProcessing.from_record(stored.to_record()) == stored


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), "0.8", True])
def test_a_stored_peak_threshold_that_is_no_probability_is_a_one_line_error(value):
    message = r"^model\.pt: stored peak threshold must be a number from 0 to 1"
    with pytest.raises(VocalfrontError, match=message):
        PostProcessing.from_record({"peak_threshold": value}, "model.pt")
    with pytest.raises(VocalfrontError, match="peak_threshold must be a number from 0 to 1"):
        PostProcessing(peak_threshold=value)


def test_the_docstring_example_gives_what_it_shows():
    result = doctest.testmod(postprocessing, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
