"""The report's test-split part: run and file tables of the test records, the claims with
their verdicts (:mod:`.compare`), the per-source table and the learning curves.

Columns of a run row (:func:`split_columns`): ``test_<metric>`` pooled over the test set,
``test-<source>_<metric>`` per source, for :data:`TEST_METRICS`. A file row (:func:`file_rows`,
``files.csv``): ``frontend``, ``seed``, then the test record's per-file keys (``file``,
``source``, ``song``, ``frames``, metrics).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..training.runfolder import read_validations
from .compare import ALPHA, BOOTSTRAP, Claim, claim, decide
from .runner import RUNS_FOLDER, Experiment, metric_value
from .stats import summarize

TEST_METRICS = ("error", "final_error", "f_measure", "precision", "recall", "specificity", "auroc")
"""Metrics of the test split's run columns."""
CLAIM_METRICS = ("auroc", "error")
"""Metrics every claim is tested in (the margins of the experiment file apply where given)."""
FILE_COLUMNS = ("frontend", "seed", "file", "source", "song", "frames", *TEST_METRICS)
CURVE_POINTS = (1 / 3, 2 / 3, 1.0)
"""Fractions of the update budget at which the learning-curve table reads validation."""

Row = Mapping[str, Any]


def split_columns(test: Mapping[str, Any] | None) -> dict[str, float]:
    """The run-row columns of a test record (none for ``None``)."""
    if test is None:
        return {}
    columns = {f"test_{metric}": metric_value(test.get(metric)) for metric in TEST_METRICS}
    for source, values in test.get("sources", {}).items():
        columns.update({f"test-{source}_{metric}": metric_value(values.get(metric))
                        for metric in TEST_METRICS})
    return columns


def split_sources(rows: Sequence[Row]) -> list[str]:
    """Sources with test columns in ``rows`` (``test-<source>_auroc``), sorted."""
    return sorted({key[len("test-"):-len("_auroc")] for row in rows for key in row
                   if key.startswith("test-") and key.endswith("_auroc")})


def file_rows(name: str, seed: int, test: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The file rows of one run's test record."""
    return [] if test is None else [{"frontend": name, "seed": seed, **record} for record in test["files"]]


def files_csv(rows: Sequence[Row]) -> str:
    """File rows as CSV text (:data:`FILE_COLUMNS`; undefined values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FILE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(row.get(key)) for key in FILE_COLUMNS})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def claim_pairs(experiment: Experiment, names: Sequence[str]) -> list[tuple[str, str]]:
    """The claims of an experiment among the arms ``names`` that have runs: every arm against
    the baseline, then the file's further comparisons (each pair once)."""
    pairs = [(name, experiment.baseline) for name in names if name != experiment.baseline]
    pairs += [pair for pair in experiment.comparisons if pair not in pairs]
    return [(a, b) for a, b in pairs if a in names and b in names]


def claims(experiment: Experiment, files: Sequence[Row], replicates: int = BOOTSTRAP) -> list[Claim]:
    """Every claim (:func:`claim_pairs`) in each of :data:`CLAIM_METRICS`, decided
    (:func:`.compare.decide`: Holm within each metric)."""
    names = list(dict.fromkeys(row["frontend"] for row in files))
    return decide([claim(files, a, b, metric, experiment.margins.get(metric), replicates)
                   for metric in CLAIM_METRICS for a, b in claim_pairs(experiment, names)])


def claims_section(experiment: Experiment, files: Sequence[Row], replicates: int = BOOTSTRAP) -> str:
    """The claims table with what it shows and what it does not."""
    if not files:
        return ""
    margins = ", ".join(f"{metric} {metric_text(metric, value)}"
                        for metric, value in experiment.margins.items())
    lines = ["## Claims on the test split", "",
             "Each claim is A − B on the song-disjoint test set (never used for any choice), every "
             "run's `model.pt` at its decision settings chosen on validation. Per run and song (a "
             "MIR-1K song, a GTSinger recording group; an SSVD recording or a music excerpt on its "
             "own) the frame-weighted mean of the files' values; paired by seed and song; the "
             f"estimate is the mean over the pairs; the interval and p-values come from {replicates} "
             "replicates of a two-way bootstrap that resamples seeds and songs independently (both a "
             "new training run and new music could change the result). Holm's correction runs over "
             "all claims of one metric, separately for the difference and the equivalence tests, at "
             f"α = {ALPHA}. Equivalence margins, fixed in the experiment file before running: "
             f"{margins or 'none (no equivalence test)'}. AUROC in its units, error in percentage "
             "points.", "",
             "What this shows: whether A differs from B on *these* test singers, recordings and music "
             "across training runs, and whether any difference is smaller than the margin. What it "
             "does not show: that it holds on other music (the test set is small and of few "
             "singers), at other budgets or learning rates, or why; `undecided` means the data "
             "cannot tell, not that the two are equal.", "",
             "| claim | metric | seeds | songs | estimate | 95 % interval | margin | p (difference, "
             "Holm) | p (equivalence, Holm) | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for result in claims(experiment, files, replicates):
        metric = result.metric
        margin = f"±{metric_text(metric, result.margin)}" if math.isfinite(result.margin) else "-"
        low, high = (metric_text(metric, value, True) for value in (result.ci_low, result.ci_high))
        interval = f"[{low}, {high}]"
        lines.append(f"| {result.a} − {result.b} | {metric} | {len(result.seeds)} | {result.songs} | "
                     f"{metric_text(metric, result.estimate, True)} | {interval} | {margin} | "
                     f"{_p(result.holm_difference)} | {_p(result.holm_equivalence)} | {result.verdict} |")
    return "\n".join(lines)


def metric_text(metric: str, value: float, signed: bool = False) -> str:
    """AUROC with 4 decimals, rates in percent (points) with 2; ``n/a`` when undefined."""
    if not math.isfinite(value):
        return "n/a"
    sign = "+" if signed else ""
    return f"{value:{sign}.4f}" if metric == "auroc" else f"{100 * value:{sign}.2f}"


def _p(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def sources_section(rows: Sequence[Row]) -> str:
    """Mean ± sd over seeds of the test AUROC and final error per arm and source."""
    sources = split_sources(rows)
    if not sources:
        return ""
    names = list(dict.fromkeys(row["frontend"] for row in rows))
    lines = ["## Test split per source", "",
             "Mean ± sd over seeds; AUROC / error of the final decisions (%, after the shortest "
             "segment and gap) per source (`instrumental`: music alone, where every detection is a "
             "false alarm and AUROC is undefined).", "",
             "| arm | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for name in names:
        own = [row for row in rows if row["frontend"] == name]
        cells = [f"{_mean_sd(own, f'test-{source}_auroc', 1, 4)} / "
                 f"{_mean_sd(own, f'test-{source}_final_error', 100, 1)}" for source in sources]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_sd(rows: Sequence[Row], key: str, scale: float, digits: int) -> str:
    summary = summarize([row.get(key) for row in rows])
    if summary.n == 0:
        return "n/a"
    sd = f" ± {scale * summary.sd:.{digits}f}" if math.isfinite(summary.sd) else ""
    return f"{scale * summary.mean:.{digits}f}{sd}"


def curves_section(out_dir: Path, rows: Sequence[Row]) -> str:
    """Validation AUROC and error (mean ± sd over seeds) at :data:`CURVE_POINTS` of the budget:
    has validation levelled off by the end?"""
    curves = {}
    for row in rows:
        entries = read_validations(out_dir / RUNS_FOLDER / Experiment.run_name(row["frontend"], row["seed"]))
        if entries:
            curves.setdefault(row["frontend"], []).append(entries)
    if not curves:
        return ""
    lines = ["## Learning curves", "",
             "Validation AUROC / error (%) of each run's validation nearest to each share of its "
             "budget, mean ± sd over seeds. Validation has levelled off when the last two columns "
             "agree within the spread over seeds.", "",
             "| arm | " + " | ".join(f"{point:.0%} of the budget" for point in CURVE_POINTS) + " |",
             "|---|" + "---|" * len(CURVE_POINTS)]
    for name, runs in curves.items():
        cells = []
        for point in CURVE_POINTS:
            chosen = [_nearest(entries, point) for entries in runs]
            updates = sorted({entry["update"] for entry in chosen})
            values = [{"auroc": metric_value(e["valid"]["auroc"]), "error": metric_value(e["valid"]["error"])}
                      for e in chosen]
            cells.append(f"{_mean_sd(values, 'auroc', 1, 4)} / {_mean_sd(values, 'error', 100, 1)} "
                         f"(update {'/'.join(map(str, updates))})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _nearest(entries: Sequence[Mapping[str, Any]], point: float) -> Mapping[str, Any]:
    """The validation entry whose update is nearest to ``point`` of the last one's."""
    target = point * entries[-1]["update"]
    return min(entries, key=lambda entry: abs(entry["update"] - target))
