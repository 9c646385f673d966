"""How long the ``vocalfront`` command takes to answer without doing work (issue 20, item 4).

Runs ``--version``, ``--help`` and an argument error several times each in fresh interpreters
and prints the median wall time, beside a bare ``python -c pass`` and ``import torch`` for
scale. Usage: ``PYTHONPATH=src python scripts/measure_startup.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import torch'": ["-c", "import torch"],
    "vocalfront --version": ["-m", "vocalfront", "--version"],
    "vocalfront --help": ["-m", "vocalfront", "--help"],
    "vocalfront detect --help": ["-m", "vocalfront", "detect", "--help"],
    "vocalfront detect x.wav --threshold 2": ["-m", "vocalfront", "detect", "x.wav", "--threshold", "2"],
}


def median_seconds(arguments: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, *arguments], capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    print(f"| command | median of {repeat} (s) |\n|---|---|")
    for name, arguments in CASES.items():
        print(f"| `{name}` | {median_seconds(arguments, repeat):.2f} |")


if __name__ == "__main__":
    main()
