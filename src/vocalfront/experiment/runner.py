"""Run a front-end comparison: every front-end × seed of one base configuration, resumably.

An experiment file (``experiments/paper.toml``) holds::

    [experiment]                      frontends, baseline, seeds (how many), default_profile,
                                      comparisons (optional pairs [A, B] also reported as A − B)
    [experiment.frontend_options."PATTERN"]
                                      options for the front-ends whose name matches PATTERN
                                      (shell-style, e.g. "fb*"), over base model.frontend_options
    [base.data|model|train|eval]      the base training configuration (keys of configs/default.toml)
    [profile.NAME]                    seeds = N (optional)
    [profile.NAME.data|model|train|eval]
                                      overrides of the base for that profile

Each run is the base configuration with ``model.frontend`` and ``train.seed`` set (the seed
changes weight initialisation and example sampling alike), trained by
:func:`vocalfront.training.train` in ``DIR/runs/<frontend>-seed<k>/``. Runs go seed by seed
(every front-end with seed 0, then seed 1, ...), so an unfinished experiment still has complete
pairs. Rerunning the same command skips finished runs (``model.pt`` and an ``evaluation.json``
for the configured number of updates and every requested extra test set), evaluates trained but
unevaluated ones, and resumes interrupted ones from their last checkpoint; a run folder made with
a different configuration is an error, never overwritten. A run in progress in another process
(its folder's ``.lock`` is held) is skipped as ``busy``, so two commands with the same ``--out``
share the runs between them instead of computing one twice.

Evaluation (``evaluation.json``): the detector after the whole update budget (``last.pt``, no
early stopping) on the validation clips, with the decision threshold chosen on those same clips
(the trainer's last validation; :func:`vocalfront.training.validate`). Our validation singers are
the only held-out singers, so the thresholded metrics (error, F-measure, ...) are optimistic;
AUROC needs no threshold and is the main comparison metric. Extra test sets are scored with that
validation threshold, unchanged.
"""

from __future__ import annotations

import copy
import fnmatch
import math
import multiprocessing
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from ..data.readers import Clip, ClipDataset
from ..detect import load_model
from ..errors import VocalfrontError
from ..evaluation import evaluate_files
from ..frontends import available_frontends
from ..grid import DEFAULT_GRID, FrameGrid
from ..scoring import READERS, open_dataset, predict, resolve_split, select
from ..training import Config, config_from_dict, resolve_config, runfolder, train
from ..training.config import apply_override

PROFILES = ("tiny", "quick", "full")
"""Profiles of ``experiments/paper.toml`` (others may be defined in other files)."""
RUNS_FOLDER = "runs"
EVALUATED_MODEL = runfolder.LAST_DETECTOR
"""The detector that is evaluated: the one after the whole update budget."""
CONFIG_SECTIONS = ("data", "model", "train", "eval")
_EXPERIMENT_KEYS = ("frontends", "baseline", "seeds", "default_profile", "frontend_options", "comparisons")
_TOP_KEYS = ("experiment", "base", "profile")

Status = Literal["skipped", "trained", "evaluated", "busy", "failed"]


@dataclass(frozen=True)
class ExtraTest:
    """An extra labelled test set: ``name``, its folder and its layout (``auto``: detected)."""

    name: str
    root: Path
    format: str = "auto"


def parse_extra_test(text: str) -> ExtraTest:
    """``NAME=DIR`` or ``NAME=DIR:FORMAT`` (FORMAT one of ``auto``, ``mir1k``, ``jamendo``,
    ``folder``) → :class:`ExtraTest`."""
    name, equals, location = text.partition("=")
    name = name.strip()
    if not equals or not name or not location or not name.replace("-", "").replace("_", "").isalnum():
        raise VocalfrontError(f"extra test {text!r}: expected NAME=DIR[:FORMAT] with NAME made of "
                              "letters, digits, '-' and '_'")
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
    the differences to the baseline (e.g. ``("fb", "fb-noavg")``: does averaging matter?).
    """

    source: str
    profile: str
    frontends: tuple[str, ...]
    seeds: tuple[int, ...]
    baseline: str
    base: dict[str, Any]
    frontend_options: tuple[tuple[str, dict[str, Any]], ...] = ()
    comparisons: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def run_name(frontend: str, seed: int) -> str:
        """Folder name of a run under ``DIR/runs``."""
        return f"{frontend}-seed{seed}"

    def runs(self) -> list[tuple[str, int]]:
        """``(frontend, seed)`` of every run, seed by seed."""
        return [(frontend, seed) for seed in self.seeds for frontend in self.frontends]

    def training_config(self, frontend: str, seed: int) -> Config:
        """The run's configuration (``data.root`` not yet resolved)."""
        raw = copy.deepcopy(self.base)
        model = raw.setdefault("model", {})
        options = dict(model.get("frontend_options", {}))
        for pattern, extra in self.frontend_options:
            if fnmatch.fnmatchcase(frontend, pattern):
                options.update(extra)
        model.update(frontend=frontend, frontend_options=options)
        raw.setdefault("train", {})["seed"] = seed
        try:
            return config_from_dict(raw)
        except VocalfrontError as error:
            raise VocalfrontError(f"{self.source} (profile {self.profile}, {frontend}): {error}") from None


def load_experiment(path: str | Path, profile: str | None = None, overrides: Sequence[str] = (),
                    seeds: int | None = None, frontends: Sequence[str] | None = None) -> Experiment:
    """Read an experiment file, apply a profile (default: the file's ``default_profile``),
    ``section.key=value`` overrides, a number of seeds and a subset of front-ends.

    Every run's configuration is checked here, so mistakes surface before any training.
    """
    raw = _read_toml(Path(path))
    _check_keys(raw, _TOP_KEYS, path, "the top level")
    spec = _table(raw, "experiment", path)
    _check_keys(spec, _EXPERIMENT_KEYS, path, "[experiment]")
    profiles = _table(raw, "profile", path)
    name = profile or spec.get("default_profile") or ""
    if name not in profiles:
        raise VocalfrontError(f"{path}: no profile {name!r} (profiles: {', '.join(profiles) or 'none'})")
    chosen = _table(profiles, name, path)
    _check_keys(chosen, ("seeds", *CONFIG_SECTIONS), path, f"[profile.{name}]")
    base = _merge(_table(raw, "base", path), {k: v for k, v in chosen.items() if k != "seeds"})
    for item in overrides:
        apply_override(base, item)
    count = seeds if seeds is not None else chosen.get("seeds", spec.get("seeds", 3))
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise VocalfrontError(f"{path}: the number of seeds must be a positive integer, got {count!r}")
    experiment = Experiment(str(path), name, _frontend_list(frontends or spec.get("frontends", []), path),
                            tuple(range(count)), str(spec.get("baseline", "mel")), base,
                            tuple((pattern, dict(options)) for pattern, options
                                  in _table(spec, "frontend_options", path).items()),
                            _comparisons(spec.get("comparisons", []), path))
    for frontend in experiment.frontends:
        experiment.training_config(frontend, 0)
    return experiment


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise VocalfrontError(f"{path}: cannot read experiment file ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise VocalfrontError(f"{path}: invalid TOML ({error})") from None


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


def _comparisons(pairs: Any, path: str | Path) -> tuple[tuple[str, str], ...]:
    """``[[A, B], ...]`` of the experiment file as pairs of registered front-end names."""
    def valid(pair: Any) -> bool:
        return isinstance(pair, list) and len(pair) == 2 and pair[0] != pair[1]

    if not isinstance(pairs, list) or not all(valid(pair) for pair in pairs):
        raise VocalfrontError(f"{path}: comparisons must be a list of [front-end, reference] pairs of two "
                              f"different names, got {pairs!r}")
    for pair in pairs:
        _frontend_list(pair, path)
    return tuple((a, b) for a, b in pairs)


def _frontend_list(names: Sequence[str], path: str | Path) -> tuple[str, ...]:
    """Registered front-end names, duplicates removed; an unknown one is an error."""
    unknown = [name for name in names if name not in available_frontends()]
    if unknown or not names:
        raise VocalfrontError(f"{path}: unknown or no front-ends {unknown} (available: "
                              f"{', '.join(available_frontends())})")
    return tuple(dict.fromkeys(names))


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
    others go on. ``log`` receives one line per run. ``workers > 1`` runs that many at once, each
    in its own process (started in the experiment's order; no progress bars); give each the
    threads of its share of the cores (``train.num_threads``). Results do not depend on it.
    """
    check_extra_tests(extra_tests, experiment.base.get("data", {}).get("cache_dir") or None)
    runs = experiment.runs()
    jobs = [(experiment, frontend, seed, Path(out_dir), tuple(extra_tests), progress and workers == 1)
            for frontend, seed in runs]
    outcomes = []

    def report(index: int, outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        log(f"[{index}/{len(runs)}] {experiment.run_name(outcome.frontend, outcome.seed)}: "
            f"{outcome.status} ({outcome.seconds:.0f} s){': ' + outcome.message if outcome.message else ''}")

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
        return _bring_up_to_date(config, run_dir, extra_tests, progress)


def _bring_up_to_date(config: Config, run_dir: Path, extra_tests: Sequence[ExtraTest],
                      progress: bool) -> tuple[Status, str]:
    runfolder.check_run_config(run_dir, config, "use another --out or remove that folder")
    previous = runfolder.read_evaluation(run_dir)
    if previous is not None and previous["updates"] != config.train.updates:
        previous = None  # the budget changed: the run goes on from its last state
    trained = (runfolder.has_final_model(run_dir)
               and runfolder.last_validated_update(run_dir) == config.train.updates)
    if trained and previous is not None and all(test.name in previous["extra"] for test in extra_tests):
        return "skipped", _summary_line(previous)
    status: Status = "evaluated"
    if not trained:
        train(config, run_dir, resume=None, progress=progress)
        status, previous = "trained", None
    evaluation = evaluate_run(run_dir, config, extra_tests, previous, progress)
    runfolder.write_evaluation(run_dir, evaluation)
    return status, _summary_line(evaluation)


def _summary_line(evaluation: Mapping[str, Any]) -> str:
    valid = evaluation["valid"]
    return (f"AUROC {metric_value(valid['auroc']):.4f}, error {100 * metric_value(valid['error']):.2f} % "
            f"after {evaluation['updates']} updates")


def evaluate_run(run_dir: Path, config: Config, extra_tests: Sequence[ExtraTest] = (),
                 previous: Mapping[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """The evaluation record of a trained run (written as ``evaluation.json``).

    Keys: ``frontend``, ``seed``, ``version`` (of vocalfront, evaluating), ``model`` (the
    evaluated file), ``updates``, ``train_time_s``
    (training and validation compute time over all sittings, seconds), ``valid`` (pooled metrics
    and ``threshold`` of the last validation), ``moved`` (how far a learnable filter bank moved,
    :func:`vocalfront.frontends.inspection.movement_summary`; empty otherwise) and ``extra``
    (per extra test set: ``data``, ``format``, ``split``, ``clips``, ``failed``, ``pooled``).
    Extra test sets already in ``previous`` (an earlier record of the same model) are kept.
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
    return {"frontend": config.model.frontend, "seed": config.train.seed, "version": __version__,
            "model": EVALUATED_MODEL,
            "updates": final["update"], "train_time_s": final["time"], "valid": final["valid"],
            "moved": final.get("frontend_moved", {}), "extra": extra}


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


