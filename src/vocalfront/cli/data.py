"""``vocalfront data check DIR``: find every problem in a dataset folder, or summarise it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..audio import CACHE_ENV
from ..errors import VocalfrontError
from .options import Number, OutFolder, Rule

DATASET_FORMATS = ("auto", "mir1k", "jamendo", "folder", "ssvd", "gtsinger", "gtsinger_speech")
"""``--format`` choices of ``data check`` and ``evaluate``: detected, or one of
:data:`vocalfront.data.check.READERS` (a test checks). ``data check`` also takes
``instrumental``: a folder of music without voice (never detected)."""
DEFAULT_TOLERANCE = 1.0
"""``--tolerance`` default; :data:`vocalfront.data.labels.DEFAULT_TOLERANCE` owns it (a test
checks). Both are written out so that start-up imports no dataset reader (scipy)."""
MIR1K_SOURCE = "http://mirlab.org/dataset/public/MIR-1K.zip"
"""Where MIR-1K can be downloaded (research use; see README, "Data")."""
OPTIONS: dict[str, Rule] = {"tolerance": Number(0), "cache": OutFolder()}
"""Options checked before any work (:mod:`.options`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="list every problem of a dataset (exit status 1), or summarise it",
        description="Load every clip and label file of a dataset folder. Lists each problem "
        "with file and line and exits with status 1, or prints clips, minutes and vocal "
        f"fraction per split. MIR-1K can be downloaded from {MIR1K_SOURCE}.",
    )
    check.add_argument("directory", type=Path, help="dataset folder")
    check.add_argument("--format", choices=(*DATASET_FORMATS, "instrumental"), default="auto",
                       help="dataset layout (default: detected); instrumental: a folder of music "
                       "without voice, summarised per top-level folder")
    check.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help=f"cache decoded audio here (default: ${CACHE_ENV}, else no cache)")
    check.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, metavar="SECONDS",
                       help="allowed disagreement of label and audio lengths "
                       f"(default: {DEFAULT_TOLERANCE:g})")
    check.set_defaults(_data_run=_check)


def run(args: argparse.Namespace) -> int:
    return args._data_run(args)


def _check(args: argparse.Namespace) -> int:
    if not args.directory.is_dir():
        what = "is a file, not a folder" if args.directory.exists() else "no such folder"
        raise VocalfrontError(f"{args.directory}: {what}; give the dataset folder (MIR-1K: the "
                              f"folder that holds Wavfile/, from {MIR1K_SOURCE})")
    from ..data.check import check_dataset, check_instrumental

    progress = sys.stderr.isatty()
    report = (check_instrumental(args.directory, cache_dir=args.cache, progress=progress)
              if args.format == "instrumental" else
              check_dataset(args.directory, args.format, cache_dir=args.cache,
                            tolerance=args.tolerance, progress=progress))
    print(report.to_text())
    return 0 if report.ok else 1
