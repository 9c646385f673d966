"""The one check of command-line options, run before a command does any work.

A command module lists its checked options in ``OPTIONS`` (argparse ``dest`` → rule); ``main``
checks every argument with :func:`check_arguments` and the parsed values with
:func:`check_options`. Each refusal is a one-line :class:`~vocalfront.errors.VocalfrontError`
naming the option, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VocalfrontError


@dataclass(frozen=True)
class Number:
    """A finite number from ``low`` to ``high`` (inclusive); ``whole`` asks for an integer.
    ``high=None`` is the number of CPUs of this machine (for thread counts)."""

    low: float
    high: float | None = math.inf
    whole: bool = False

    def check(self, option: str, value: Any) -> None:
        high = self.high if self.high is not None else cpu_count()
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not self.low <= value <= high or (self.whole and value != int(value)):
            kind = "a whole number" if self.whole else "a number"
            upper = "" if math.isinf(high) else f" to {high:g}"
            cpus = " (the CPUs of this machine)" if self.high is None else ""
            raise VocalfrontError(f"{option} {value}: must be {kind} from {self.low:g}{upper}{cpus}")


@dataclass(frozen=True)
class Numbers:
    """A list (``nargs``) of at most ``most`` distinct values, each checked by ``each``."""

    each: Number
    most: int

    def check(self, option: str, value: Any) -> None:
        if len(value) > self.most:
            raise VocalfrontError(f"{option}: at most {self.most} values, got {len(value)}")
        for item in value:
            self.each.check(option, item)
        repeated = sorted({item for item in value if value.count(item) > 1})
        if repeated:
            raise VocalfrontError(f"{option} {' '.join(map(str, repeated))}: given more than once")


@dataclass(frozen=True)
class OutFolder:
    """A folder to write into: missing (it is created) or an existing folder, not a file."""

    def check(self, option: str, value: Any) -> None:
        path = Path(value)
        if path.exists() and not path.is_dir():
            raise VocalfrontError(f"{option} {value}: exists and is not a folder")


@dataclass(frozen=True)
class OneOf:
    """One of the whole numbers ``values``."""

    values: tuple[int, ...]

    def check(self, option: str, value: Any) -> None:
        if isinstance(value, bool) or value not in self.values:
            raise VocalfrontError(f"{option} {value}: must be one of {', '.join(map(str, self.values))}")


Rule = Number | Numbers | OutFolder | OneOf


def cpu_count() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_arguments(argv: Sequence[str]) -> None:
    """Refuse an empty argument (``""`` or ``--out=``): as a path it would mean the current
    folder, and it is never a valid number or name."""
    for index, argument in enumerate(argv):
        option, equals, value = argument.partition("=")
        if argument.startswith("--") and equals and not value.strip():
            raise VocalfrontError(f"{option}: empty value")
        if not argument.strip():
            before = argv[index - 1] if index and argv[index - 1].startswith("-") else None
            raise VocalfrontError(f"{before}: empty value" if before else
                                  f"argument {index + 1} is empty (an empty path is not the "
                                  "current folder; write . for that)")


def check_options(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Check each option named in ``rules`` (by ``dest``) that was given (not ``None``)."""
    for dest, rule in rules.items():
        value = values.get(dest)
        if value is not None:
            rule.check("--" + dest.replace("_", "-"), value)
