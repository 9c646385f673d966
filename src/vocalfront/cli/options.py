"""Argument types shared by the sub-commands: checked while the command line is parsed, so that
bad values are one-line usage errors before any work starts."""

from __future__ import annotations

import argparse
import math


def probability(text: str) -> float:
    """A number in [0, 1] (a decision threshold)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability between 0 and 1")
    return value


def non_negative_seconds(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more seconds")
    return value


def non_negative_frames(text: str) -> int:
    """A whole number of frames, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of frames") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more frames")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value
