"""Files that survive crashes and concurrent writers: atomic writes and process locks."""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

_held_locks: set[str] = set()
"""Lock files this process holds (resolved paths): taking one again is a no-op."""


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On an exception (Ctrl-C included, even one arriving just after the temporary file was
    created) the temporary file is removed and ``path`` is left as it was. The file gets the
    permissions ``open()`` would give it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # named before it exists, so the cleanup below knows it whenever an interrupt arrives
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def json_safe(value: Any) -> Any:
    """``value`` with NaN/Inf floats replaced by ``None``, recursively (strict JSON)."""
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextlib.contextmanager
def process_lock(path: str | Path) -> Iterator[str | None]:
    """Hold an exclusive lock on the file ``path``; yields ``None``, or who holds it already.

    An advisory ``flock`` lock: the operating system releases it when the holder exits, however
    it exits, so a killed run never leaves a stale lock. When another process holds it, nothing
    is taken and its description (``"process <pid> on <host>"``) is yielded, so the caller can
    skip the work. The file stays in place (removing a lock file races with the next locker).
    The lock is re-entrant: a process that holds it already (an experiment run that trains) gets
    ``None`` and nothing changes. Where ``fcntl`` is missing (Windows), no lock is taken and
    ``None`` is yielded.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if key in _held_locks:
        yield None
        return
    with open(path, "a+", encoding="utf-8") as handle:
        if fcntl is None:
            yield None
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            yield handle.read().strip() or "another process"
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        _held_locks.add(key)
        try:
            yield None
        finally:
            _held_locks.discard(key)
            handle.truncate(0)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
