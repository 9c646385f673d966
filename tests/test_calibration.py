"""Choosing decision settings on validation data: the final decisions' error decides."""

from __future__ import annotations

import numpy as np
import pytest

from vocalfront.calibration import PEAK_THRESHOLDS, choose_postprocessing, final_decisions, final_error
from vocalfront.grid import DEFAULT_GRID as GRID
from vocalfront.postprocessing import PostProcessing


def noisy_song(seed: int, frames: int = 1400) -> tuple[np.ndarray, np.ndarray]:
    """Labels in long runs; probabilities near them with short bursts of the wrong answer."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(frames) // 200 % 2).astype(np.float32)
    probabilities = np.where(labels == 1, 0.8, 0.2) + 0.1 * rng.standard_normal(frames)
    for start in rng.integers(0, frames - 10, size=25):          # 4-frame flips
        probabilities[start:start + 4] = 1 - probabilities[start:start + 4]
    return np.clip(probabilities, 0, 1).astype(np.float32), labels


def test_smoothing_and_limits_are_chosen_when_they_remove_short_mistakes():
    songs = [noisy_song(seed) for seed in range(3)]
    probabilities, labels = [p for p, _ in songs], [label for _, label in songs]
    chosen, tried = choose_postprocessing(probabilities, labels, GRID)
    raw = final_error(probabilities, labels, PostProcessing(0.5, 1, 0.0, 0.0), GRID)
    best = final_error(probabilities, labels, chosen, GRID)
    assert best < raw and best == min(row["error"] for row in tried)
    assert chosen.smoothing > 1 or chosen.min_duration > 0 or chosen.min_gap > 0
    assert 0.3 < chosen.threshold < 0.7


def test_perfect_probabilities_keep_the_lightest_settings():
    labels = (np.arange(700) // 100 % 2).astype(np.float32)
    chosen, _ = choose_postprocessing([labels.copy()], [labels], GRID)
    assert (chosen.smoothing, chosen.min_gap, chosen.min_duration) == (1, 0.0, 0.0)
    assert final_error([labels], [labels], chosen, GRID) == 0.0


def test_final_decisions_fill_short_gaps_and_drop_short_segments():
    probabilities = np.zeros(700, np.float32)
    probabilities[100:300] = 1.0
    probabilities[310:500] = 1.0        # a 10-frame (0.14 s) gap
    probabilities[600:605] = 1.0        # a 5-frame (0.07 s) blip
    decided = final_decisions(probabilities, PostProcessing(0.5, 1, min_duration=0.2, min_gap=0.2), GRID)
    assert decided[100:500].all() and not decided[600:605].any()
    assert decided.sum() == pytest.approx(400, abs=2)


def hovering_music_and_quiet_singing(seed: int, frames: int = 1400) -> tuple[np.ndarray, np.ndarray]:
    """Music whose probability hovers around 0.6 without a peak, then a voice at 0.9 that sings
    quietly (0.5) every other 1.4 s: no single threshold gets both right."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(frames) >= frames // 2).astype(np.float32)
    quiet = (np.arange(frames) // 100 % 2 == 1) & (labels == 1)
    probabilities = np.where(labels == 1, np.where(quiet, 0.5, 0.9), 0.6) + 0.03 * rng.standard_normal(frames)
    return np.clip(probabilities, 0, 1).astype(np.float32), labels


def test_a_peak_threshold_is_chosen_when_music_hovers_below_the_voices_peaks():
    songs = [hovering_music_and_quiet_singing(seed) for seed in range(3)]
    probabilities, labels = [p for p, _ in songs], [label for _, label in songs]
    chosen, tried = choose_postprocessing(probabilities, labels, GRID, peak_thresholds=PEAK_THRESHOLDS)
    single, untried = choose_postprocessing(probabilities, labels, GRID)   # the default: no hysteresis
    assert chosen.peak_threshold > chosen.threshold and single.peak_threshold == 0.0
    assert {row["peak_threshold"] for row in untried} == {0.0}
    assert chosen.threshold < single.threshold
    assert final_error(probabilities, labels, chosen, GRID) < final_error(probabilities, labels, single, GRID)
    assert {row["peak_threshold"] for row in tried} > {0.0}


def test_no_peak_threshold_is_chosen_when_it_does_not_help():
    labels = (np.arange(700) // 100 % 2).astype(np.float32)
    chosen, tried = choose_postprocessing([labels.copy()], [labels], GRID, peak_thresholds=PEAK_THRESHOLDS)
    assert chosen.peak_threshold == 0.0 and any(row["peak_threshold"] > 0 for row in tried)
