"""Score a detector on a labelled dataset: readers by format, splits, predictions, threshold.

The library behind ``vocalfront evaluate`` and ``vocalfront experiment``. Readers are opened on
the detector's frame grid (:func:`open_dataset`), so labels and predictions have the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .data.check import READERS, detect_format
from .data.readers import Clip, ClipDataset
from .data.split import mir1k_split_of, singer_split
from .detector_file import LoadedModel
from .errors import VocalfrontError
from .evaluation import choose_threshold, median_smooth
from .grid import FrameGrid
from .inference import predict_waveform

METRICS = ("error", "precision", "recall", "f_measure", "specificity", "auroc")
"""Columns of the printed tables; all but ``auroc`` are shown in percent."""


@dataclass
class Predictions:
    """Per-clip raw probabilities and 0/1 frame labels ``(frames,)``; clips that failed, as
    ``file: problem`` lines."""

    names: list[str]
    probabilities: list[np.ndarray]
    labels: list[np.ndarray]
    failed: list[str]


def open_dataset(root: Path, fmt: str, cache_dir: Path | None,
                 grid: FrameGrid) -> tuple[ClipDataset, str]:
    """The reader of ``root`` for ``fmt`` (``auto``: detected), with labels on ``grid`` (the
    detector's), and the format name."""
    if fmt == "auto":
        if not root.is_dir():
            raise VocalfrontError(f"{root}: dataset folder not found")
        fmt = detect_format(root)
    return READERS[fmt](root, grid=grid, cache_dir=cache_dir), fmt


def split_of(fmt: str, clip: Clip) -> str | None:
    """The split a clip belongs to: MIR-1K by singer and song (singers of no split are
    ``test``; songs left out of the split, None), else its metadata."""
    if fmt == "mir1k":
        return mir1k_split_of(clip.metadata) if singer_split(clip.metadata["singer"]) else "test"
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
    """Validation clips: all of ``valid_data`` (read on ``dataset``'s grid) if given, else the
    dataset's ``valid`` split, else None."""
    if valid_data is not None:
        other = READERS[fmt](valid_data, grid=dataset.grid, cache_dir=cache_dir)
        return other, other.clips
    clips = [clip for clip in dataset.clips if split_of(fmt, clip) == "valid"]
    return (dataset, clips) if clips else None


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
    """Probabilities and labels of ``clips``; a clip that cannot be loaded is recorded and skipped.
    ``dataset`` must read labels on the detector's frame grid."""
    if dataset.grid != model.detector.grid:
        raise VocalfrontError(f"{dataset.root}: labels on {dataset.grid}, but the detector's frames are "
                              f"on {model.detector.grid}; open the dataset on the detector's grid")
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
