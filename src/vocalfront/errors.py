"""Exceptions with one-line messages meant for users.

Every error raised on bad input is a ``ValueError`` subclass whose message names the file (when
there is one) and the problem, so the CLI prints it on one line without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class VocalfrontError(ValueError):
    """Bad input or configuration; the message is a complete one-line explanation."""


class AudioError(VocalfrontError):
    """An audio file or array that cannot be used."""

    def __init__(self, source: str | Path | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)


class LabelError(VocalfrontError):
    """A label/annotation file that cannot be used; ``line`` is 1-based when known."""

    def __init__(self, source: str | Path, problem: str, line: int | None = None):
        self.source = str(source)
        self.problem = problem
        self.line = line
        where = f"{self.source}:{line}" if line is not None else self.source
        super().__init__(f"{where}: {problem}")
