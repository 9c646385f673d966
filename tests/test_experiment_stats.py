"""Statistics of the front-end comparison on fabricated run tables with known answers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from scipy import stats

from vocalfront.errors import VocalfrontError
from vocalfront.experiment import load_experiment
from vocalfront.experiment.report import (
    RUN_COLUMNS,
    cross_experiment_markdown,
    read_results_csv,
    results_csv,
    results_markdown,
)
from vocalfront.experiment.stats import (
    WILCOXON_MIN_PAIRS,
    paired_difference,
    summarize,
    summarize_by_frontend,
    t_interval,
    values_by_seed,
)

PAPER = Path(__file__).parents[1] / "experiments" / "paper.toml"
T_975_DF2 = 4.302652729911275
"""97.5 % quantile of Student's t with 2 degrees of freedom (printed tables: 4.303)."""


def table(values: dict[str, dict[int, float | None]]) -> list[dict]:
    return [{"frontend": name, "seed": seed, "auroc": value}
            for name, runs in values.items() for seed, value in runs.items()]


# mel has seeds 0-3, fb seeds 0-2 and 5: pairs are seeds 0, 1, 2 with differences 0.03, 0.02, 0.01
RUNS = table({"mel": {0: 0.90, 1: 0.92, 2: 0.91, 3: 0.93},
              "fb": {0: 0.93, 1: 0.94, 2: 0.92, 5: 0.95}})


def test_summary_is_mean_and_sample_sd_of_the_finite_values():
    summary = summarize([1.0, 2.0, None, 3.0, math.nan, 4.0])
    assert summary.n == 4
    assert summary.mean == pytest.approx(2.5)
    assert summary.sd == pytest.approx(math.sqrt(5 / 3))  # squared deviations 2.25+0.25+0.25+2.25 over 3


def test_summary_of_one_value_has_no_sd_and_of_none_no_mean():
    assert summarize([0.7]).mean == 0.7
    assert math.isnan(summarize([0.7]).sd)
    assert summarize([]).n == 0
    assert math.isnan(summarize([]).mean)


def test_summaries_per_frontend_keep_table_order():
    summaries = summarize_by_frontend(RUNS, "auroc")
    assert list(summaries) == ["mel", "fb"]
    assert summaries["mel"].n == 4
    assert summaries["mel"].mean == pytest.approx(0.915)
    assert summaries["fb"].mean == pytest.approx((0.93 + 0.94 + 0.92 + 0.95) / 4)


def test_paired_difference_uses_only_complete_pairs_and_lists_the_rest():
    result = paired_difference(RUNS, "fb", "mel", "auroc")
    assert result.seeds == (0, 1, 2)
    assert result.unpaired == (3, 5)
    assert result.differences == pytest.approx((0.03, 0.02, 0.01))
    assert result.mean == pytest.approx(0.02)
    assert result.sd == pytest.approx(0.01)


def test_paired_interval_matches_the_hand_computed_t_interval():
    result = paired_difference(RUNS, "fb", "mel", "auroc")
    half = T_975_DF2 * 0.01 / math.sqrt(3)  # 0.024841
    assert result.ci_low == pytest.approx(0.02 - half, abs=1e-12)
    assert result.ci_high == pytest.approx(0.02 + half, abs=1e-12)
    assert result.confidence == 0.95


def test_paired_t_test_p_value_matches_closed_form_and_scipy():
    result = paired_difference(RUNS, "fb", "mel", "auroc")
    t = 0.02 / (0.01 / math.sqrt(3))
    closed_form = 1 - t / math.sqrt(2 + t * t)  # two-sided p of Student's t with 2 degrees of freedom
    assert result.t_p == pytest.approx(closed_form, rel=1e-9)
    scipy_p = stats.ttest_rel([0.93, 0.94, 0.92], [0.90, 0.92, 0.91]).pvalue
    assert result.t_p == pytest.approx(scipy_p, rel=1e-12)
    assert result.wilcoxon_p is None  # 3 pairs


def test_wilcoxon_is_reported_from_six_pairs_and_matches_scipy():
    mel = {seed: 0.90 + 0.01 * seed for seed in range(7)}
    shifts = [0.012, -0.004, 0.021, 0.007, 0.015, -0.009, 0.03]
    fb = {seed: mel[seed] + shift for seed, shift in enumerate(shifts)}
    result = paired_difference(table({"mel": mel, "fb": fb}), "fb", "mel", "auroc")
    expected = stats.wilcoxon([fb[s] - mel[s] for s in range(7)]).pvalue
    assert result.wilcoxon_p == pytest.approx(expected, rel=1e-12)
    five = paired_difference(table({"mel": mel, "fb": {s: fb[s] for s in range(5)}}), "fb", "mel", "auroc")
    assert WILCOXON_MIN_PAIRS == 6 and five.wilcoxon_p is None


def test_missing_metric_values_count_as_missing_runs():
    runs = table({"mel": {0: 0.9, 1: None, 2: 0.8}, "fb": {0: 0.95, 1: 0.9, 2: math.nan}})
    result = paired_difference(runs, "fb", "mel", "auroc")
    assert result.seeds == (0,)
    assert result.unpaired == (1, 2)


def test_a_single_pair_has_no_interval_or_p_value():
    result = paired_difference(table({"mel": {0: 0.9}, "fb": {0: 0.95}}), "fb", "mel", "auroc")
    assert result.n == 1
    assert result.mean == pytest.approx(0.05)
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high) and math.isnan(result.t_p)


def test_t_interval_widens_with_confidence_and_rejects_nonsense():
    narrow, wide = t_interval([1.0, 2.0, 3.0], 0.5), t_interval([1.0, 2.0, 3.0], 0.99)
    assert wide[0] < narrow[0] < 2.0 < narrow[1] < wide[1]
    with pytest.raises(VocalfrontError, match="confidence"):
        t_interval([1.0, 2.0], 1.5)


def test_two_runs_with_the_same_seed_are_an_error():
    runs = [*RUNS, {"frontend": "fb", "seed": 1, "auroc": 0.5}]
    with pytest.raises(VocalfrontError, match="seed 1"):
        values_by_seed(runs, "fb", "auroc")


def fabricated_rows(auroc: dict[str, dict[int, float]]) -> list[dict]:
    """Finished-run rows of the report (every column present; error = 1 - AUROC for simplicity)."""
    rows = []
    for row in table(auroc):
        full = dict.fromkeys(RUN_COLUMNS)
        full.update(row, version="test", updates=8, train_time_s=1.0, error=1 - row["auroc"], f_measure=0.9)
        rows.append(full)
    return rows


def test_report_tables_the_experiment_files_further_comparisons(tmp_path):
    experiment = dataclasses.replace(
        load_experiment(PAPER, "tiny", frontends=["mel", "fb", "fb-noavg"]),
        comparisons=(("fb", "fb-noavg"), ("fb-learn-cf", "fb")))  # the second has no runs: left out
    rows = fabricated_rows({"mel": {0: 0.90, 1: 0.91, 2: 0.92},
                            "fb": {0: 0.93, 1: 0.94, 2: 0.92},
                            "fb-noavg": {0: 0.90, 1: 0.92, 2: 0.91}})
    markdown = results_markdown(experiment, rows, [], tmp_path)
    half_width = T_975_DF2 * 0.01 / math.sqrt(3)  # differences 0.03, 0.02, 0.01: mean 0.02, sd 0.01
    assert "Further comparisons of the experiment file (A − B" in markdown
    assert (f"| fb − fb-noavg | AUROC | 3 | +0.0200 | [{0.02 - half_width:+.4f}, {0.02 + half_width:+.4f}] |"
            in markdown)
    assert "| fb − fb-noavg | error | 3 | -2.00 |" in markdown
    assert "fb-learn-cf − fb" not in markdown
    assert "| fb-noavg | AUROC | 3 | +0.0000 |" in markdown  # the baseline table is still there


def test_paper_experiment_compares_averaging_and_learned_variants_with_the_designed_bank():
    experiment = load_experiment(PAPER, "full")
    assert ("fb", "fb-noavg") in experiment.comparisons
    assert {a for a, b in experiment.comparisons if b == "fb"} == {
        "fb-learn-cf", "fb-learn-avg", "fb-learn-bw", "fb-free"}


@pytest.mark.parametrize("comparisons", ['[["fb"]]', '[["fb", "fb"]]', '[["fb", "cqt"]]', '"fb"'])
def test_malformed_comparisons_are_one_line_errors(tmp_path, comparisons):
    path = tmp_path / "experiment.toml"
    path.write_text(f'[experiment]\nfrontends = ["mel", "fb"]\ncomparisons = {comparisons}\n[profile.p]\n')
    with pytest.raises(VocalfrontError, match=r"comparisons must be|unknown or no front-ends \['cqt'\]"):
        load_experiment(path, "p")


def test_results_csv_reads_back_as_the_rows_it_was_written_from(tmp_path):
    rows = fabricated_rows({"mel": {0: 0.9, 1: 0.8}})
    rows[0]["trained_on"] = "NVIDIA H200, torch 2.11.0+cu130"
    path = tmp_path / "results.csv"
    path.write_text(results_csv(rows))
    back = read_results_csv(path)
    assert [(row["frontend"], row["seed"], row["auroc"]) for row in back] == [
        ("mel", 0.0, 0.9), ("mel", 1.0, 0.8)]
    assert back[0]["trained_on"] == "NVIDIA H200, torch 2.11.0+cu130" and back[0]["threshold"] is None


@pytest.mark.parametrize("text", ["", "a,b\n1,2\n", "\x00\xff"])
def test_a_file_that_is_no_results_table_is_a_one_line_error(tmp_path, text):
    path = tmp_path / "results.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(VocalfrontError, match=r"results\.csv: (not a results\.csv|unreadable)"):
        read_results_csv(path)


def test_two_experiments_are_compared_run_by_run_per_front_end_and_pooled():
    cpu = fabricated_rows({"mel": {0: 0.90, 1: 0.91, 2: 0.92}, "fb": {0: 0.93, 1: 0.94, 2: 0.95},
                           "fb-free": {0: 0.5}})
    gpu = fabricated_rows({"mel": {0: 0.91, 1: 0.93, 2: 0.95}, "fb": {0: 0.93, 1: 0.94, 2: 0.95, 3: 0.6}})
    markdown = cross_experiment_markdown(cpu, gpu, "cpu", "gpu")
    half_width = T_975_DF2 * 0.01 / math.sqrt(3)  # mel differences 0.01, 0.02, 0.03: mean 0.02, sd 0.01
    assert f"| mel | AUROC | 3 | +0.0200 | [{0.02 - half_width:+.4f}, {0.02 + half_width:+.4f}] |" in markdown
    assert "| fb | AUROC | 3 | +0.0000 |" in markdown and "| 3 |\n" in markdown  # fb seed 3 unpaired
    assert "| all | AUROC | 6 | +0.0100 |" in markdown  # 0.01, 0.02, 0.03, 0, 0, 0
    (pooled,) = [line for line in markdown.splitlines() if line.startswith("| all | AUROC |")]
    assert pooled.endswith("| - |")  # fb seed 3, in one experiment only, is not pooled
    assert "Per run, |gpu − cpu| in AUROC: mean 0.0100, largest 0.0300 (6 pairs)." in markdown
    assert "fb-free" not in markdown  # only in one experiment
    with pytest.raises(VocalfrontError, match="no front-end in common"):
        cross_experiment_markdown(cpu, fabricated_rows({"fb-learn-cf": {0: 0.9}}), "cpu", "gpu")
