"""Clustered claims on fabricated per-file test tables with known answers: song values, the
two-way bootstrap (against scipy's bootstrap and the analytic spread), TOST (against scipy's
one-sided t-tests), Holm's correction (hand-computed) and the verdicts."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from vocalfront.errors import VocalfrontError
from vocalfront.experiment import load_experiment
from vocalfront.experiment.compare import (
    bootstrap_means,
    claim,
    decide,
    difference_grid,
    holm,
    song_values,
    verdict,
)
from vocalfront.experiment.testreport import claim_pairs, claims_section

PAPER = Path(__file__).parents[1] / "experiments" / "paper.toml"


def file_rows(values: dict[str, np.ndarray], metric: str = "auroc", files_per_song: int = 1) -> list[dict]:
    """Rows of a file table from ``frontend → (seeds, songs)`` arrays of song values (each song
    split into ``files_per_song`` files of 100 frames with that same value)."""
    rows = []
    for name, grid in values.items():
        for seed, song in np.ndindex(grid.shape):
            for index in range(files_per_song):
                rows.append({"frontend": name, "seed": seed, "song": f"song{song}", "file": f"{song}-{index}",
                             "frames": 100, metric: float(grid[seed, song])})
    return rows


def test_song_value_is_the_frame_weighted_mean_of_its_files_finite_values():
    rows = [{"frontend": "fb", "seed": 0, "song": "a", "frames": 100, "error": 0.1},
            {"frontend": "fb", "seed": 0, "song": "a", "frames": 300, "error": 0.3},
            {"frontend": "fb", "seed": 0, "song": "a", "frames": 50, "error": None},
            {"frontend": "fb", "seed": 0, "song": "b", "frames": 80, "error": math.nan},
            {"frontend": "mel", "seed": 0, "song": "a", "frames": 100, "error": 0.9}]
    assert song_values(rows, "fb", "error") == {(0, "a"): pytest.approx(0.25)}


def test_difference_grid_pairs_seed_and_song_and_leaves_missing_cells_empty():
    rows = file_rows({"fb": np.array([[0.9, 0.8], [0.7, 0.6]]), "mel": np.array([[0.8, 0.8], [0.7, 0.5]])})
    missing = {"frontend": "mel", "seed": 1, "song": "song0"}
    rows = [row for row in rows if any(row[key] != value for key, value in missing.items())]
    seeds, songs, grid = difference_grid(rows, "fb", "mel", "auroc")
    assert seeds == (0, 1) and songs == ("song0", "song1")
    np.testing.assert_allclose(grid, [[0.1, 0.0], [np.nan, 0.1]], atol=1e-12)


def test_with_one_seed_the_bootstrap_is_scipys_percentile_bootstrap_over_songs():
    differences = np.random.default_rng(1).normal(0.01, 0.02, size=40)
    replicates = bootstrap_means(differences[None, :], 40_000, rng_seed=2)
    ours = np.quantile(replicates, [0.025, 0.975])
    theirs = stats.bootstrap((differences,), np.mean, n_resamples=40_000, method="percentile",
                             random_state=3).confidence_interval
    assert ours == pytest.approx([theirs.low, theirs.high], abs=0.0008)  # Monte Carlo error ~0.0002


def test_two_way_bootstrap_spread_has_both_the_seed_and_the_song_variance():
    """Additive seed and song effects: the pigeonhole bootstrap variance of the grid mean is
    ((S−1)/S) var_seed / S + ((G−1)/G) var_song / G (plug-in variances)."""
    rng = np.random.default_rng(4)
    seed_effect, song_effect = rng.normal(0, 0.01, 10), rng.normal(0, 0.03, 60)
    grid = 0.005 + seed_effect[:, None] + song_effect[None, :]
    expected = seed_effect.var() / 10 + song_effect.var() / 60
    replicates = bootstrap_means(grid, 40_000, rng_seed=5)
    assert replicates.var() == pytest.approx(expected, rel=0.05)
    songs_only = song_effect.var() / 60
    assert replicates.var() > 1.5 * songs_only  # averaging over seeds first would miss the seeds' share


def test_tost_p_value_approaches_scipys_two_one_sided_t_tests_on_many_songs():
    differences = np.random.default_rng(6).normal(0.001, 0.01, size=400)
    rows = file_rows({"fb": 0.9 + differences[None, :], "mel": np.full((1, 400), 0.9)})
    result = claim(rows, "fb", "mel", "auroc", margin=0.0015, replicates=40_000)
    lower = stats.ttest_1samp(differences, -0.0015, alternative="greater").pvalue
    upper = stats.ttest_1samp(differences, 0.0015, alternative="less").pvalue
    assert result.p_equivalence == pytest.approx(max(lower, upper), abs=0.01)
    two_sided = stats.ttest_1samp(differences, 0.0).pvalue
    assert result.p_difference == pytest.approx(two_sided, abs=0.01)
    assert result.estimate == pytest.approx(differences.mean())
    assert (result.seeds, result.songs, result.cells) == ((0,), 400, 400)


def test_holm_matches_the_hand_computed_step_down_values():
    # sorted 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1 = 0.04, 0.06, 0.06, 0.04 -> running max
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, math.nan, 0.4]) == pytest.approx([0.8, math.nan, 0.8], nan_ok=True)
    assert holm([0.9, 0.8]) == [1.0, 1.0]


@pytest.mark.parametrize(("metric", "estimate", "p_difference", "p_equivalence", "expected"), [
    ("auroc", 0.02, 0.001, 0.9, "better"),
    ("auroc", -0.02, 0.001, 0.9, "worse"),
    ("error", -0.02, 0.001, 0.9, "better"),
    ("error", 0.002, 0.01, 0.01, "worse, within the margin"),
    ("auroc", 0.001, 0.6, 0.01, "equivalent within the margin"),
    ("auroc", 0.001, 0.6, 0.2, "undecided"),
    ("auroc", 0.001, 0.6, math.nan, "undecided"),
])
def test_verdict_follows_the_corrected_p_values_and_the_metrics_direction(metric, estimate, p_difference,
                                                                         p_equivalence, expected):
    assert verdict(metric, estimate, p_difference, p_equivalence) == expected


def test_claims_get_verdicts_after_holm_within_each_metric():
    rng = np.random.default_rng(7)
    base = rng.uniform(0.8, 0.9, size=(10, 30))
    noise = rng.normal(0, 0.002, size=(4, 10, 30))
    seed_effects = 5 * noise[3][:, :1]  # sd 0.01, shared by a seed's songs
    rows = file_rows({"mel": base, "fb": base + 0.03 + noise[0], "fb-noavg": base - 0.03 + noise[1],
                      "fb-learn-cf": base + noise[2], "fb-free": base + 0.002 + seed_effects})
    claims = decide([claim(rows, name, "mel", "auroc", margin=0.005, replicates=2000)
                     for name in ("fb", "fb-noavg", "fb-learn-cf", "fb-free")])
    assert [c.verdict for c in claims] == ["better", "worse", "equivalent within the margin", "undecided"]
    assert all(c.holm_equivalence >= c.p_equivalence for c in claims)
    assert all(c.ci_low < c.estimate < c.ci_high for c in claims)


def test_with_fewer_than_ten_seeds_every_claim_stays_undecided_and_says_why():
    base = np.random.default_rng(8).uniform(0.8, 0.9, size=(3, 30))
    rows = file_rows({"mel": base, "fb": base + 0.05})
    (result,) = decide([claim(rows, "fb", "mel", "auroc", margin=0.005, replicates=500)])
    assert result.p_difference < 0.01
    assert result.verdict == "undecided (3 seeds, 10 needed; else: better)"


def test_a_comparison_without_any_common_test_file_is_a_one_line_error():
    rows = file_rows({"fb": np.ones((1, 2))})
    with pytest.raises(VocalfrontError, match=r"fb − mel: no test file scored for both in 'auroc'"):
        claim(rows, "fb", "mel", "auroc")


def test_an_experiments_claims_are_each_arm_against_the_baseline_then_its_comparisons():
    experiment = dataclasses.replace(load_experiment(PAPER, "tiny", frontends=["mel", "fb", "fb-noavg"]),
                                     comparisons=(("fb", "fb-noavg"), ("fb", "mel"), ("fb-free", "fb")))
    assert claim_pairs(experiment, ["mel", "fb", "fb-noavg"]) == [
        ("fb", "mel"), ("fb-noavg", "mel"), ("fb", "fb-noavg")]


def test_claims_table_gives_estimate_interval_margin_and_verdict_per_claim_and_metric():
    experiment = load_experiment(PAPER, "tiny", frontends=["mel", "fb"])
    base = np.random.default_rng(9).uniform(0.8, 0.9, size=(10, 20))
    files = file_rows({"mel": base, "fb": base + 0.02}) + file_rows(
        {"mel": 1 - base, "fb": 1 - base}, metric="error")
    markdown = claims_section(experiment, files, replicates=500)
    assert "| fb − mel | auroc | 10 | 20 | +0.0200 | [+0.0200, +0.0200] | ±0.0050 |" in markdown
    assert markdown.splitlines()[-2].endswith("| better |")
    assert markdown.splitlines()[-1].startswith("| fb − mel | error | 10 | 20 | +0.00 |")
    assert markdown.splitlines()[-1].endswith("| equivalent within the margin |")
    assert "auroc 0.0050, error 0.30" in markdown
