"""Learning curves of one training run: loss, and validation error and AUROC per source.

    python scripts/plot_training_curves.py runs/default docs/figures/default-training.png

Reads the run's ``metrics.jsonl`` (``update`` and ``validation`` events, see
:mod:`vocalfront.training.runfolder`); the per-source validation metrics are those of
:func:`vocalfront.training.validation.validate`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vocalfront.errors import VocalfrontError
from vocalfront.experiment.report import running_mean
from vocalfront.plotting import save_figure
from vocalfront.training.runfolder import read_metrics


def plot(run_dir: Path, out: Path) -> None:
    if not run_dir.is_dir():
        raise VocalfrontError(f"{run_dir}: no such run folder")
    entries = read_metrics(run_dir)
    updates = np.array([(e["update"], e["loss"], e["lr"]) for e in entries if e.get("event") == "update"])
    validations = [e for e in entries if e.get("event") == "validation"]
    if not len(updates) or not validations:
        raise VocalfrontError(f"{run_dir}: no updates or validations in metrics.jsonl")
    figure = Figure(figsize=(14, 4.2), layout="constrained")
    loss_ax, error_ax, auroc_ax = figure.subplots(1, 3, sharex=True)
    loss_ax.plot(updates[:, 0], running_mean(updates[:, 1], max(1, len(updates) // 50)), linewidth=0.8)
    loss_ax.set(xlabel="update", ylabel="training loss (running mean)")
    rate_ax = loss_ax.twinx()
    rate_ax.plot(updates[:, 0], updates[:, 2], color="grey", linewidth=0.6, linestyle="--")
    rate_ax.set_ylabel("learning rate (dashed)")
    steps = [e["update"] for e in validations]
    sources = ["all", *sorted({s for e in validations for s in e["valid"].get("sources", {})})]
    for index, source in enumerate(sources):
        rows = [e["valid"] if source == "all" else e["valid"]["sources"].get(source, {}) for e in validations]
        style = {"linewidth": 2.0 if source == "all" else 0.9, "marker": "o", "markersize": 3,
                 "color": f"C{index}"}
        error_ax.plot(steps, [100 * r.get("error", np.nan) for r in rows], label=source, **style)
        aurocs = [r.get("auroc") for r in rows]
        if any(value is not None for value in aurocs):
            auroc_ax.plot(steps, [np.nan if v is None else v for v in aurocs], label=source, **style)
    error_ax.set(xlabel="update", ylabel="validation frame error (%)")
    auroc_ax.set(xlabel="update", ylabel="validation AUROC", ylim=(0.5, 1.0))
    error_ax.legend(fontsize="small")
    for ax in (loss_ax, error_ax, auroc_ax):
        ax.grid(True, alpha=0.3)
    save_figure(figure, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out", type=Path, help="PNG file to write")
    args = parser.parse_args(argv)
    try:
        plot(args.run_dir, args.out)
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
