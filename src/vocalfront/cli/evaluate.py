"""``vocalfront evaluate --model FILE --data DIR``: frame-wise metrics of a detector on a dataset.

The protocol of Schlüter & Grill (2015): every frame is predicted, the curves are median-smoothed
(the model's median filter, 56 frames unless its file says otherwise; ``--smooth``), the
threshold maximising accuracy is chosen on validation clips and frozen, and the
evaluated clips are scored pooled over all frames (error, precision, recall, F-measure,
specificity; AUROC of the unsmoothed probabilities) and per file.

Splits (``--split``): MIR-1K ``train``/``valid``/``test`` are the fixed singer- and
song-disjoint split of :mod:`vocalfront.data.split` (singers outside it count as ``test``; songs
it leaves out are in no split); SSVD and GTSinger use their fixed recording splits, Jamendo its
``filelists/<split>``; ``all`` is every clip. The default
evaluates ``test`` when the dataset has test clips, else (folders without splits) ``all``.
The threshold comes from the dataset's ``valid`` split, or from ``--valid-data``, when there is
one, else from the model file; ``--threshold-from`` overrides that. ``metrics.json`` and
``per_file.csv`` record what made them (:mod:`vocalfront.provenance`). Heavy modules (torch) are
imported in :func:`run`, so that ``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..audio import CACHE_ENV
from ..errors import VocalfrontError
from ..fileio import json_safe, write_text_atomic
from .data import DATASET_FORMATS
from .detect import set_threads
from .options import Number, OutFolder, Rule

if TYPE_CHECKING:
    from ..evaluation import EvaluationReport
    from ..provenance import Provenance

MAX_SMOOTHING = 10_000
"""Longest ``--smooth``; :data:`vocalfront.evaluation.MAX_SMOOTHING` owns it (a test checks)."""
OPTIONS: dict[str, Rule] = {"out": OutFolder(), "smooth": Number(0, MAX_SMOOTHING, whole=True),
                            "threads": Number(1, None, whole=True), "cache": OutFolder()}
"""Options checked before any work (:mod:`.options`)."""
SPLITS = ("auto", "test", "valid", "train", "all")
METRICS = ("error", "precision", "recall", "f_measure", "specificity", "auroc")
"""Columns of the tables; :data:`vocalfront.scoring.METRICS` owns them (a test checks)."""
CSV_COLUMNS = ("name", "frames", "tp", "fp", "tn", "fn", "accuracy", *METRICS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, metavar="FILE",
                        help="detector file (default: the packaged model)")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="dataset folder")
    parser.add_argument("--format", choices=DATASET_FORMATS, default="auto",
                        help="dataset layout (default: detected)")
    parser.add_argument("--split", choices=SPLITS, default="auto",
                        help="clips to score (default: test if the dataset has test clips, else all)")
    parser.add_argument("--threshold-from", default=None, metavar="valid|model|X",
                        help="choose the threshold on validation clips, take the model's, or use X "
                        "(default: valid when there are validation clips, else model)")
    parser.add_argument("--valid-data", type=Path, default=None, metavar="DIR",
                        help="validation clips in another folder of the same format (all its clips)")
    parser.add_argument("--smooth", type=int, default=None, metavar="FRAMES",
                        help="median filter length (default: the model's, as detect uses it; "
                        "56 = 0.8 s when its file stores none)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write metrics.json and per_file.csv here")
    parser.add_argument("--per-file", action="store_true", help="also print the per-file table")
    parser.add_argument("--boundaries", action="store_true",
                        help="also print where the errors lie: false alarms and misses by distance to "
                        "the nearest label change (segment edges against whole passages)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help=f"cache decoded audio here (default: ${CACHE_ENV}, else no cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from ..detect import load_model
    from ..evaluation import errors_by_boundary_distance, evaluate_files, protocol_decisions
    from ..postprocessing import PostProcessing
    from ..provenance import make_provenance
    from ..scoring import open_dataset, pick_threshold, predict, resolve_split, select, validation_clips

    source = resolve_threshold_source(args.threshold_from, have_valid=True)  # checked before work
    set_threads(args.threads)
    model = load_model(args.model)
    smooth = model.smoothing if args.smooth is None else args.smooth
    dataset, fmt = open_dataset(args.data, args.format, args.cache, model.detector.grid)
    split = resolve_split(dataset, fmt, args.split)
    valid = validation_clips(dataset, fmt, args.valid_data, args.cache)
    source = resolve_threshold_source(args.threshold_from, valid is not None)
    progress = not args.no_progress and sys.stderr.isatty()
    tested = predict(model, dataset, select(dataset, fmt, split), progress, "testing")
    if not tested.names:
        raise VocalfrontError(nothing_evaluated(args.data, split, tested.failed))
    threshold, how = pick_threshold(source, model, valid, smooth, progress)
    if source == "valid" and valid is not None and valid[0] is dataset and split in ("valid", "all"):
        how += " - the evaluated clips include them, so the scores are optimistic"
    report = evaluate_files(tested.probabilities, tested.labels, threshold, tested.names, smooth)
    # The protocol scores smoothed frames at one threshold: no peak threshold, no segment limits.
    # A validation choice can be a hair below 0.
    provenance = make_provenance(model.source, PostProcessing(min(max(threshold, 0.0), 1.0), smooth,
                                                              min_duration=0.0, min_gap=0.0))
    clips = f"{len(tested.names)} clip{'' if len(tested.names) == 1 else 's'}"
    print(f"{args.data} ({fmt}, split {split}): {clips}; threshold "
          f"{threshold:.4f} ({how}); median filter {smooth} frames")
    print(markdown_table([("pooled", report.pooled)], "set"))
    if args.per_file:
        print("\n" + markdown_table([(row["name"], row) for row in report.files], "file"))
    info: dict[str, Any] = {"model": model.source, "data": str(args.data), "format": fmt, "split": split,
                            "threshold_from": how, "failed": tested.failed}
    if args.boundaries:
        decisions = [protocol_decisions(p, threshold, smooth) for p in tested.probabilities]
        rows = errors_by_boundary_distance(decisions, tested.labels, model.detector.grid.frame_rate)
        info["boundaries"] = [{key: json_safe(value) for key, value in row.items()} for row in rows]
        print("\n" + boundary_table(info["boundaries"]))
    if args.out is not None:
        write_results(args.out, report, info, provenance)
    for line in tested.failed:
        print(f"skipped {line}", file=sys.stderr)
    return 1 if tested.failed else 0


def nothing_evaluated(data: Path, split: str, failed: list[str]) -> str:
    """The error when no clip of ``split`` could be scored: why (the first failure), and what to
    do when the label files are missing."""
    if not failed:
        return f"{data}: no clip of split '{split}' could be evaluated"
    message = (f"{data}: none of the {len(failed)} clips of split '{split}' could be evaluated; "
               f"first: {failed[0]}")
    if any("no label file" in line or "label file not found" in line for line in failed):
        message += (" - evaluate needs ground truth: a label file beside each song (song.lab with "
                    "'start end sing' lines, .txt or .csv), or a MIR-1K or Jamendo folder")
    return message


def resolve_threshold_source(text: str | None, have_valid: bool) -> str | float:
    """``valid``, ``model`` or a number in [0, 1] from ``--threshold-from`` (default: valid if
    possible)."""
    if text is None:
        return "valid" if have_valid else "model"
    if text in ("valid", "model"):
        if text == "valid" and not have_valid:
            raise VocalfrontError("--threshold-from valid: the dataset has no validation clips; "
                                  "give --valid-data DIR, or use model or a number")
        return text
    try:
        value = float(text)
    except ValueError:
        raise VocalfrontError(f"--threshold-from {text!r}: expected valid, model or a number") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise VocalfrontError(f"--threshold-from {text!r}: the threshold must be a probability "
                              "between 0 and 1")
    return value


def _cell(key: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.4f}" if key == "auroc" else f"{100 * value:.2f}"


def markdown_table(rows: list[tuple[str, dict[str, Any]]], first: str) -> str:
    """A markdown table: one row per ``(name, metrics)``, frames and :data:`METRICS` (rates in %)."""
    header = [first, "frames", *(f"{key} %" if key != "auroc" else key for key in METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, metrics in rows:
        cells = [name, str(metrics["frames"]), *(_cell(key, metrics[key]) for key in METRICS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def boundary_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of :func:`~vocalfront.evaluation.errors_by_boundary_distance` rows."""
    from ..evaluation import BOUNDARY_COLUMNS, boundary_cells

    lines = ["| " + " | ".join(BOUNDARY_COLUMNS) + " |", "|" + "---|" * len(BOUNDARY_COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(boundary_cells(row)) + " |" for row in rows])


def write_results(out: Path, report: EvaluationReport, info: dict[str, Any],
                  provenance: Provenance | None = None) -> None:
    """``out/metrics.json`` (settings, threshold, pooled metrics, provenance) and
    ``out/per_file.csv`` (a ``#`` provenance line above the header when given)."""
    document = {**info, "threshold": report.threshold, "smoothing": report.smoothing,
                "clips": len(report.files),
                "pooled": {key: json_safe(value) for key, value in report.pooled.items()},
                "provenance": None if provenance is None else provenance.to_dict()}
    write_text_atomic(out / "metrics.json", json.dumps(document, indent=2, allow_nan=False) + "\n")
    buffer = io.StringIO()
    if provenance is not None:
        buffer.write(f"# {provenance.to_line()}\n")
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if json_safe(value) is None else value for key, value in row.items()}
                     for row in report.files)
    write_text_atomic(out / "per_file.csv", buffer.getvalue())
