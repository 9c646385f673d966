"""Two training runs' validations side by side, over a range of updates (a Markdown table).

Made for equal-budget checks of one setting: copy a run's state at update U (with its
``config.json`` and logs) into a new folder, continue it there with the setting changed (e.g.
``train.bf16=false``; a resume-free key, :data:`vocalfront.training.runfolder.RESUME_FREE_KEYS`)
and the same ``train.updates``, so that both runs see the same data from U on; then

    python scripts/compare_learning_curves.py runs/default runs/fp32-check --first 7750 \\
        --last 8500 --names bf16 float32

Columns: per run the epoch's mean training loss, the pooled validation error (%) at its own
threshold and the AUROC, then the differences (second run minus first). Rows are the updates
both runs validated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vocalfront.errors import VocalfrontError
from vocalfront.training.runfolder import read_validations


def validations_by_update(run: Path, first: int, last: int) -> dict[int, dict[str, Any]]:
    """The run's validation entries with ``first <= update <= last``, by update."""
    if not (run / "config.json").is_file():
        raise VocalfrontError(f"{run}: not a run folder (no config.json)")
    return {entry["update"]: entry for entry in read_validations(run) if first <= entry["update"] <= last}


def comparison_table(runs: list[dict[int, dict[str, Any]]], names: list[str]) -> str:
    """Markdown rows for the updates both runs validated (see the module docstring)."""
    updates = sorted(set(runs[0]) & set(runs[1]))
    if not updates:
        raise VocalfrontError("the runs have no validated update in common in that range")
    a, b = names
    lines = [f"| update | loss {a} | loss {b} | error % {a} | error % {b} | AUROC {a} | AUROC {b} "
             f"| Δ error (points) | Δ AUROC |", "|---" * 9 + "|"]
    for update in updates:
        first, second = (run[update] for run in runs)
        errors = [100 * entry["valid"]["error"] for entry in (first, second)]
        aurocs = [entry["valid"]["auroc"] for entry in (first, second)]
        lines.append(f"| {update} | {first['train_loss']:.4f} | {second['train_loss']:.4f} | "
                     f"{errors[0]:.2f} | {errors[1]:.2f} | {aurocs[0]:.4f} | {aurocs[1]:.4f} | "
                     f"{errors[1] - errors[0]:+.2f} | {aurocs[1] - aurocs[0]:+.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs=2, metavar="RUN", help="two run folders")
    parser.add_argument("--first", type=int, default=0, help="first update to show")
    parser.add_argument("--last", type=int, default=sys.maxsize, help="last update to show")
    parser.add_argument("--names", nargs=2, default=None, metavar="NAME",
                        help="column names of the two runs (default: their folder names)")
    args = parser.parse_args(argv)
    names = args.names or [run.name for run in args.runs]
    try:
        table = comparison_table([validations_by_update(run, args.first, args.last) for run in args.runs],
                                 names)
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
