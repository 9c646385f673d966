"""``vocalfront experiment --config experiments/paper.toml --data DIR --out DIR``: the front-end
comparison of the paper as one resumable command.

Trains and evaluates every front-end of the experiment file over several seeds with the same
network, data, augmentation and update budget (:mod:`vocalfront.experiment.runner`), then writes
``results.csv``, ``results.md`` and ``figures/`` into ``--out``
(:mod:`vocalfront.experiment.report`). Rerunning the command skips finished runs and resumes
interrupted ones, so a long comparison can be completed over several sittings.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .options import Number, OutFolder, Rule

if TYPE_CHECKING:
    from ..experiment import Experiment

PROFILES = ("ci", "tiny", "quick", "full", "paper")
"""Profiles of ``experiments/paper.toml``, named in the help text;
:data:`vocalfront.experiment.runner.PROFILES` owns them (a test checks)."""
OPTIONS: dict[str, Rule] = {"threads": Number(1, None, whole=True), "workers": Number(1, None, whole=True),
                            "out": OutFolder(), "cache": OutFolder()}
"""Options checked before any work (:mod:`.options`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="experiment file, e.g. experiments/paper.toml")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="dataset folder (sets data.root; default: the file's, else $VOCALFRONT_DATA)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="experiment folder: runs/, results.csv, results.md, figures/")
    parser.add_argument("--profile", default=None, metavar="NAME",
                        help=f"budget profile of the file ({'|'.join(PROFILES)} in paper.toml; default: "
                        "its default_profile)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="seeds 0..N-1 per front-end (default: the profile's)")
    parser.add_argument("--frontends", default=None, metavar="A,B,...",
                        help="subset of the experiment file's front-ends, e.g. mel,fb (default: all)")
    parser.add_argument("--extra-test", action="append", default=[], metavar="NAME=DIR[:FORMAT]",
                        help="also score on this labelled dataset with the validation threshold "
                        "(FORMAT auto|mir1k|jamendo|folder; repeatable)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="decoded-audio cache (sets data.cache_dir)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (sets train.num_threads)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="runs trained at once, each in its own process (default 1); with "
                        "--threads, workers x threads should not exceed the cores")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: rebuild the report from the finished runs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="SECTION.KEY=VALUE",
                        help="overrides of the base configuration for every run, e.g. "
                        "data.instrumental=DIR data.remix.external=0.2")


def run(args: argparse.Namespace) -> int:
    from ..experiment import load_experiment, parse_extra_test, run_experiment, write_report

    started = time.perf_counter()
    overrides = list(args.overrides)
    for key, value in (("data.root", args.data), ("data.cache_dir", args.cache),
                       ("train.num_threads", args.threads)):
        if value is not None:
            overrides.append(f"{key}={value}")
    frontends = [name.strip() for name in args.frontends.split(",")] if args.frontends else None
    experiment = load_experiment(args.config, args.profile, overrides, args.seeds, frontends)
    extra_tests = [parse_extra_test(text) for text in args.extra_test]
    outcomes = [] if args.report_only else run_experiment(
        experiment, args.out, extra_tests, progress=not args.no_progress and sys.stderr.isatty(),
        workers=args.workers)
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in failed:
        print(f"failed {experiment.run_name(outcome.frontend, outcome.seed)}: {outcome.message}",
              file=sys.stderr)
    if outcomes and len(failed) == len(outcomes):
        print("no run finished: no report", file=sys.stderr)
        return 1
    wall_seconds = None if args.report_only else time.perf_counter() - started
    paths = write_report(experiment, args.out, command_line(args, experiment), wall_seconds, outcomes)
    busy = sum(o.status == "busy" for o in outcomes)
    done = len(outcomes) - len(failed) - busy
    print(f"{paths[1]}: {done} run{'s' * (done != 1)} up to date"
          + (f", {busy} in progress in other processes" if busy else "") if outcomes
          else f"{paths[1]}: report rebuilt")
    return 1 if failed else 0


def command_line(args: argparse.Namespace, experiment: Experiment) -> str:
    """The command that redoes this experiment, with the profile, seeds and front-ends spelt out."""
    words = ["vocalfront", "experiment", "--config", str(args.config)]
    for option, value in (("--data", args.data), ("--out", args.out), ("--cache", args.cache),
                          ("--threads", args.threads)):
        if value is not None:
            words += [option, str(value)]
    words += ["--profile", experiment.profile, "--seeds", str(len(experiment.seeds)),
              "--frontends", ",".join(experiment.frontends)]
    for text in args.extra_test:
        words += ["--extra-test", text]
    if args.report_only:
        words.append("--report-only")
    return shlex.join([*words, *args.overrides])
