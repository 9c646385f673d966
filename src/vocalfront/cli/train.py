"""``vocalfront train --config FILE --out DIR [section.key=value ...]``: train a detector.

Under ``torchrun`` every process runs this command (see ``docs/distributed.md``); only process
0 prints the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import Number, OutFolder, Rule

DATA_ENV = "VOCALFRONT_DATA"
"""Named in the help text; :data:`vocalfront.training.config.DATA_ENV` owns it (a test checks)."""
OPTIONS: dict[str, Rule] = {"threads": Number(1, None, whole=True), "out": OutFolder()}
"""Options checked before any work (:mod:`.options`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="TOML configuration, e.g. configs/default.toml (default: built-in defaults)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="run folder: config, metrics, checkpoints, model.pt")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE",
                        help=f"configuration overrides, e.g. train.updates=2000 model.frontend=fb "
                        f"data.root=DIR (default data.root: ${DATA_ENV})")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                        help="continue the run in --out (default: if it holds one with the same "
                        "configuration; a different one is an error); --no-resume starts over, "
                        "deleting that run's files")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (sets train.num_threads; the same N is needed for "
                        "bitwise repeatable runs)")
    parser.add_argument("--device", default=None, metavar="DEVICE",
                        help="cpu, cuda or cuda:N (sets train.device; under torchrun, cuda means "
                        "GPU LOCAL_RANK for each process)")


def run(args: argparse.Namespace) -> int:
    from ..training import load_config, resolve_config, train
    from ..training.distributed import environment

    overrides = list(args.overrides)
    if args.threads is not None:
        overrides.append(f"train.num_threads={args.threads}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    config = resolve_config(load_config(args.config, overrides))
    result = train(config, args.out, resume=args.resume, progress=sys.stderr.isatty())
    if not environment().is_main:
        return 0
    if result.skipped:
        print(f"skipped {len(result.skipped)} bad clip(s), first: {result.skipped[0]}")
    print(f"{result.model_path}: best validation error {100 * result.best_error:.2f} % "
          f"after {result.best_update} of {result.updates} updates")
    return 0
