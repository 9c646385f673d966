"""Full training state on disk: written atomically, the previous one kept, a damaged one skipped.

A run folder holds ``state-<update>.pt`` files (``torch.save`` dictionaries with model and
optimiser state, random number generator states, counters - whatever the trainer puts in).
:func:`save_state` writes the new file atomically (:func:`vocalfront.fileio.atomic_write`) and
then deletes all but the newest ``keep`` (default 2). :func:`load_latest_state` reads the newest
file that loads; a file that does not (damaged disk, a copy cut short) costs a warning and the
one before it is used. Files are read with ``weights_only=True``: plain values and tensors only.
"""

from __future__ import annotations

import io
import pickle
import random
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import VocalfrontError
from ..fileio import atomic_write

STATE_FORMAT = "vocalfront-training-state"
STATE_VERSION = 1
_STATE_NAME = re.compile(r"state-(\d+)\.pt")


class StateFileError(VocalfrontError):
    """A training-state file that cannot be used; the message names the file."""


def state_path(run_dir: str | Path, update: int) -> Path:
    """Where the state after ``update`` updates goes: ``run_dir/state-<update, 8 digits>.pt``."""
    return Path(run_dir) / f"state-{update:08d}.pt"


def list_states(run_dir: str | Path) -> list[Path]:
    """State files of ``run_dir``, newest (highest update) first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(update, path) for path in run_dir.iterdir() if (update := _state_update(path)) is not None]
    return [path for _, path in sorted(found, reverse=True)]


def save_state(run_dir: str | Path, update: int, state: dict[str, Any], keep: int = 2,
               keep_every: int = 0) -> Path:
    """Write ``state`` as the state after ``update`` updates, then keep only the newest ``keep``
    and those whose update is a multiple of ``keep_every`` (when it is positive)."""
    path = state_path(run_dir, update)
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, "update": int(update), **state}
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)
    for old in list_states(run_dir)[max(keep, 1):]:
        if keep_every <= 0 or (_state_update(old) or 0) % keep_every:
            old.unlink(missing_ok=True)
    return path


def _state_update(path: Path) -> int | None:
    """The update of a state file named by :func:`state_path`; ``None`` for other names."""
    match = _STATE_NAME.fullmatch(path.name)
    return None if match is None else int(match.group(1))


def read_state(path: str | Path) -> dict[str, Any]:
    """One state file; :class:`StateFileError` when it cannot be read or is not a training state."""
    path = Path(path)
    try:
        payload = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except OSError as error:
        raise StateFileError(f"{path}: cannot read ({error.strerror or error})") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StateFileError(f"{path}: damaged training state ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise StateFileError(f"{path}: not a vocalfront training state")
    if payload.get("version") != STATE_VERSION:
        raise StateFileError(f"{path}: unsupported training state version {payload.get('version')!r}")
    return payload


def load_latest_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The newest readable state of ``run_dir`` (``None`` when there is none).

    Unreadable newer files are skipped with a warning; if every file is unreadable, the
    :class:`StateFileError` of the newest is raised rather than silently starting over.
    """
    paths = list_states(run_dir)
    errors: list[StateFileError] = []
    for path in paths:
        try:
            state = read_state(path)
        except StateFileError as error:
            warnings.warn(f"{error}; trying the previous checkpoint", stacklevel=2)
            errors.append(error)
            continue
        return state
    if errors:
        raise errors[0]
    return None


def rng_states(device: torch.device | None = None) -> dict[str, Any]:
    """States of Python's, NumPy's global and torch's CPU random number generators, and of
    ``device``'s generator (key ``cuda``) when that is a CUDA device."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"] = {"key": numpy_state["state"]["key"].tolist(),
                            "pos": int(numpy_state["state"]["pos"])}
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(states: dict[str, Any], device: torch.device | None = None) -> None:
    """Undo everything random since :func:`rng_states` returned ``states`` (the CUDA generator's
    state is restored on ``device`` when both are CUDA)."""
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    numpy_state = dict(states["numpy"])
    numpy_state["state"] = {"key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
                            "pos": numpy_state["state"]["pos"]}
    np.random.set_state(numpy_state)
    torch.set_rng_state(states["torch"])
    if "cuda" in states and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)
