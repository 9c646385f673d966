#!/usr/bin/env python3
"""Compare the same runs (front-end, seed) of two experiments, e.g. trained on a CPU and a GPU:

    python scripts/compare_experiments.py docs/results/full-cpu/results.csv \\
        docs/results/full/results.csv --names cpu,gpu

prints (or writes with --out) a markdown table of the paired differences B − A per front-end the
two have in common and pooled over them (:func:`vocalfront.experiment.report.cross_experiment_markdown`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vocalfront.errors import VocalfrontError
from vocalfront.experiment.report import cross_experiment_markdown, read_results_csv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="results.csv of experiment A")
    parser.add_argument("b", type=Path, help="results.csv of experiment B")
    parser.add_argument("--names", default="A,B", help="labels of A and B (default A,B)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here")
    args = parser.parse_args()
    names = args.names.split(",")
    if len(names) != 2 or not all(names):
        print(f"--names: two labels separated by a comma, got {args.names!r}", file=sys.stderr)
        return 2
    try:
        text = cross_experiment_markdown(read_results_csv(args.a), read_results_csv(args.b), *names)
    except VocalfrontError as error:
        print(f"compare_experiments: {error}", file=sys.stderr)
        return 1
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
