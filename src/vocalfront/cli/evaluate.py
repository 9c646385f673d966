"""``vocalfront evaluate --model FILE --data DIR``: frame-wise metrics of a detector on a dataset.

The protocol of Schlüter & Grill (2015): every frame is predicted, the curves are median-smoothed
(56 frames), the threshold maximising accuracy is chosen on validation clips and frozen, and the
evaluated clips are scored pooled over all frames (error, precision, recall, F-measure,
specificity; AUROC of the unsmoothed probabilities) and per file.

Splits (``--split``): MIR-1K ``train``/``valid`` are the fixed singer split of
:mod:`vocalfront.data.split` and ``test`` every other singer (the held-out singers of a full
MIR-1K); Jamendo splits come from ``filelists/<split>``; ``all`` is every clip. The default
evaluates ``test`` when the dataset has test clips, else (folders without splits) ``all``.
The threshold comes from the dataset's ``valid`` split, or from ``--valid-data``, when there is
one, else from the model file; ``--threshold-from`` overrides that.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..audio import CACHE_ENV
from ..data.check import detect_format
from ..data.readers import Clip, ClipDataset, JamendoDataset, LabelledFolder, Mir1kDataset
from ..data.split import mir1k_split_of
from ..detect import LoadedModel, load_model
from ..errors import VocalfrontError
from ..evaluation import SMOOTHING_FRAMES, EvaluationReport, choose_threshold, evaluate_files, median_smooth
from ..fileio import write_text_atomic
from ..inference import predict_waveform
from .detect import set_threads

READERS: dict[str, type[ClipDataset]] = {
    "mir1k": Mir1kDataset, "jamendo": JamendoDataset, "folder": LabelledFolder}
SPLITS = ("auto", "test", "valid", "train", "all")
METRICS = ("error", "precision", "recall", "f_measure", "specificity", "auroc")
"""Columns of the printed tables; all but ``auroc`` are shown in percent."""
CSV_COLUMNS = ("name", "frames", "tp", "fp", "tn", "fn", "accuracy", *METRICS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, metavar="FILE",
                        help="detector file (default: the packaged model)")
    parser.add_argument("--data", type=Path, required=True, metavar="DIR", help="dataset folder")
    parser.add_argument("--format", choices=("auto", *READERS), default="auto",
                        help="dataset layout (default: detected)")
    parser.add_argument("--split", choices=SPLITS, default="auto",
                        help="clips to score (default: test if the dataset has test clips, else all)")
    parser.add_argument("--threshold-from", default=None, metavar="valid|model|X",
                        help="choose the threshold on validation clips, take the model's, or use X "
                        "(default: valid when there are validation clips, else model)")
    parser.add_argument("--valid-data", type=Path, default=None, metavar="DIR",
                        help="validation clips in another folder of the same format (all its clips)")
    parser.add_argument("--smooth", type=int, default=SMOOTHING_FRAMES, metavar="FRAMES",
                        help=f"median filter length (default: {SMOOTHING_FRAMES} = 0.8 s)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write metrics.json and per_file.csv here")
    parser.add_argument("--per-file", action="store_true", help="also print the per-file table")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help=f"cache decoded audio here (default: ${CACHE_ENV}, else no cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")


@dataclass
class Predictions:
    """Per-clip raw probabilities and 0/1 frame labels ``(frames,)``; clips that failed, as
    ``file: problem`` lines."""

    names: list[str]
    probabilities: list[np.ndarray]
    labels: list[np.ndarray]
    failed: list[str]


def run(args: argparse.Namespace) -> int:
    if args.smooth < 0:
        raise VocalfrontError(f"--smooth must be a non-negative number of frames, got {args.smooth}")
    set_threads(args.threads)
    model = load_model(args.model)
    dataset, fmt = open_dataset(args.data, args.format, args.cache)
    split = resolve_split(dataset, fmt, args.split)
    valid = validation_clips(dataset, fmt, args.valid_data, args.cache)
    source = resolve_threshold_source(args.threshold_from, valid is not None)
    progress = not args.no_progress and sys.stderr.isatty()
    tested = predict(model, dataset, select(dataset, fmt, split), progress, "testing")
    if not tested.names:
        raise VocalfrontError(f"{args.data}: no clip of split '{split}' could be evaluated")
    threshold, how = pick_threshold(source, model, valid, args.smooth, progress)
    if source == "valid" and valid is not None and valid[0] is dataset and split in ("valid", "all"):
        how += " - the evaluated clips include them, so the scores are optimistic"
    report = evaluate_files(tested.probabilities, tested.labels, threshold, tested.names, args.smooth)
    clips = f"{len(tested.names)} clip{'' if len(tested.names) == 1 else 's'}"
    print(f"{args.data} ({fmt}, split {split}): {clips}; threshold "
          f"{threshold:.4f} ({how}); median filter {args.smooth} frames")
    print(markdown_table([("pooled", report.pooled)], "set"))
    if args.per_file:
        print("\n" + markdown_table([(row["name"], row) for row in report.files], "file"))
    if args.out is not None:
        write_results(args.out, report, {"model": model.source, "data": str(args.data), "format": fmt,
                                         "split": split, "threshold_from": how,
                                         "failed": tested.failed})
    for line in tested.failed:
        print(f"skipped {line}", file=sys.stderr)
    return 1 if tested.failed else 0


def open_dataset(root: Path, fmt: str, cache_dir: Path | None) -> tuple[ClipDataset, str]:
    """The reader of ``root`` for ``fmt`` (``auto``: detected) and the format name."""
    if fmt == "auto":
        if not root.is_dir():
            raise VocalfrontError(f"{root}: dataset folder not found")
        fmt = detect_format(root)
    return READERS[fmt](root, cache_dir=cache_dir), fmt


def split_of(fmt: str, clip: Clip) -> str | None:
    """The split a clip belongs to: MIR-1K by singer (others are ``test``), else its metadata."""
    if fmt == "mir1k":
        return mir1k_split_of(clip.metadata["singer"]) or "test"
    return clip.metadata.get("split")


def resolve_split(dataset: ClipDataset, fmt: str, split: str) -> str:
    """``auto`` → ``test`` when the dataset has test clips, ``all`` when it has no splits."""
    if split != "auto":
        return split
    splits = {split_of(fmt, clip) for clip in dataset.clips}
    if "test" in splits:
        return "test"
    if splits == {None}:
        return "all"
    raise VocalfrontError(f"{dataset.root}: no test clips (splits: {', '.join(sorted(map(str, splits)))}); "
                          "choose one with --split")


def select(dataset: ClipDataset, fmt: str, split: str) -> list[Clip]:
    """The clips of ``split`` (``all``: every clip); none is an error."""
    clips = [clip for clip in dataset.clips if split == "all" or split_of(fmt, clip) == split]
    if not clips:
        raise VocalfrontError(f"{dataset.root}: no clips in split '{split}'")
    return clips


def validation_clips(dataset: ClipDataset, fmt: str, valid_data: Path | None,
                     cache_dir: Path | None) -> tuple[ClipDataset, list[Clip]] | None:
    """Validation clips: all of ``valid_data`` if given, else the dataset's ``valid`` split,
    else None."""
    if valid_data is not None:
        other = READERS[fmt](valid_data, cache_dir=cache_dir)
        return other, other.clips
    clips = [clip for clip in dataset.clips if split_of(fmt, clip) == "valid"]
    return (dataset, clips) if clips else None


def resolve_threshold_source(text: str | None, have_valid: bool) -> str | float:
    """``valid``, ``model`` or a number from ``--threshold-from`` (default: valid if possible)."""
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
    if not math.isfinite(value):
        raise VocalfrontError(f"--threshold-from {text!r}: the threshold must be finite")
    return value


def pick_threshold(source: str | float, model: LoadedModel,
                   valid: tuple[ClipDataset, list[Clip]] | None, smooth: int,
                   progress: bool) -> tuple[float, str]:
    """The decision threshold and a note saying where it came from."""
    if isinstance(source, float):
        return source, "given"
    if source == "model" or valid is None:
        return model.threshold, f"stored in {model.source or 'the model'}"
    predictions = predict(model, *valid, progress, "validation")
    if not predictions.names:
        raise VocalfrontError(f"{valid[0].root}: no validation clip could be evaluated")
    curves = [median_smooth(p, smooth) for p in predictions.probabilities]
    note = f"chosen on {len(predictions.names)} validation clips"
    if predictions.failed:
        note += f", {len(predictions.failed)} unreadable ones left out"
    return choose_threshold(curves, predictions.labels), note


def predict(model: LoadedModel, dataset: ClipDataset, clips: list[Clip], progress: bool,
            what: str) -> Predictions:
    """Probabilities and labels of ``clips``; a clip that cannot be loaded is recorded and skipped."""
    result = Predictions([], [], [], [])
    for clip in tqdm(clips, desc=what, unit="clip", disable=not progress):
        try:
            item = dataset.load(clip)
            probabilities = predict_waveform(model.detector, item.audio, source=str(clip.audio_path))
        except VocalfrontError as error:
            result.failed.append(str(error))
            continue
        result.names.append(clip.name)
        result.probabilities.append(probabilities)
        result.labels.append(item.labels)
    return result


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


def _plain(value: Any) -> Any:
    """JSON-safe value: NaN becomes None."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write_results(out: Path, report: EvaluationReport, info: dict[str, Any]) -> None:
    """``out/metrics.json`` (settings, threshold, pooled metrics) and ``out/per_file.csv``."""
    document = {**info, "threshold": report.threshold, "smoothing": report.smoothing,
                "clips": len(report.files),
                "pooled": {key: _plain(value) for key, value in report.pooled.items()}}
    write_text_atomic(out / "metrics.json", json.dumps(document, indent=2, allow_nan=False) + "\n")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if _plain(value) is None else value for key, value in row.items()}
                     for row in report.files)
    write_text_atomic(out / "per_file.csv", buffer.getvalue())
