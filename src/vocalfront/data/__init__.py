"""Datasets: label files, corpus readers, the fixed MIR-1K split, and dataset checks."""

from .check import Problem, Report, SplitSummary, check_dataset, detect_format
from .labels import (
    JAMENDO_LABELS,
    SINGING_LABELS,
    mir1k_frames_to_grid,
    read_mir1k_labels,
    read_segments,
    segments_to_frames,
    validate_segments,
)
from .readers import (
    Clip,
    ClipDataset,
    JamendoDataset,
    LabelledAudio,
    LabelledFolder,
    Mir1kDataset,
)
from .split import MIR1K_TRAIN_SINGERS, MIR1K_VALID_SINGERS, mir1k_split, mir1k_split_of

__all__ = [
    "JAMENDO_LABELS",
    "MIR1K_TRAIN_SINGERS",
    "MIR1K_VALID_SINGERS",
    "SINGING_LABELS",
    "Clip",
    "ClipDataset",
    "JamendoDataset",
    "LabelledAudio",
    "LabelledFolder",
    "Mir1kDataset",
    "Problem",
    "Report",
    "SplitSummary",
    "check_dataset",
    "detect_format",
    "mir1k_frames_to_grid",
    "mir1k_split",
    "mir1k_split_of",
    "read_mir1k_labels",
    "read_segments",
    "segments_to_frames",
    "validate_segments",
]
