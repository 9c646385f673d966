"""The paper's comparison of front-ends as one resumable experiment.

::

    from vocalfront.experiment import load_experiment, run_experiment, write_report
    experiment = load_experiment("experiments/paper.toml", profile="quick",
                                 overrides=["data.root=/data/mir1k"])
    outcomes = run_experiment(experiment, "results/quick")      # trains, resumes, skips
    write_report(experiment, "results/quick", command="...")    # results.csv/md, figures/

:mod:`.runner` trains and evaluates the runs (:mod:`.testset`: the test split per file;
:mod:`.controls`: arms such as random-perturbation controls), :mod:`.stats` compares front-ends
over seeds (paired by seed), :mod:`.compare` states claims on the test files (bootstrap over
seeds and songs, equivalence tests, Holm), :mod:`.report` and :mod:`.testreport` write the
tables and figures. The command line is
``vocalfront experiment`` (:mod:`vocalfront.cli.experiment`).
"""

from .report import collect_rows, write_report
from .runner import (
    PROFILES,
    Experiment,
    ExtraTest,
    RunOutcome,
    evaluate_run,
    load_experiment,
    parse_extra_test,
    run_experiment,
    run_one,
)
from .stats import PairedDifference, Summary, paired_difference, summarize, summarize_by_frontend, t_interval

__all__ = [
    "PROFILES",
    "Experiment",
    "ExtraTest",
    "PairedDifference",
    "RunOutcome",
    "Summary",
    "collect_rows",
    "evaluate_run",
    "load_experiment",
    "paired_difference",
    "parse_extra_test",
    "run_experiment",
    "run_one",
    "summarize",
    "summarize_by_frontend",
    "t_interval",
    "write_report",
]
