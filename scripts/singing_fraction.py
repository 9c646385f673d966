"""Rank audio files by how much of them a detector called singing, from `vocalfront detect` JSON.

Used to screen instrumental music for hidden voices before it serves as negatives:

    vocalfront detect MUSIC/PACKAGE --out screen/PACKAGE --format json      # each folder
    python scripts/singing_fraction.py screen --top 25

prints, per folder below the given ones, the share of time in singing segments, then the
``--top`` files with the largest share (seconds of singing, share, file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def read_output(path: Path) -> tuple[str, float, float]:
    """(song file, duration in seconds, seconds in singing segments) of one detect JSON output;
    ``ValueError`` naming the problem when it is not one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        duration = float(record["duration"])
        sung = sum(float(segment["end"]) - float(segment["start"]) for segment in record["segments"])
        name = str(record["file"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"not a detect JSON output ({type(error).__name__}: {error})") from None
    if not duration > 0:
        raise ValueError(f"not a detect JSON output (duration {duration})")
    return name, duration, sung


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of detect's .json outputs")
    parser.add_argument("--top", type=int, default=20, help="how many files to list (default 20)")
    args = parser.parse_args(argv)
    missing = [folder for folder in args.folders if not folder.is_dir()]
    if missing:
        print(f"error: {missing[0]}: no such folder", file=sys.stderr)
        return 2
    rows = []
    for folder in args.folders:
        for path in sorted(folder.rglob("*.json")):
            if path.name.endswith(".provenance.json"):
                continue
            try:
                name, duration, sung = read_output(path)
            except ValueError as error:
                print(f"skipped {path}: {error}", file=sys.stderr)
                continue
            rows.append((path.parent.name, name, duration, sung))
    if not rows:
        print(f"error: no detect .json outputs in {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 2
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for group, _, duration, sung in rows:
        totals[group][0] += duration
        totals[group][1] += sung
    print("| folder | minutes | called singing |\n|---|---|---|")
    for group, (duration, sung) in sorted(totals.items(), key=lambda item: -item[1][1] / item[1][0]):
        print(f"| {group} | {duration / 60:.1f} | {100 * sung / duration:.1f} % |")
    print("\n| file | seconds called singing | share |\n|---|---|---|")
    for _, name, duration, sung in sorted(rows, key=lambda row: -row[3] / row[2])[: args.top]:
        print(f"| {Path(name).parent.name}/{Path(name).name} | {sung:.1f} | {100 * sung / duration:.0f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
