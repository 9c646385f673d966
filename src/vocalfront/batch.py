"""Run one job per audio file over many files: collect them, split them across machines, go on
past failures and report them.

Interruption safety is the job's part: ``process`` writes each output atomically
(:mod:`vocalfront.fileio`), so an interrupted batch leaves, per file, complete outputs or none,
and a rerun with ``skip_existing`` resumes where it stopped.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .audio import AUDIO_EXTENSIONS, audio_files
from .errors import VocalfrontError


def collect_audio_files(paths: Iterable[str | Path]) -> list[Path]:
    """Audio files named by ``paths``, sorted, each once.

    A file is taken as it is, whatever its extension; a folder is searched recursively by
    :func:`vocalfront.audio.audio_files`. Raises :class:`VocalfrontError` for an empty path
    (``Path("")`` would be the current folder), a path that does not exist, a folder that cannot
    be read (given or found below, before any file is processed) and when nothing is found.
    """
    given = list(paths)
    if any(isinstance(path, str) and not path.strip() for path in given):
        raise VocalfrontError("empty path: name a file or folder (. for the current folder)")
    paths = [Path(path) for path in given]
    found: dict[Path, Path] = {}
    for path in paths:
        for file in _files_under(path):
            found.setdefault(file.resolve(), file)
    if not found:
        where = ", ".join(map(str, paths))
        raise VocalfrontError(f"{where}: no audio files found ({' '.join(AUDIO_EXTENSIONS)})")
    return sorted(found.values())


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise VocalfrontError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise VocalfrontError(f"{path}: not a regular file or folder (a pipe or device?)")
    return audio_files(path)


def parse_shard(spec: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (shard ``i`` of ``n``, ``0 <= i < n``) into ``(i, n)``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if match is None:
        raise VocalfrontError(f"shard {spec!r}: expected INDEX/COUNT, e.g. 0/4 for the first of 4")
    index, count = int(match[1]), int(match[2])
    _check_shard(index, count)
    return index, count


def _check_shard(index: int, count: int) -> None:
    if count < 1:
        raise VocalfrontError(f"shard {index}/{count}: the count must be at least 1")
    if not 0 <= index < count:
        raise VocalfrontError(f"shard {index}/{count}: the index must be 0 to {count - 1}")


def shard(files: Iterable[Path], index: int, count: int) -> list[Path]:
    """Shard ``index`` of ``count``: after sorting by path, file ``k`` goes to shard ``k % count``.

    The shards of one file list are disjoint and together hold every file, on any machine.
    """
    _check_shard(index, count)
    return sorted(files)[index::count]


def check_unique_outputs(files: Iterable[Path], output_for: Callable[[Path], Path]) -> None:
    """Raise :class:`VocalfrontError` if two input files would write the same output file
    (``output_for`` maps an input to one of its outputs, e.g. ``song.wav`` → ``out/song.lab``)."""
    claimed: dict[Path, Path] = {}
    for file in files:
        output = output_for(file)
        if output in claimed:
            raise VocalfrontError(
                f"{claimed[output]} and {file} would both write {output}; "
                "rename one or process them separately"
            )
        claimed[output] = file


@dataclass
class BatchReport:
    """What a batch did: files processed, skipped (outputs existed) and failed."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """One line per failed file: ``file: problem``."""

    def summary(self) -> str:
        """A count line, then the failure lines indented."""
        counts = (
            f"{len(self.done)} done, {len(self.skipped)} skipped (outputs exist), "
            f"{len(self.failed)} failed"
        )
        return "\n".join([counts, *(f"  {line}" for line in self.failed)])

    def exit_status(self) -> int:
        """Process exit status: 1 if any file failed, else 0."""
        return 1 if self.failed else 0


def run_batch(
    files: Sequence[Path],
    process: Callable[[Path], None],
    outputs_exist: Callable[[Path], bool] | None = None,
    skip_existing: bool = False,
    progress: bool = True,
) -> BatchReport:
    """Call ``process(file)`` for each file in order and report.

    With ``skip_existing``, files for which ``outputs_exist(file)`` is true are skipped. A file
    whose processing raises an exception is recorded as failed and the batch goes on
    (``KeyboardInterrupt`` stops it). The progress bar (on stderr) shows only when ``progress``
    is true and stderr is a terminal.
    """
    if skip_existing and outputs_exist is None:
        raise ValueError("skip_existing needs outputs_exist to tell which files are done")
    report = BatchReport()
    show = progress and sys.stderr.isatty()
    for file in tqdm(files, unit="file", disable=not show):
        if skip_existing and outputs_exist is not None and outputs_exist(file):
            report.skipped.append(file)
            continue
        try:
            process(file)
        except (ValueError, OSError) as error:
            report.failed.append(_failure_line(file, str(error)))
        except Exception as error:  # a bug on one file must not lose the rest of the batch
            report.failed.append(_failure_line(file, f"{type(error).__name__}: {error}"))
        else:
            report.done.append(file)
    return report


def _failure_line(file: Path, problem: str) -> str:
    """``file: problem`` on one line, without naming the file twice."""
    problem = " ".join(problem.split()) or "failed without a message"
    return problem if problem.startswith(f"{file}:") else f"{file}: {problem}"
