"""Run a front-end comparison: every front-end × seed of one base configuration, resumably.

An experiment file (``experiments/paper.toml``) holds::

    [experiment]                      frontends, baseline, seeds (how many), default_profile,
                                      comparisons (optional pairs [A, B] also reported as A − B)
    [experiment.frontend_options."PATTERN"]
                                      options for the front-ends whose name matches PATTERN
                                      (shell-style, e.g. "fb*"), over base model.frontend_options
    [experiment.arms."NAME"]          a named variant of a front-end, listed in frontends like
                                      one: controls (:mod:`.controls`)
    [experiment.margins]              equivalence margins per metric (:mod:`.compare`)
    [base.data|model|train|eval]      the base training configuration (keys of configs/default.toml)
    [profile.NAME]                    seeds = N, frontends, comparisons (all optional)
    [profile.NAME.data|model|train|eval]
                                      overrides of the base for that profile

Each run is the base configuration with ``model.frontend`` (an arm's front-end, options and
overrides) and ``train.seed`` set (the seed changes weight initialisation and example sampling
alike), trained by
:func:`vocalfront.training.train` in ``DIR/runs/<frontend>-seed<k>/``. Runs go seed by seed
(every front-end with seed 0, then seed 1, ...), so an unfinished experiment still has complete
pairs. Rerunning the same command skips finished runs (``model.pt`` and an ``evaluation.json``
for the configured number of updates and every requested extra test set), evaluates trained but
unevaluated ones, and resumes interrupted ones from their last checkpoint; a run folder made with
a different configuration is an error, never overwritten. A run in progress in another process
(its folder's ``.lock`` is held) is skipped as ``busy``, so two commands with the same ``--out``
share the runs between them instead of computing one twice.

Evaluation (``evaluation.json``, :func:`evaluate_run`): the test split (:mod:`.testset`:
``model.pt``, the checkpoint chosen on validation, at its decision settings chosen on
validation, per source and per file), and the detector after the whole update budget
(``last.pt``) on the validation clips with the threshold chosen on those same clips (the
trainer's last validation: it shows the training; its thresholded metrics are optimistic).
Extra test sets are scored with that validation threshold, unchanged.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from .. import __version__
from ..data.readers import Clip, ClipDataset
from ..detect import load_model
from ..errors import VocalfrontError
from ..evaluation import evaluate_files
from ..frontends import available_frontends
from ..grid import DEFAULT_GRID, FrameGrid
from ..scoring import READERS, open_dataset, predict, resolve_split, select
from ..training import Config, config_from_dict, resolve_config, runfolder, train
from ..training.config import apply_override, read_toml
from ..training.validation import METRIC_KEYS
from .controls import Arm, control_movement, parse_arm, perturbed_options
from .testset import evaluate_test

PROFILES = ("ci", "tiny", "quick", "full", "paper")
"""Profiles of ``experiments/paper.toml`` (others may be defined in other files)."""
RUNS_FOLDER = "runs"
EVALUATED_MODEL = runfolder.LAST_DETECTOR
"""The detector that is evaluated: the one after the whole update budget."""
CONFIG_SECTIONS = ("data", "model", "train", "eval")
MARGIN_METRICS = (*METRIC_KEYS, "final_error")
"""Metrics an equivalence margin may be given for."""
_EXPERIMENT_KEYS = ("frontends", "baseline", "seeds", "default_profile", "frontend_options", "comparisons",
                    "arms", "margins")
_PROFILE_KEYS = ("seeds", "frontends", "comparisons", *CONFIG_SECTIONS)
_TOP_KEYS = ("experiment", "base", "profile")
MAX_SEEDS = 1000
"""Most seeds per front-end (each is a training run; the list of runs is built whole)."""

Status = Literal["skipped", "trained", "evaluated", "busy", "failed"]


@dataclass(frozen=True)
class ExtraTest:
    """An extra labelled test set: ``name``, its folder and its layout (``auto``: detected)."""

    name: str
    root: Path
    format: str = "auto"


def parse_extra_test(text: str) -> ExtraTest:
    """``NAME=DIR`` or ``NAME=DIR:FORMAT`` (FORMAT one of ``auto``, ``mir1k``, ``jamendo``,
    ``folder``) → :class:`ExtraTest`; NAME is not ``test`` or ``test-*`` (the report's columns of
    the experiment's own test split)."""
    name, equals, location = text.partition("=")
    name = name.strip()
    if not equals or not name or not location or not name.replace("-", "").replace("_", "").isalnum():
        raise VocalfrontError(f"extra test {text!r}: expected NAME=DIR[:FORMAT] with NAME made of "
                              "letters, digits, '-' and '_'")
    if name == "test" or name.startswith("test-"):
        raise VocalfrontError(f"extra test {text!r}: the names 'test' and 'test-*' are the experiment's "
                              "own test split; choose another NAME")
    folder, colon, fmt = location.rpartition(":")
    if colon and fmt in ("auto", *READERS):
        return ExtraTest(name, Path(folder), fmt)
    return ExtraTest(name, Path(location))


@dataclass(frozen=True)
class Experiment:
    """A comparison of ``frontends`` over ``seeds`` (see the module docstring).

    ``base``: the raw configuration tree (sections ``data``, ``model``, ``train``, ``eval``) after
    the profile and overrides; ``frontend_options``: ``(pattern, options)`` in file order;
    ``comparisons``: ``(frontend, reference)`` pairs whose paired difference is reported besides
    the differences to the baseline (e.g. ``("fb", "fb-noavg")``: does averaging matter?);
    ``arms``: named variants listed in ``frontends`` besides registered front-ends
    (:mod:`.controls`); ``margins``: equivalence margins per metric (``auroc``, ``error``, ...:
    differences in the metric's own units), fixed before any run (:mod:`.compare`).
    """

    source: str
    profile: str
    frontends: tuple[str, ...]
    seeds: tuple[int, ...]
    baseline: str
    base: dict[str, Any]
    frontend_options: tuple[tuple[str, dict[str, Any]], ...] = ()
    comparisons: tuple[tuple[str, str], ...] = ()
    arms: Mapping[str, Arm] = field(default_factory=dict)
    margins: Mapping[str, float] = field(default_factory=dict)

    @staticmethod
    def run_name(frontend: str, seed: int) -> str:
        """Folder name of a run under ``DIR/runs``."""
        return f"{frontend}-seed{seed}"

    def runs(self) -> list[tuple[str, int]]:
        """``(frontend, seed)`` of every run, seed by seed."""
        return [(frontend, seed) for seed in self.seeds for frontend in self.frontends]

    def training_config(self, frontend: str, seed: int) -> Config:
        """The run's configuration (``data.root`` not yet resolved); ``frontend`` is a registered
        front-end or an arm (its front-end, overrides and perturbation applied)."""
        arm = self.arms.get(frontend, Arm(frontend))
        raw = _merge(self.base, arm.overrides)
        model = raw.setdefault("model", {})
        options = dict(model.get("frontend_options", {}))
        for pattern, extra in self.frontend_options:
            if fnmatch.fnmatchcase(arm.frontend, pattern):
                options.update(extra)
        model.update(frontend=arm.frontend, frontend_options=options)
        raw.setdefault("train", {})["seed"] = seed
        try:
            if arm.perturb:
                model["frontend_options"] = perturbed_options(arm.frontend, options, arm.perturb, seed)
            return config_from_dict(raw)
        except (VocalfrontError, ValueError) as error:
            raise VocalfrontError(f"{self.source} (profile {self.profile}, {frontend}): {error}") from None


def load_experiment(path: str | Path, profile: str | None = None, overrides: Sequence[str] = (),
                    seeds: int | None = None, frontends: Sequence[str] | None = None) -> Experiment:
    """Read an experiment file, apply a profile (default: the file's ``default_profile``),
    ``section.key=value`` overrides, a number of seeds and a subset of front-ends.

    Every run's configuration is checked here, so mistakes surface before any training.
    """
    raw = read_toml(Path(path))
    _check_keys(raw, _TOP_KEYS, path, "the top level")
    spec = _table(raw, "experiment", path)
    _check_keys(spec, _EXPERIMENT_KEYS, path, "[experiment]")
    profiles = _table(raw, "profile", path)
    name = profile or spec.get("default_profile") or ""
    if name not in profiles:
        raise VocalfrontError(f"{path}: no profile {name!r} (profiles: {', '.join(profiles) or 'none'})")
    chosen = _table(profiles, name, path)
    _check_keys(chosen, _PROFILE_KEYS, path, f"[profile.{name}]")
    base = _merge(_table(raw, "base", path), {k: v for k, v in chosen.items() if k in CONFIG_SECTIONS})
    for item in overrides:
        apply_override(base, item)
    count = seeds if seeds is not None else chosen.get("seeds", spec.get("seeds", 3))
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEEDS:
        raise VocalfrontError(f"{path}: the number of seeds must be a whole number from 1 to "
                              f"{MAX_SEEDS}, got {count!r}")
    arms = {arm: parse_arm(arm, table, f"{path}") for arm, table in _table(spec, "arms", path).items()}
    if arms:
        _frontend_list([arm.frontend for arm in arms.values()], path)
    clash = sorted(set(arms) & set(available_frontends()))
    if clash:
        raise VocalfrontError(f"{path}: arm {clash[0]!r} has the name of a registered front-end; rename it")
    names = frontends or chosen.get("frontends") or spec.get("frontends", [])
    experiment = Experiment(str(path), name, _frontend_list(names, path, arms),
                            tuple(range(count)), str(spec.get("baseline", "mel")), base,
                            tuple((pattern, dict(options)) for pattern, options
                                  in _table(spec, "frontend_options", path).items()),
                            _comparisons(chosen.get("comparisons", spec.get("comparisons", [])), path, arms),
                            arms, _margins(_table(spec, "margins", path), path))
    for frontend in experiment.frontends:
        experiment.training_config(frontend, 0)
    return experiment


def _check_keys(table: Mapping[str, Any], known: Sequence[str], path: str | Path, where: str) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        raise VocalfrontError(f"{path}: unknown key {unknown[0]!r} in {where} (known: {', '.join(known)})")


def _table(raw: Mapping[str, Any], key: str, path: str | Path) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise VocalfrontError(f"{path}: {key!r} must be a table")
    return value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep copy of ``base`` with the tables of ``over`` merged in recursively."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _comparisons(pairs: Any, path: str | Path, arms: Mapping[str, Arm]) -> tuple[tuple[str, str], ...]:
    """``[[A, B], ...]`` of the experiment file as pairs of registered front-end or arm names."""
    def valid(pair: Any) -> bool:
        return isinstance(pair, list) and len(pair) == 2 and pair[0] != pair[1]

    if not isinstance(pairs, list) or not all(valid(pair) for pair in pairs):
        raise VocalfrontError(f"{path}: comparisons must be a list of [front-end, reference] pairs of two "
                              f"different names, got {pairs!r}")
    for pair in pairs:
        _frontend_list(pair, path, arms)
    return tuple((a, b) for a, b in pairs)


def _frontend_list(names: Sequence[str], path: str | Path,
                   arms: Mapping[str, Arm] | None = None) -> tuple[str, ...]:
    """Registered front-end or ``arms`` names, duplicates removed; an unknown one is an error."""
    known = [*available_frontends(), *(arms or {})]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise VocalfrontError(f"{path}: unknown or no front-ends {unknown} (available: {', '.join(known)})")
    return tuple(dict.fromkeys(names))


def _margins(table: Mapping[str, Any], path: str | Path) -> dict[str, float]:
    """``[experiment.margins]``: metric → positive margin (a difference in the metric's units)."""
    bad = [key for key, value in table.items() if key not in MARGIN_METRICS or isinstance(value, bool)
           or not isinstance(value, int | float) or not 0 < value < 1]
    if bad:
        raise VocalfrontError(f"{path}: [experiment.margins] takes {', '.join(MARGIN_METRICS)} = a margin "
                              f"between 0 and 1, got {bad[0]} = {table[bad[0]]!r}")
    return {key: float(value) for key, value in table.items()}


# --------------------------------------------------------------------------------- running
@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_experiment` did with one run; ``seconds``: wall time in this sitting."""

    frontend: str
    seed: int
    status: Status
    seconds: float = 0.0
    message: str = ""


def run_experiment(experiment: Experiment, out_dir: str | Path, extra_tests: Sequence[ExtraTest] = (),
                   progress: bool = True, log: Callable[[str], None] = print,
                   workers: int = 1) -> list[RunOutcome]:
    """Train and evaluate every run of ``experiment`` in ``out_dir/runs`` (see the module docstring).

    A run that fails with a :class:`VocalfrontError` is reported (``status="failed"``) and the
    others go on. ``log`` receives one line per run. ``progress`` shows runs done of all, and
    with one worker each run's training and scoring. ``workers > 1`` runs that many at once,
    each in its own process (started in the experiment's order); give each the threads of its
    share of the cores (``train.num_threads``). Results do not depend on it.
    """
    check_extra_tests(extra_tests, experiment.base.get("data", {}).get("cache_dir") or None)
    runs = experiment.runs()
    jobs = [(experiment, frontend, seed, Path(out_dir), tuple(extra_tests), progress and workers == 1)
            for frontend, seed in runs]
    outcomes = []
    bar = tqdm(total=len(runs), desc="runs", unit="run", disable=not progress, dynamic_ncols=True)

    def report(index: int, outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        with tqdm.external_write_mode():
            log(f"[{index}/{len(runs)}] {experiment.run_name(outcome.frontend, outcome.seed)}: "
                f"{outcome.status} ({outcome.seconds:.0f} s)"
                f"{': ' + outcome.message if outcome.message else ''}")
        bar.update()

    with bar:
        if workers <= 1:
            for index, job in enumerate(jobs, 1):
                report(index, _run_job(*job))
            return outcomes
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_run_job, *job) for job in jobs]
            for index, future in enumerate(as_completed(futures), 1):
                report(index, future.result())
    order = {(frontend, seed): index for index, (frontend, seed) in enumerate(runs)}
    return sorted(outcomes, key=lambda outcome: order[outcome.frontend, outcome.seed])


def _run_job(experiment: Experiment, frontend: str, seed: int, out_dir: Path,
             extra_tests: Sequence[ExtraTest], progress: bool) -> RunOutcome:
    """:func:`run_one`, timed, with its one-line errors turned into a failed outcome."""
    started = time.perf_counter()
    try:
        status, message = run_one(experiment, frontend, seed, out_dir, extra_tests, progress)
    except VocalfrontError as error:
        status, message = "failed", str(error)
    return RunOutcome(frontend, seed, status, time.perf_counter() - started, message)


def check_extra_tests(extra_tests: Sequence[ExtraTest], cache_dir: str | None = None) -> None:
    """Fail early on duplicate names or an extra test set without clips to score."""
    names = [test.name for test in extra_tests]
    if len(set(names)) != len(names):
        raise VocalfrontError(f"extra test names must differ, got {', '.join(names)}")
    for test in extra_tests:
        _extra_clips(test, cache_dir, DEFAULT_GRID)


def _extra_clips(test: ExtraTest, cache_dir: str | None,
                 grid: FrameGrid) -> tuple[ClipDataset, str, str, list[Clip]]:
    """Reader (labels on ``grid``), format, split and clips to score of an extra test set;
    problems name the set."""
    try:
        dataset, fmt = open_dataset(test.root, test.format, Path(cache_dir) if cache_dir else None, grid)
        split = resolve_split(dataset, fmt, "auto")
        return dataset, fmt, split, select(dataset, fmt, split)
    except VocalfrontError as error:
        raise VocalfrontError(f"extra test {test.name!r}: {error}") from None


def run_one(experiment: Experiment, frontend: str, seed: int, out_dir: Path,
            extra_tests: Sequence[ExtraTest] = (), progress: bool = True) -> tuple[Status, str]:
    """Bring one run up to date: train (or resume) if needed, then evaluate if needed.

    Returns the status and a one-line summary of its validation metrics. A run that another
    process is bringing up to date (it holds the run's lock, :func:`.runfolder.run_lock`) is
    left to it: ``"busy"``. So several commands may share one experiment folder and split its runs.
    """
    config = resolve_config(experiment.training_config(frontend, seed))
    run_dir = out_dir / RUNS_FOLDER / experiment.run_name(frontend, seed)
    with runfolder.run_lock(run_dir) as holder:
        if holder is not None:
            return "busy", f"in progress in {holder}"
        return _bring_up_to_date(frontend, config, run_dir, extra_tests, progress)


def _bring_up_to_date(name: str, config: Config, run_dir: Path, extra_tests: Sequence[ExtraTest],
                      progress: bool) -> tuple[Status, str]:
    runfolder.check_run_config(run_dir, config, "use another --out or remove that folder")
    previous = runfolder.read_evaluation(run_dir)
    if previous is not None and previous["updates"] != config.train.updates:
        previous = None  # the budget changed: the run goes on from its last state
    trained = (runfolder.has_final_model(run_dir)
               and runfolder.last_validated_update(run_dir) == config.train.updates)
    if (trained and previous is not None and "test" in previous
            and all(test.name in previous["extra"] for test in extra_tests)):
        return "skipped", _summary_line(previous)
    status: Status = "evaluated"
    if not trained:
        train(config, run_dir, resume=None, progress=progress)
        status, previous = "trained", None
    evaluation = evaluate_run(run_dir, config, extra_tests, previous, progress, name)
    runfolder.write_evaluation(run_dir, evaluation)
    return status, _summary_line(evaluation)


def _summary_line(evaluation: Mapping[str, Any]) -> str:
    valid = evaluation["valid"]
    return (f"AUROC {metric_value(valid['auroc']):.4f}, error {100 * metric_value(valid['error']):.2f} % "
            f"after {evaluation['updates']} updates")


def evaluate_run(run_dir: Path, config: Config, extra_tests: Sequence[ExtraTest] = (),
                 previous: Mapping[str, Any] | None = None, progress: bool = True,
                 name: str | None = None) -> dict[str, Any]:
    """The evaluation record of a trained run (written as ``evaluation.json``).

    Keys: ``frontend`` (``name``, the arm; default the configured front-end), ``seed``,
    ``version`` (of vocalfront, evaluating), ``model`` (the evaluated file), ``updates``,
    ``train_time_s`` (training and validation compute time over all sittings, seconds),
    ``valid`` (pooled metrics and ``threshold`` of the last validation), ``moved`` (how far a
    learnable filter bank moved, :func:`vocalfront.frontends.inspection.movement_summary`, or a
    perturbation control's bank, :func:`.controls.control_movement`; empty otherwise), ``test``
    (the song-disjoint test set, :func:`.testset.evaluate_test`; ``None`` without test data)
    and ``extra`` (per extra test set: ``data``, ``format``, ``split``, ``clips``, ``failed``,
    ``pooled``). The test record and extra test sets already in ``previous`` (an earlier record
    of the same model) are kept.
    """
    validations = runfolder.read_validations(run_dir)
    if not validations:
        raise VocalfrontError(f"{run_dir}: no validation in metrics.jsonl; the run did not finish")
    final = validations[-1]
    extra = dict(previous["extra"]) if previous is not None else {}
    for test in extra_tests:
        if test.name not in extra:
            extra[test.name] = evaluate_extra(run_dir / EVALUATED_MODEL, final["valid"]["threshold"],
                                              config.eval.median_filter, test,
                                              config.data.cache_dir or None, progress)
    test = previous["test"] if previous is not None and "test" in previous else evaluate_test(
        run_dir, config, progress)
    moved = final.get("frontend_moved") or control_movement(config.model.frontend,
                                                            config.model.frontend_options)
    return {"frontend": name or config.model.frontend, "seed": config.train.seed, "version": __version__,
            "model": EVALUATED_MODEL,
            "updates": final["update"], "train_time_s": final["time"], "valid": final["valid"],
            "moved": moved, "test": test, "extra": extra}


def evaluate_extra(model_path: Path, threshold: float, smoothing: int, test: ExtraTest,
                   cache_dir: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Score a detector on an extra test set (its ``test`` split if it has one, else all clips)
    with a fixed ``threshold`` on ``smoothing``-frame median-smoothed probabilities."""
    model = load_model(model_path)
    dataset, fmt, split, clips = _extra_clips(test, cache_dir, model.detector.grid)
    predictions = predict(model, dataset, clips, progress, test.name)
    if not predictions.names:
        raise VocalfrontError(f"{test.root}: no clip of extra test set {test.name!r} could be evaluated")
    report = evaluate_files(predictions.probabilities, predictions.labels, threshold,
                            predictions.names, smoothing)
    return {"data": str(test.root), "format": fmt, "split": split, "clips": len(predictions.names),
            "failed": predictions.failed, "pooled": report.pooled}


def metric_value(value: Any) -> float:
    """A stored metric as a float (``None``, i.e. undefined, as NaN)."""
    return math.nan if value is None else float(value)


