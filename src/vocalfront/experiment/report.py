"""The report of a front-end comparison: ``results.csv``, ``results.md`` and ``figures/*.png``.

Everything is derived from the finished runs in ``DIR/runs`` (those with an ``evaluation.json``),
so the report can be rebuilt at any time, also from an unfinished experiment; all files are
written atomically. ``results.csv`` has one row per run (:data:`RUN_COLUMNS`, then
``<test>_<metric>`` for each extra test set); ``results.md`` has per-front-end mean ± sd, paired
differences to the baseline and for the experiment file's further ``comparisons``, with 95 % t
intervals and p-values (:mod:`.stats`), how far the learnable front-ends moved, the settings, the
command, where the runs trained (:func:`trained_on`), the versions and machine of the report, and time.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import __version__
from ..errors import VocalfrontError
from ..fileio import write_text_atomic
from ..frontends import FilterBank, build_frontend, inspection
from ..plotting import save_figure
from ..scoring import METRICS
from ..training import Config
from ..training.runfolder import (
    load_run_detector,
    read_evaluation,
    read_metrics,
    read_run_config,
    read_sittings,
)
from .controls import unperturbed
from .runner import EVALUATED_MODEL, RUNS_FOLDER, Experiment, RunOutcome, metric_value
from .stats import (
    WILCOXON_MIN_PAIRS,
    PairedDifference,
    paired_difference,
    summarize,
    summarize_by_frontend,
    t_interval,
    values_by_seed,
)
from .testreport import claims_section, curves_section, file_rows, files_csv, sources_section, split_columns
from .testreport import metric_text as _value

MOVEMENT = ("centre", "bandwidth", "averaging", "free_correction")
"""Quantities of :func:`vocalfront.frontends.inspection.movement_summary`."""
RUN_COLUMNS = ("frontend", "seed", "version", "trained_on", "updates", "train_time_s", *METRICS, "threshold",
               *(f"moved_{name}_{stat}" for name in MOVEMENT for stat in ("median", "max")))
COMPARED = (("auroc", "AUROC"), ("error", "error %"), ("f_measure", "F-measure %"))
"""Metrics of the summary and paired tables, main one first."""
FIGURES = "figures"


def collect_rows(experiment: Experiment, out_dir: str | Path) -> list[dict[str, Any]]:
    """One flat row per finished run in ``out_dir/runs``: :data:`RUN_COLUMNS` plus
    ``<test>_<metric>`` per extra test set; ordered by the experiment's front-ends, then seed."""
    rows = []
    runs = Path(out_dir) / RUNS_FOLDER
    for run_dir in sorted(path for path in runs.iterdir() if path.is_dir()) if runs.is_dir() else []:
        evaluation = read_evaluation(run_dir)
        if evaluation is None:
            continue
        row = {"frontend": evaluation["frontend"], "seed": int(evaluation["seed"]),
               "version": evaluation.get("version", "unrecorded"), "trained_on": trained_on(run_dir),
               "updates": evaluation["updates"],
               "train_time_s": evaluation["train_time_s"],
               "threshold": evaluation["valid"]["threshold"]}
        row.update({metric: metric_value(evaluation["valid"][metric]) for metric in METRICS})
        row.update({f"moved_{key}": value for key, value in evaluation["moved"].items()})
        row.update(split_columns(evaluation.get("test")))
        for name, result in evaluation["extra"].items():
            row.update({f"{name}_{metric}": metric_value(result["pooled"][metric]) for metric in METRICS})
        rows.append(row)
    order = {name: index for index, name in enumerate(experiment.frontends)}
    rows.sort(key=lambda row: (order.get(row["frontend"], len(order)), row["frontend"], row["seed"]))
    return rows


def collect_file_rows(experiment: Experiment, out_dir: str | Path) -> list[dict[str, Any]]:
    """Per finished run with a test record, one row per test file (:func:`.testreport.file_rows`),
    in the order of :func:`collect_rows`."""
    runs = Path(out_dir) / RUNS_FOLDER
    rows = []
    for row in collect_rows(experiment, out_dir):
        evaluation = read_evaluation(runs / experiment.run_name(row["frontend"], row["seed"]))
        rows += file_rows(row["frontend"], row["seed"], evaluation and evaluation.get("test"))
    return rows


def trained_on(run_dir: Path) -> str:
    """Where a run trained: ``device_name, torch VERSION`` of each sitting (the ``start`` entries
    of ``metrics.jsonl``), joined by `` + `` where sittings differ; for a run that recorded none,
    its configuration's ``train.device`` followed by ``, device unrecorded``."""
    sittings = read_sittings(run_dir)
    if sittings:
        names = (f"{entry['device_name']}, torch {entry['torch']}" for entry in sittings)
        return " + ".join(dict.fromkeys(names))
    try:
        device = read_run_config(run_dir).train.device
    except VocalfrontError:
        device = "unknown device"
    return f"{device}, device unrecorded"


def extra_test_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the extra test sets found in ``rows`` (columns ``<name>_auroc``)."""
    return sorted({key[: -len("_auroc")] for row in rows for key in row
                   if key.endswith("_auroc") and key != "auroc" and not key.startswith(("test_", "test-"))})


def write_report(experiment: Experiment, out_dir: str | Path, command: str = "",
                 wall_seconds: float | None = None, outcomes: Sequence[RunOutcome] = ()) -> list[Path]:
    """Write ``results.csv``, ``results.md``, ``files.csv`` (one row per run and test file, what
    the claims are computed from) and the figures of the finished runs; their paths.

    ``command``, ``wall_seconds`` (this sitting) and ``outcomes`` (failures are listed) go into
    ``results.md``.
    """
    out_dir = Path(out_dir)
    rows = collect_rows(experiment, out_dir)
    if not rows:
        raise VocalfrontError(f"{out_dir}: no finished run to report")
    files = collect_file_rows(experiment, out_dir)
    figures = write_figures(experiment, out_dir, rows)
    write_text_atomic(out_dir / "results.csv", results_csv(rows))
    write_text_atomic(out_dir / "files.csv", files_csv(files))
    markdown = results_markdown(experiment, rows, figures, out_dir, command, wall_seconds, outcomes, files)
    write_text_atomic(out_dir / "results.md", markdown)
    return [out_dir / "results.csv", out_dir / "results.md", out_dir / "files.csv", *figures]


def results_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The run table as CSV text (undefined values empty)."""
    extras = [f"{name}_{metric}" for name in extra_test_names(rows) for metric in METRICS]
    tests = [key for key in dict.fromkeys(key for row in rows for key in row)
             if key.startswith(("test_", "test-"))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, [*RUN_COLUMNS, *tests, *extras], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(row.get(key)) for key in writer.fieldnames})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value


def read_results_csv(path: str | Path) -> list[dict[str, Any]]:
    """The run rows of a ``results.csv`` (:func:`results_csv`): numeric cells as floats, empty ones
    ``None``, the rest (front-end, version, where it trained) as text."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise VocalfrontError(f"{path}: unreadable results table ({error})") from None
    if not rows or not {"frontend", "seed"} <= set(rows[0]):
        raise VocalfrontError(f"{path}: not a results.csv of vocalfront experiment (no run rows)")
    return [{key: _csv_value(value) if key not in ("frontend", "version", "trained_on") else value
             for key, value in row.items()} for row in rows]


def _csv_value(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def cross_experiment_markdown(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
                              name_a: str, name_b: str) -> str:
    """The same runs in two experiments (e.g. trained on a CPU and on a GPU): per front-end both
    have, and pooled over every (front-end, seed) both have (``all``), the paired difference
    ``name_b − name_a`` by seed."""
    common = [name for name in dict.fromkeys(row["frontend"] for row in rows_a)
              if any(row["frontend"] == name for row in rows_b)]
    if not common:
        raise VocalfrontError(f"{name_a} and {name_b} have no front-end in common")
    runs = [{(row["frontend"], int(row["seed"])) for row in side} for side in (rows_a, rows_b)]
    both = runs[0] & runs[1]
    rows = []
    for name, side in ((name_a, rows_a), (name_b, rows_b)):
        for row in (row for row in side if row["frontend"] in common):
            rows.append({**row, "frontend": f"{row['frontend']} {name}"})
            if (row["frontend"], int(row["seed"])) in both:  # pooled: one seed number per pair
                pooled_seed = int(row["seed"]) * len(common) + common.index(row["frontend"])
                rows.append({**row, "frontend": f"all {name}", "seed": pooled_seed})
    pairs = [(frontend, f"{frontend} {name_b}", f"{frontend} {name_a}") for frontend in [*common, "all"]]
    sizes = np.abs(paired_difference(rows, f"all {name_b}", f"all {name_a}", "auroc").differences)
    spread = (f"Per run, |{name_b} − {name_a}| in AUROC: mean {sizes.mean():.4f}, largest "
              f"{sizes.max():.4f} ({sizes.size} pairs).") if sizes.size else ""
    return "\n".join([
        f"# {name_b} − {name_a}: the same front-ends and seeds in two experiments", "",
        f"Paired by front-end and seed (`all`: every such pair), {name_b} − {name_a}, 95 % t interval, "
        "two-sided p-values. Error and F-measure in percentage points.", "",
        _paired_table(rows, pairs, "", "front-end"), "", spread, ""])


# --------------------------------------------------------------------------------- markdown
def results_markdown(experiment: Experiment, rows: Sequence[Mapping[str, Any]], figures: Sequence[Path],
                     out_dir: Path, command: str = "", wall_seconds: float | None = None,
                     outcomes: Sequence[RunOutcome] = (), files: Sequence[Mapping[str, Any]] = ()) -> str:
    """The text of ``results.md``; ``files``: the test split's file rows (:func:`collect_file_rows`)."""
    parts = [_header(experiment, rows, command, wall_seconds), claims_section(experiment, files)]
    if any("test_auroc" in row for row in rows):
        parts += [_evaluation_section(experiment, rows, "test_", "Test split, pooled (seed-level view)"),
                  sources_section(rows)]
    parts += [_evaluation_section(experiment, rows, "", "Validation clips (threshold chosen on them)"),
              curves_section(out_dir, rows)]
    for name in extra_test_names(rows):
        parts.append(_evaluation_section(experiment, rows, f"{name}_",
                                         f"Extra test set `{name}` (validation threshold)"))
    parts += [_movement_section(rows), _figures_section(figures, out_dir),
              _runs_section(experiment, rows, outcomes)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _header(experiment: Experiment, rows: Sequence[Mapping[str, Any]], command: str,
            wall_seconds: float | None) -> str:
    config = experiment.training_config(experiment.frontends[0], 0)
    compute = sum(metric_value(row["train_time_s"]) for row in rows)
    sitting = f"; this sitting's runs took {_duration(wall_seconds)} (wall time)" if wall_seconds else ""
    return "\n".join([
        f"# Front-end comparison: profile `{experiment.profile}`", "",
        f"- Command: `{command or 'n/a'}`",
        f"- Experiment file: `{experiment.source}`; front-ends {', '.join(experiment.frontends)}; "
        f"seeds {', '.join(map(str, experiment.seeds))}; baseline `{experiment.baseline}`",
        f"- Training (every run): {_training_text(config)}",
        "- Evaluation: the test split (song-disjoint, never used for any choice; the claims and "
        "test tables) scores each run's `model.pt`, the checkpoint chosen on validation, at the "
        "decision settings chosen on validation. The validation tables score the detector after "
        f"the whole budget (`last.pt`), median filter {config.eval.median_filter} frames, with "
        "the threshold maximising accuracy on those same clips: there error, precision, recall, "
        "F-measure and specificity are **optimistic**; they show the training, not a result.",
        f"- Trained on: {_counted(row['trained_on'] for row in rows)}; evaluated with vocalfront "
        f"{_counted(row['version'] for row in rows)}",
        f"- This report: vocalfront {__version__}, torch {torch.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, Python {platform.python_version()}; {platform.machine()}, "
        f"{os.cpu_count()} cores, {platform.platform()}",
        f"- Time: {_duration(compute)} of training and validation in the {len(rows)} finished runs"
        f"{sitting}"])


def _counted(values: Iterable[str]) -> str:
    """``0.2.0 (6 runs), unrecorded (1 run)``: the distinct values of the runs, counted."""
    counts = Counter(values)
    return ", ".join(f"{value} ({count} run{'s' * (count != 1)})" for value, count in counts.items())


def _training_text(config: Config) -> str:
    """One sentence of the settings every run shares."""
    train, data, model = config.train, config.data, config.model
    unit = "segments" if train.mode == "dense" else "excerpts"
    frames = f", {train.dense_frames} labelled frames per segment" if train.mode == "dense" else ""
    remix = (f"remix {data.remix.own}/{data.remix.external}/{data.remix.voice}/"
             f"{data.remix.accompaniment} (own/external/voice/accompaniment)"
             if data.remix_enabled else "no remixing")
    return (f"{train.updates} updates of {train.batch_size} {unit} ({train.mode} mode{frames}), Adam lr "
            f"{train.lr:g}, learnable front-end parameters at lr × {train.frontend_lr_multiplier:g}; "
            f"{remix}; augmentation {'on' if data.augment_enabled else 'off'}; CNN context "
            f"{model.context} frames, batch norm {'on' if model.batch_norm else 'off'}; compression "
            f"`{model.compression}`")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _p(value: float | None) -> str:
    if value is None:
        return f"n < {WILCOXON_MIN_PAIRS}"
    return "n/a" if not math.isfinite(value) else f"{value:.3g}"


def _evaluation_section(experiment: Experiment, rows: Sequence[Mapping[str, Any]], prefix: str,
                        title: str) -> str:
    """Mean ± sd per front-end and paired differences to the baseline for one evaluation set."""
    summaries = {metric: summarize_by_frontend(rows, prefix + metric) for metric, _ in COMPARED}
    names = list(summaries["auroc"])
    header = "| front-end | runs | " + " | ".join(label for _, label in COMPARED) + " |"
    lines = [f"## {title}", "", "Mean ± sd over seeds.", "", header, "|---" * (len(COMPARED) + 2) + "|"]
    for name in names:
        cells = [f"{_value(m, s[name].mean)} ± {_value(m, s[name].sd)}" for m, s in summaries.items()]
        lines.append(f"| {name} | {summaries['auroc'][name].n} | " + " | ".join(cells) + " |")
    baseline = experiment.baseline
    if baseline in names:
        pairs = [(name, name, baseline) for name in names if name != baseline]
        lines += ["", f"Paired differences to `{baseline}` (front-end − {baseline}, {_PAIRED_NOTE}", "",
                  _paired_table(rows, pairs, prefix, "front-end")]
    else:
        lines += ["", f"No runs of the baseline `{baseline}`: no paired differences."]
    compared = [(f"{a} − {b}", a, b) for a, b in experiment.comparisons if a in names and b in names]
    if compared:
        lines += ["", f"Further comparisons of the experiment file (A − B, {_PAIRED_NOTE}", "",
                  _paired_table(rows, compared, prefix, "comparison")]
    return "\n".join(lines)


_PAIRED_NOTE = ("paired by seed; only seeds with both runs count, the others are listed), 95 % t "
                "interval, two-sided p-values of the paired t-test and (from "
                f"{WILCOXON_MIN_PAIRS} pairs) the Wilcoxon signed-rank test. Error and F-measure in "
                "percentage points.")


def _paired_table(rows: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[str, str, str]], prefix: str,
                  column: str) -> str:
    """One row per ``(label, a, b)`` of ``pairs`` and compared metric: the paired difference a − b."""
    lines = [f"| {column} | metric | pairs | mean Δ | 95 % interval | p (t) | p (Wilcoxon) "
             "| unpaired seeds |", "|---|---|---|---|---|---|---|---|"]
    for label, a, b in pairs:
        for metric, metric_label in COMPARED:
            result = paired_difference(rows, a, b, prefix + metric)
            lines.append(_paired_row(label, metric, metric_label, result))
    return "\n".join(lines)


def _paired_row(name: str, metric: str, label: str, result: PairedDifference) -> str:
    interval = f"[{_value(metric, result.ci_low, True)}, {_value(metric, result.ci_high, True)}]"
    unpaired = ", ".join(map(str, result.unpaired)) or "-"
    return (f"| {name} | {label.removesuffix(' %')} | {result.n} | {_value(metric, result.mean, True)} | "
            f"{interval} | {_p(result.t_p)} | {_p(result.wilcoxon_p)} | {unpaired} |")


def _movement_section(rows: Sequence[Mapping[str, Any]]) -> str:
    """Median (mean over seeds) and maximum (over seeds) of each learnable variant's movement."""
    learnable = list(dict.fromkeys(row["frontend"] for row in rows if _learnable(row)))
    if not learnable:
        return ""
    lines = ["## How far the learnable front-ends (and the random controls) moved", "",
             "A random control's bank is measured against the designed one. "
             "Per run the median and maximum over bands, then the mean of the medians and the "
             "maximum of the maxima over seeds. Centre frequency and bandwidth: absolute change in "
             "units of the local band spacing; averaging length: relative change |L − L₀| / L₀; "
             "free filters: largest |δ| of the correction ĥ (1 + δ).", "",
             "| front-end | runs | " + " | ".join(f"{q} median / max" for q in MOVEMENT) + " |",
             "|---|---|" + "---|" * len(MOVEMENT)]
    for name in learnable:
        own = [row for row in rows if row["frontend"] == name]
        cells = [_movement_cell(own, quantity) for quantity in MOVEMENT]
        lines.append(f"| {name} | {len(own)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _learnable(row: Mapping[str, Any]) -> bool:
    """Whether a run's front-end had learnable filter-bank parameters (it reports movement)."""
    return any(key.startswith("moved_") for key in row)


def _movement_cell(rows: Sequence[Mapping[str, Any]], quantity: str) -> str:
    medians = summarize([row.get(f"moved_{quantity}_median") for row in rows])
    maxima = [metric_value(row.get(f"moved_{quantity}_max")) for row in rows]
    if medians.n == 0:
        return "-"
    return f"{medians.mean:.3g} / {np.nanmax(maxima):.3g}"


def _figures_section(figures: Sequence[Path], out_dir: Path) -> str:
    if not figures:
        return ""
    links = [f"![{path.stem}]({path.relative_to(out_dir).as_posix()})" for path in figures]
    return "\n\n".join(["## Figures", *links])


def _runs_section(experiment: Experiment, rows: Sequence[Mapping[str, Any]],
                  outcomes: Sequence[RunOutcome]) -> str:
    done = {(row["frontend"], row["seed"]) for row in rows}
    missing = [experiment.run_name(*run) for run in experiment.runs() if run not in done]
    failed = [f"- `{experiment.run_name(o.frontend, o.seed)}`: {o.message}" for o in outcomes
              if o.status == "failed"]
    lines = ["## Runs", "", f"{len(rows)} finished runs, one row each in `results.csv`; run folders "
             f"in `{RUNS_FOLDER}/`."]
    if missing:
        lines.append(f"Not finished yet: {', '.join(missing)} (the experiment command, without "
                     "--report-only, continues them).")
    if failed:
        lines += ["", "Failed in this sitting:", *failed]
    return "\n".join(lines)


# --------------------------------------------------------------------------------- figures
def write_figures(experiment: Experiment, out_dir: Path, rows: Sequence[Mapping[str, Any]]) -> list[Path]:
    """Write the figures into ``out_dir/figures``; their paths."""
    folder = out_dir / FIGURES
    paths = [folder / "metrics.png", folder / "curves.png"]
    plot_metrics(paths[0], rows, experiment.baseline)
    plot_curves(paths[1], out_dir, rows)
    filterbanks = _learned_filterbanks(out_dir, rows)
    for frontend, (initial, learned, seed) in filterbanks.items():
        path = folder / f"filters-{frontend}.png"
        inspection.plot_filterbank(path, initial, learned, f"{frontend}, seed {seed}: designed vs learned")
        paths.append(path)
    averaging = folder / "averaging.png"
    if plot_averaging(averaging, out_dir, rows):
        paths.append(averaging)
    return paths


def _colours(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    names = list(dict.fromkeys(row["frontend"] for row in rows))
    return {name: f"C{index % 10}" for index, name in enumerate(names)}


METRIC_RANGE = {"auroc": (0.0, 1.0), "error": (0.0, 100.0)}
"""Values a plotted metric can take (error in %): intervals and axes are kept inside."""


def plot_metrics(path: Path, rows: Sequence[Mapping[str, Any]], baseline: str) -> None:
    """Write :func:`metrics_figure` to ``path``."""
    save_figure(metrics_figure(rows, baseline), path)


def metrics_figure(rows: Sequence[Mapping[str, Any]], baseline: str) -> Figure:
    """AUROC and error (%) per front-end: each seed as a dot, the mean with its 95 % t interval
    (cut to the values the metric can take: with few seeds the t interval reaches beyond them)."""
    names = list(dict.fromkeys(row["frontend"] for row in rows))
    figure = Figure(figsize=(max(6.0, 1.1 * len(names) + 2), 6.5), layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    for ax, (metric, label) in zip(axes, COMPARED[:2], strict=True):
        scale = 1.0 if metric == "auroc" else 100.0
        for x, name in enumerate(names):
            values = [scale * v for v in values_by_seed(rows, name, metric).values()]
            bottom, top = METRIC_RANGE[metric]
            low, high = t_interval(values)
            low, high = max(low, bottom), min(high, top)
            mean = summarize(values).mean
            colour = "tab:red" if name == baseline else "tab:blue"
            ax.plot(np.full(len(values), x + 0.15), values, "o", color="0.5", markersize=3)
            if math.isfinite(low):
                ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt="s", color=colour, capsize=4)
            else:
                ax.plot(x, mean, "s", color=colour)
        ax.set(ylabel=label)
        bottom, top = ax.get_ylim()
        ax.set_ylim(max(bottom, METRIC_RANGE[metric][0]), min(top, METRIC_RANGE[metric][1]))
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_title(f"validation clips: per seed (grey), mean with 95 % t interval "
                      f"(red: the baseline, {baseline})")
    axes[-1].set_xticks(range(len(names)), names, rotation=30, ha="right")
    return figure


def plot_curves(path: Path, out_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Training loss (running mean over about 2 % of the updates) and validation error (%)
    against the update, one line per run, one colour per front-end."""
    colours = _colours(rows)
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    loss_ax, error_ax = figure.subplots(1, 2, sharex=True)
    labelled: set[str] = set()
    for row in rows:
        name = row["frontend"]
        entries = read_metrics(out_dir / RUNS_FOLDER / Experiment.run_name(name, row["seed"]))
        updates = [(e["update"], e["loss"]) for e in entries if e.get("event") == "update"]
        valid = [(e["update"], 100 * metric_value(e["valid"]["error"])) for e in entries
                 if e.get("event") == "validation"]
        label = None if name in labelled else name
        labelled.add(name)
        if updates:
            steps, losses = np.array(updates, dtype=np.float64).T
            loss_ax.plot(steps, running_mean(losses, max(1, len(losses) // 50)), color=colours[name],
                         linewidth=0.8, label=label)
        if valid:
            error_ax.plot(*np.array(valid).T, "o-", color=colours[name], markersize=3, linewidth=0.8)
    loss_ax.set(xlabel="update", ylabel="training loss (running mean)")
    error_ax.set(xlabel="update", ylabel="validation error (%)")
    loss_ax.legend(fontsize="small")
    for ax in (loss_ax, error_ax):
        ax.grid(True, alpha=0.3)
    save_figure(figure, path)


def running_mean(values: np.ndarray, width: int) -> np.ndarray:
    """Mean of the last ``width`` values at each position (fewer at the start)."""
    sums = np.cumsum(np.concatenate(([0.0], values)))
    counts = np.minimum(np.arange(1, len(values) + 1), width)
    return (sums[1:] - sums[np.arange(1, len(values) + 1) - counts]) / counts


def _run_frontends(out_dir: Path, frontend: str, seed: int) -> tuple[FilterBank, FilterBank] | None:
    """``(designed, learned)`` front-ends of a run (for a random control: the unmoved bank and its
    moved one), ``None`` if it is not a filter bank."""
    run_dir = out_dir / RUNS_FOLDER / Experiment.run_name(frontend, seed)
    config = read_run_config(run_dir)
    learned = load_run_detector(run_dir, EVALUATED_MODEL)[0].frontend
    if not isinstance(learned, FilterBank):
        return None
    return build_frontend(config.model.frontend, **unperturbed(config.model.frontend_options)), learned


def _learned_filterbanks(out_dir: Path, rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[FilterBank,
                                                                                            FilterBank, int]]:
    """Per learnable filter-bank front-end, ``(designed, learned, seed)`` of its lowest seed."""
    chosen: dict[str, tuple[FilterBank, FilterBank, int]] = {}
    for row in rows:
        name = row["frontend"]
        if name in chosen or not _learnable(row):
            continue
        pair = _run_frontends(out_dir, name, row["seed"])
        if pair is not None and pair[1].learn:
            chosen[name] = (*pair, row["seed"])
    return chosen


def plot_averaging(path: Path, out_dir: Path, rows: Sequence[Mapping[str, Any]]) -> bool:
    """Averaging length per band (ms) against the band centre (Hz): as designed, and as learned by
    every run that learns it. ``False`` (nothing written) without a time-averaging filter bank."""
    designed: dict[str, list[float]] | None = None
    learned: list[tuple[str, int, dict[str, list[float]]]] = []
    for row in rows:
        if not any(key.startswith("moved_averaging") for key in row):
            continue
        pair = _run_frontends(out_dir, row["frontend"], row["seed"])
        if pair is None:
            continue
        designed = designed or inspection.frontend_parameters(pair[0])
        if "avg" in pair[1].learn:
            learned.append((row["frontend"], row["seed"], inspection.frontend_parameters(pair[1])))
    if designed is None:
        return False
    key = next(k for k in inspection.AVERAGING_KEYS.values() if k in designed)
    figure = Figure(figsize=(9, 4.5), layout="constrained")
    ax = figure.add_subplot()
    ax.plot(designed["centre_hz"], designed[key], "o-", color="0.4", markersize=3, label="designed")
    for name, seed, params in learned:
        ax.plot(params["centre_hz"], params[key], ".-", linewidth=0.8, label=f"{name}, seed {seed}")
    _finish_averaging_axes(ax, key)
    save_figure(figure, path)
    return True


def _finish_averaging_axes(ax: Axes, key: str) -> None:
    what = "length" if key == "averaging_length_ms" else "standard deviation"
    ax.set(xscale="log", xlabel="band centre (Hz)", ylabel=f"averaging {what} (ms)",
           title="time-averaging per band")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
