"""The run folder of a training: its layout, and every read and write of it, in one place.

A run folder holds::

    config.json        the resolved configuration (:func:`prepare_run`, :func:`read_run_config`)
    metrics.jsonl      one JSON object per sitting (``event: "start"``: where it trains), per
                       update (``event: "update"``: update, loss, lr, time) and per epoch
                       (``event: "validation"``: pooled validation metrics, threshold, mean
                       training loss, the learnable front-end parameters and how far they moved
                       from their initial values); :class:`RunLogs`, :func:`read_metrics`
    metrics.csv        one row per epoch (:data:`CSV_COLUMNS`): the validation summary
    state-<n>.pt       full training state after ``n`` updates, the newest two kept (and
                       those at multiples of ``train.keep_states_every``)
                       (:mod:`.checkpoint` owns their names and format)
    best.pt, last.pt   detectors (:func:`~vocalfront.detector_file.save_detector`) of the best epoch by
                       validation error and of the latest one (:func:`save_epoch_detectors`)
    model.pt           the final model: the best epoch's detector with its decision settings
                       (:func:`save_final_model`)
    evaluation.json    an experiment's evaluation of the run (:func:`read_evaluation`)
    .lock              held by the process that trains in the folder (:func:`run_lock`)

Resuming: a folder may be trained further only with the same configuration, up to
:data:`RESUME_FREE_KEYS` (:func:`config_differences`); the logs are cut back to the lengths the
resumed state recorded (:class:`RunLogs`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from ..detector_file import load_detector_file, save_detector
from ..errors import VocalfrontError
from ..fileio import json_safe, process_lock, write_text_atomic
from ..model import Detector
from .checkpoint import list_states, load_latest_state
from .config import Config, config_from_dict, config_to_dict

CONFIG_FILE = "config.json"
METRICS_LOG = "metrics.jsonl"
METRICS_TABLE = "metrics.csv"
BEST_DETECTOR = "best.pt"
LAST_DETECTOR = "last.pt"
FINAL_MODEL = "model.pt"
EVALUATION_FILE = "evaluation.json"
LOCK_FILE = ".lock"
"""Held (``flock``, :func:`~vocalfront.fileio.process_lock`) by the process that trains in a run
folder, and by an experiment bringing the run up to date."""
RUN_FILES = (CONFIG_FILE, METRICS_LOG, METRICS_TABLE, BEST_DETECTOR, LAST_DETECTOR, FINAL_MODEL)
"""Files of a run besides the state files (removed when a run starts over)."""
RESUME_FREE_KEYS = frozenset({"data.cache_dir", "train.device", "train.num_threads", "train.updates",
                              "train.keep_states_every", "train.bf16", "train.example_workers"})
"""Settings that may change when a run is resumed (they do not change what was trained so far;
a different thread count, device or precision only breaks bitwise equality with an
uninterrupted run)."""
CSV_COLUMNS = ("epoch", "update", "train_loss", "valid_error", "valid_f_measure", "valid_auroc",
               "threshold", "time")


# --------------------------------------------------------------------------- configuration
def read_run_config(run_dir: Path) -> Config:
    """A run's ``config.json``, read back through :class:`Config` (keys added to it since the run
    was made take their defaults); an unreadable one is a :class:`VocalfrontError`."""
    path = run_dir / CONFIG_FILE
    try:
        return config_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise VocalfrontError(f"{path}: unreadable run configuration ({error})") from None


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dictionaries (:data:`RESUME_FREE_KEYS`
    ignored)."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    keys = sorted((set(flat_old) | set(flat_new)) - RESUME_FREE_KEYS)
    return [key for key in keys if flat_old.get(key) != flat_new.get(key)]


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def check_run_config(run_dir: Path, config: Config, advice: str) -> None:
    """Refuse a run folder whose ``config.json`` differs from ``config`` (beyond
    :data:`RESUME_FREE_KEYS`; keys missing from an older ``config.json`` count as their
    defaults); ``advice`` ends the error. A folder without ``config.json`` passes."""
    if (run_dir / CONFIG_FILE).is_file():
        _refuse_another_run(run_dir, read_run_config(run_dir), config_to_dict(config), advice)


def _refuse_another_run(run_dir: Path, stored: Config, new: Mapping[str, Any], advice: str) -> None:
    changed = config_differences(config_to_dict(stored), new)
    if changed:
        raise VocalfrontError(f"{run_dir}: holds a run with a different config "
                              f"({', '.join(changed[:5])} differ); {advice}")


# --------------------------------------------------------------------------- starting and resuming
def check_run_folder(run_dir: Path) -> None:
    """Refuse ``run_dir`` unless it is free for a run: missing, or without any of
    :data:`RUN_FILES`, or a vocalfront run folder (its ``config.json`` reads as a :class:`Config`).

    Read-only, so it runs before the folder's lock is taken: a folder that is not a run gets
    no file written into it.
    """
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not present:
        return
    if not (run_dir / CONFIG_FILE).is_file():
        raise VocalfrontError(f"{run_dir}: not a vocalfront run folder (it holds {', '.join(present)} "
                              f"but no {CONFIG_FILE}); use another --out")
    try:
        read_run_config(run_dir)
    except VocalfrontError as error:
        raise VocalfrontError(f"{error}; not a vocalfront run folder, use another --out") from None


def _start_over(run_dir: Path) -> None:
    """Remove a previous run's state files and its other files (:data:`RUN_FILES`) from
    ``run_dir`` (a folder :func:`check_run_folder` accepted); nothing else."""
    for path in [*list_states(run_dir), *(run_dir / name for name in RUN_FILES)]:
        path.unlink(missing_ok=True)


def prepare_run(config: Config, run_dir: str | Path, resume: bool | None = None) -> dict[str, Any] | None:
    """Set up ``run_dir`` for ``config``; the training state to resume from, or ``None``.

    ``resume=None`` resumes when the folder holds a state of the same configuration (up to
    :data:`RESUME_FREE_KEYS`) and refuses a different one, also one that has a ``config.json``
    but no state yet; ``True`` likewise (starting afresh if there is no state); ``False``
    deletes the previous run's files and starts over. A folder that is not a run
    (:func:`check_run_folder`) is refused whatever ``resume`` says. Writes ``config.json``.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir)
    new = config_to_dict(config)
    advice = "use another --out, or --no-resume to start over"
    state = None if resume is False else load_latest_state(run_dir)
    if state is not None:
        # read back with today's defaults for keys added since (an unreadable config fails here)
        _refuse_another_run(run_dir, config_from_dict(state["config"]), new, advice)
    else:
        if resume is not False:
            check_run_config(run_dir, config, advice)
        _start_over(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / CONFIG_FILE, json.dumps(new, indent=2) + "\n")
    return state


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[str | None]:
    """Hold ``run_dir``'s :data:`LOCK_FILE` while the context lasts; yields ``None``, or who holds
    it already (then nothing is taken, see :func:`~vocalfront.fileio.process_lock`)."""
    with process_lock(run_dir / LOCK_FILE) as holder:
        yield holder


def lock_run(run_dir: Path, stack: contextlib.ExitStack) -> None:
    """Hold ``run_dir``'s :data:`LOCK_FILE` until ``stack`` closes; another holder is an error.

    The folder is checked first (:func:`check_run_folder`), so no lock file lands in a folder
    that is not a run."""
    check_run_folder(run_dir)
    holder = stack.enter_context(run_lock(run_dir))
    if holder is not None:
        raise VocalfrontError(f"{run_dir}: another training is running in this folder ({holder}); "
                              "wait for it to end or use another --out")


# --------------------------------------------------------------------------- logs
class RunLogs:
    """``metrics.jsonl`` and ``metrics.csv``, opened for appending at given lengths (bytes,
    :meth:`positions` of an earlier sitting; ``None``: emptied)."""

    def __init__(self, run_dir: Path, positions: Mapping[str, int] | None):
        self.jsonl = self._open(run_dir / METRICS_LOG, positions and positions["jsonl"])
        self.csv = self._open(run_dir / METRICS_TABLE, positions and positions["csv"])
        self.writer = csv.writer(self.csv, lineterminator="\n")
        if self.csv.tell() == 0:
            self.writer.writerow(CSV_COLUMNS)

    @staticmethod
    def _open(path: Path, position: int | None) -> TextIO:
        """Open ``path`` for appending, first cut back to ``position`` bytes (``None``: emptied)."""
        with path.open("ab") as handle:
            size = handle.seek(0, io.SEEK_END)
            if position is not None and position > size:
                warnings.warn(f"{path}: shorter than the checkpoint recorded ({size} < {position} "
                              "bytes); earlier entries are missing", stacklevel=3)
            handle.truncate(min(position or 0, size))
        return path.open("a", encoding="utf-8", newline="")

    def record(self, entry: Mapping[str, Any]) -> None:
        """Append one event to ``metrics.jsonl``."""
        self.jsonl.write(json.dumps(json_safe(dict(entry)), allow_nan=False) + "\n")

    def validation(self, epoch: int, update: int, train_loss: float, metrics: Mapping[str, Any],
                   elapsed: float, details: Mapping[str, Any]) -> None:
        """Append a validation: the ``validation`` event (``metrics`` under ``valid``, the
        compute time so far ``elapsed`` in seconds, and ``details``) and its ``metrics.csv`` row."""
        self.record({"event": "validation", "epoch": epoch, "update": update, "train_loss": train_loss,
                     "valid": metrics, **details, "time": round(elapsed, 3)})
        row = {"epoch": epoch, "update": update, "train_loss": f"{train_loss:.6f}",
               **{f"valid_{key}": f"{metrics[key]:.6f}" for key in ("error", "f_measure", "auroc")},
               "threshold": f"{metrics['threshold']:.6f}", "time": f"{elapsed:.1f}"}
        self.writer.writerow([row[column] for column in CSV_COLUMNS])

    def positions(self) -> dict[str, int]:
        """Current lengths of both files (after flushing them)."""
        for handle in (self.jsonl, self.csv):
            handle.flush()
        return {"jsonl": self.jsonl.tell(), "csv": self.csv.tell()}

    def __enter__(self) -> RunLogs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.jsonl.close()
        self.csv.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The entries of a run's ``metrics.jsonl`` (empty if there is none)."""
    path = run_dir / METRICS_LOG
    if not path.is_file():
        return []
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except ValueError as error:
        raise VocalfrontError(f"{path}: unreadable metrics log ({error})") from None


def read_validations(run_dir: Path) -> list[dict[str, Any]]:
    """The validation entries of a run's ``metrics.jsonl``, in order."""
    return [entry for entry in read_metrics(run_dir) if entry.get("event") == "validation"]


def read_sittings(run_dir: Path) -> list[dict[str, Any]]:
    """The ``start`` entries of a run's ``metrics.jsonl``: where each sitting trained."""
    return [entry for entry in read_metrics(run_dir) if entry.get("event") == "start"]


def last_validated_update(run_dir: Path) -> int | None:
    """Update of the run's last validation, ``None`` if it has none."""
    validations = read_validations(run_dir)
    return validations[-1]["update"] if validations else None


# --------------------------------------------------------------------------- detectors
def save_epoch_detectors(run_dir: Path, detector: Detector, extra: Mapping[str, Any], best: bool) -> None:
    """Write the validated ``detector`` as ``last.pt``, and as ``best.pt`` when ``best``."""
    save_detector(run_dir / LAST_DETECTOR, detector, extra)
    if best:
        save_detector(run_dir / BEST_DETECTOR, detector, extra)


def load_run_detector(run_dir: Path, name: str = BEST_DETECTOR) -> tuple[Detector, dict[str, Any]]:
    """A detector of the run (``best.pt``, ``last.pt`` or ``model.pt``) and its ``extra``."""
    loaded = load_detector_file(run_dir / name)
    return loaded.detector, dict(loaded.record)


def save_final_model(run_dir: Path, detector: Detector, extra: Mapping[str, Any]) -> Path:
    """Write ``model.pt``; its path."""
    path = run_dir / FINAL_MODEL
    save_detector(path, detector, extra)
    return path


def has_final_model(run_dir: Path) -> bool:
    """Whether the run has written ``model.pt``."""
    return (run_dir / FINAL_MODEL).is_file()


# --------------------------------------------------------------------------- evaluation
def read_evaluation(run_dir: Path) -> dict[str, Any] | None:
    """A run's ``evaluation.json``, or ``None`` when it has none."""
    path = run_dir / EVALUATION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise VocalfrontError(f"{path}: unreadable evaluation ({error})") from None


def write_evaluation(run_dir: Path, evaluation: Mapping[str, Any]) -> None:
    """Write ``evaluation.json`` atomically."""
    write_text_atomic(run_dir / EVALUATION_FILE, json.dumps(json_safe(dict(evaluation)), indent=2) + "\n")
