"""Frame-wise evaluation, cross-checked against scikit-learn and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

from vocalfront.errors import VocalfrontError
from vocalfront.evaluation import (
    auroc,
    boundary_distance,
    calibration_error,
    choose_threshold,
    errors_by_boundary_distance,
    evaluate_files,
    frame_metrics,
    median_smooth,
)


def random_file(rng: np.random.Generator, frames: int, decimals: int | None = None):
    """Probabilities loosely correlated with random run-length labels; rounding creates ties."""
    labels = np.repeat(rng.integers(0, 2, frames // 10 + 1), 10)[:frames]
    probs = np.clip(0.5 * labels + 0.6 * rng.random(frames) - 0.05, 0, 1)
    return (np.round(probs, decimals) if decimals is not None else probs), labels


@pytest.mark.parametrize("size", [1, 2, 5, 56])
def test_median_smooth_takes_the_documented_window_with_replicated_edges(size):
    values = np.random.default_rng(size).random(100)
    smoothed = median_smooth(values, size)
    for i in range(100):
        window = values[np.clip(np.arange(i - size // 2, i - size // 2 + size), 0, 99)]
        assert smoothed[i] == np.sort(window)[size // 2]


def test_median_smooth_removes_short_blips():
    curve = np.zeros(200)
    curve[100:120] = 1.0
    assert median_smooth(curve).max() == 0.0
    curve[60:140] = 1.0
    assert median_smooth(curve)[100] == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_frame_metrics_agree_with_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 500)
    predictions = rng.random(500) < 0.4 + 0.3 * labels
    metrics = frame_metrics(predictions, labels)
    precision, recall, f_measure, _ = precision_recall_fscore_support(
        labels, predictions, average="binary")
    specificity = precision_recall_fscore_support(labels, predictions, average="binary",
                                                  pos_label=0)[1]
    accuracy = accuracy_score(labels, predictions)
    assert metrics["precision"] == pytest.approx(precision)
    assert metrics["recall"] == pytest.approx(recall)
    assert metrics["f_measure"] == pytest.approx(f_measure)
    assert metrics["specificity"] == pytest.approx(specificity)
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert metrics["error"] == pytest.approx(1 - accuracy)
    assert metrics["tp"] + metrics["fp"] + metrics["tn"] + metrics["fn"] == metrics["frames"] == 500


def test_undefined_ratios_are_nan_like_scikit_learn_with_nan_zero_division():
    labels = np.array([0, 0, 1, 1])
    nothing_predicted = frame_metrics(np.zeros(4, bool), labels)
    expected = precision_recall_fscore_support(labels, np.zeros(4, bool), average="binary",
                                               zero_division=np.nan)
    assert math.isnan(nothing_predicted["precision"]) and math.isnan(expected[0])
    assert nothing_predicted["recall"] == expected[1] == 0.0
    assert nothing_predicted["f_measure"] == 0.0
    no_singing = frame_metrics(np.zeros(4, bool), np.zeros(4, int))
    assert math.isnan(no_singing["recall"]) and math.isnan(no_singing["f_measure"])
    assert no_singing["specificity"] == no_singing["accuracy"] == 1.0


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 1), (2, 2), (3, 0)])
def test_auroc_agrees_with_scikit_learn_including_ties(seed, decimals):
    probs, labels = random_file(np.random.default_rng(seed), 400, decimals)
    assert auroc(probs, labels) == pytest.approx(roc_auc_score(labels, probs))


def test_calibration_error_agrees_with_a_per_bin_loop():
    probs, labels = random_file(np.random.default_rng(3), 1000)
    probs[:2] = 0.0, 1.0  # the ends of [0, 1] belong to the first and the last bin
    gaps = []
    for k in range(10):
        inside = (probs >= k / 10) & ((probs < (k + 1) / 10) if k < 9 else (probs <= 1.0))
        if inside.any():
            gaps.append(inside.sum() * abs(probs[inside].mean() - labels[inside].mean()))
    assert calibration_error(probs, labels) == pytest.approx(sum(gaps) / len(probs))


def test_calibration_error_is_zero_when_each_bin_is_right_as_often_as_it_claims():
    probs = np.array([0.25] * 4 + [0.75] * 4)
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0])  # 1 in 4 at 0.25, 3 in 4 at 0.75
    assert calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)


def test_calibration_error_measures_overconfidence():
    assert calibration_error(np.full(10, 0.9), np.array([1, 0] * 5)) == pytest.approx(0.4)
    assert calibration_error(np.full(4, 0.1), np.zeros(4)) == pytest.approx(0.1)  # music alone


def test_calibration_error_refuses_mismatched_labels_and_is_nan_without_frames():
    with pytest.raises(VocalfrontError, match="3 probabilities but 2 labels"):
        calibration_error(np.zeros(3), np.zeros(2))
    assert math.isnan(calibration_error(np.zeros(0), np.zeros(0)))


def test_auroc_is_nan_when_only_one_class_occurs():
    assert math.isnan(auroc(np.random.default_rng(0).random(10), np.ones(10)))


def brute_force_best_accuracy(probs, labels):
    candidates = np.concatenate(([-np.inf], np.unique(probs)))
    return max(np.mean((probs > t) == labels) for t in candidates)


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 1), (2, 2), (3, None)])
def test_chosen_threshold_reaches_the_best_pooled_accuracy(seed, decimals):
    rng = np.random.default_rng(seed)
    files = [random_file(rng, n, decimals) for n in (50, 300, 123)]
    probs_list, labels_list = [f[0] for f in files], [f[1] for f in files]
    threshold = choose_threshold(probs_list, labels_list)
    probs, labels = np.concatenate(probs_list), np.concatenate(labels_list)
    assert accuracy_score(labels, probs > threshold) == brute_force_best_accuracy(probs, labels)


def test_threshold_lies_midway_between_separable_classes():
    threshold = choose_threshold([np.array([0.1, 0.2, 0.6, 0.9])], [np.array([0, 0, 1, 1])])
    assert threshold == pytest.approx(0.4)


def test_threshold_can_call_everything_positive_or_everything_negative():
    all_singing = choose_threshold([np.array([0.3, 0.2, 0.3])], [np.ones(3, int)])
    assert all_singing < 0.2
    no_singing = choose_threshold([np.array([0.3, 0.2, 0.9])], [np.zeros(3, int)])
    assert no_singing == 0.9


def test_threshold_inputs_must_match():
    with pytest.raises(VocalfrontError, match="2 predictions but 3 labels"):
        choose_threshold([np.zeros(2)], [np.zeros(3)])
    with pytest.raises(VocalfrontError, match="no files"):
        choose_threshold([], [])
    with pytest.raises(VocalfrontError, match="0 or 1"):
        choose_threshold([np.zeros(2)], [np.array([0, 2])])


def test_evaluate_files_pools_smoothed_decisions_and_reports_each_file():
    rng = np.random.default_rng(5)
    files = [random_file(rng, n) for n in (200, 90, 310)]
    probs_list, labels_list = [f[0] for f in files], [f[1] for f in files]
    report = evaluate_files(probs_list, labels_list, threshold=0.4, names=["a", "b", "c"],
                            smoothing=9)
    decided = np.concatenate([median_smooth(p, 9) > 0.4 for p in probs_list])
    labels = np.concatenate(labels_list)
    expected = frame_metrics(decided, labels)
    assert {k: report.pooled[k] for k in expected} == pytest.approx(expected)
    assert report.pooled["auroc"] == pytest.approx(roc_auc_score(labels, np.concatenate(probs_list)))
    assert report.pooled["ece"] == pytest.approx(calibration_error(np.concatenate(probs_list), labels))
    assert report.files[2]["ece"] == pytest.approx(calibration_error(probs_list[2], labels_list[2]))
    assert [row["name"] for row in report.files] == ["a", "b", "c"]
    assert sum(row["tp"] for row in report.files) == report.pooled["tp"]
    second = frame_metrics(median_smooth(probs_list[1], 9) > 0.4, labels_list[1])
    assert {k: report.files[1][k] for k in second} == pytest.approx(second)
    assert report.to_dict()["threshold"] == 0.4


def test_evaluate_files_names_the_file_whose_lengths_disagree():
    with pytest.raises(VocalfrontError, match="song2: 5 predictions but 4 labels"):
        evaluate_files([np.zeros(3), np.zeros(5)], [np.zeros(3), np.zeros(4)], 0.5,
                       names=["song1", "song2"])


def test_boundary_distance_counts_frames_to_the_nearest_label_change():
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
    assert boundary_distance(labels).tolist() == [2.5, 1.5, 0.5, 0.5, 0.5, 0.5, 1.5, 2.5, 3.5, 4.5]
    assert np.isinf(boundary_distance(np.ones(5))).all()


def test_errors_by_boundary_distance_tells_late_onsets_from_missed_passages():
    frame_rate = 10.0  # frames per second: a band of 0.1 s is one frame
    labels = np.r_[np.zeros(20), np.ones(20), np.zeros(20)]
    late = labels.copy()
    late[20:22] = 0  # the segment found 0.2 s late: both misses within 0.2 s of the onset
    silent = np.zeros(30)  # labels never change: music alone, two frames called singing
    called = silent.copy()
    called[[3, 17]] = 1
    rows = errors_by_boundary_distance([late, called], [labels, silent], frame_rate, edges=(0.1, 0.2, 0.4))
    assert [(row["from"], row["to"]) for row in rows] == [(0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, None)]
    assert [row["positives"] for row in rows] == [2, 2, 4, 12]
    assert [row["negatives"] for row in rows] == [2, 2, 4, 32 + 30]
    assert [row["miss_rate"] for row in rows] == [0.5, 0.5, 0.0, 0.0]
    assert rows[3]["false_alarm_rate"] == pytest.approx(2 / 62)
    assert [row["error_share"] for row in rows] == [0.25, 0.25, 0.0, 0.5]


def test_errors_by_boundary_distance_refuses_mismatched_inputs_and_edges():
    with pytest.raises(VocalfrontError, match="2 prediction arrays but 1 label arrays"):
        errors_by_boundary_distance([np.zeros(3), np.zeros(3)], [np.zeros(3)], 70.0)
    with pytest.raises(VocalfrontError, match="4 predictions but 3 labels"):
        errors_by_boundary_distance([np.zeros(4)], [np.zeros(3)], 70.0)
    with pytest.raises(VocalfrontError, match="edges must increase"):
        errors_by_boundary_distance([np.zeros(3)], [np.zeros(3)], 70.0, edges=(0.4, 0.2))
