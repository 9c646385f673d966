"""Interleaved, warmed-up timing: ratios against a reference from the same run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(functions: dict[str, Callable[[], object]], repeats: int = 5,
                   warmup: int = 1) -> dict[str, float]:
    """Median wall time (s) of each function; runs are interleaved so machine noise is shared."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
