"""Where a run's audio comes from: the corpora of the ``[data]`` section, split into training,
validation and test readers, and the instrumental music of each split.

A run trains on its main dataset (``data.root``: MIR-1K with its fixed singer- and
song-disjoint split, a Jamendo-style corpus, or a labelled folder) and, when given, the solo
corpora SSVD and GTSinger (their fixed recording splits, :mod:`vocalfront.data.solo`). The
instrumental music folder is split by top-level subfolder: ``instrumental_valid`` and
``instrumental_test`` are held out of training, for the validation and test mixtures.

Every reader and the music are opened on the detector's frame grid (its sample rate, hop and
window), so labels land on the frames the detector computes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..data.readers import ClipDataset, JamendoDataset, LabelledFolder
from ..data.remix import InstrumentalPool
from ..data.solo import GtsingerDataset, GtsingerSpeechDataset, SsvdDataset
from ..data.split import mir1k_split
from ..errors import VocalfrontError
from ..grid import FrameGrid
from .config import DataConfig

Split = Literal["train", "valid", "test"]


@dataclass(frozen=True)
class Source:
    """One corpus of a run: its ``name``, ``train``, ``valid`` and ``test`` readers (``test``
    None when the corpus has no test clips), and whether its clips are ``solo`` voices (remixed
    over music in training, mixed over held-out music for validation and test)."""

    name: str
    train: ClipDataset
    valid: ClipDataset
    test: ClipDataset | None = None
    solo: bool = False

    def reader(self, split: Split) -> ClipDataset | None:
        """The reader of ``split``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[split]


def open_sources(config: DataConfig, grid: FrameGrid) -> list[Source]:
    """The corpora of the ``[data]`` section (paths must be resolved) with targets on ``grid``:
    the main dataset (``root``), then SSVD and GTSinger when given, then GTSinger's speech with
    ``gtsinger_speech`` (a warning, and no speech, without ``gtsinger``)."""
    options = _reader_options(config, grid)
    sources = [Source(config.format, *open_datasets(config, grid))]
    if config.gtsinger_speech and not config.gtsinger:
        warnings.warn("data.gtsinger_speech is set but data.gtsinger is not: no speech", stacklevel=2)
    speech = config.gtsinger if config.gtsinger_speech else ""
    for reader, root in ((SsvdDataset, config.ssvd), (GtsingerDataset, config.gtsinger),
                         (GtsingerSpeechDataset, speech)):
        if root:
            everything = reader(root, **options)
            sources.append(Source(reader.SOURCE, subset(everything, "train"), subset(everything, "valid"),
                                  subset(everything, "test", required=False), solo=True))
    return sources


def opened_weights(config: DataConfig, sources: Sequence[Source]) -> dict[str, float]:
    """``config.source_weights`` of the ``sources`` a run opened (:func:`open_sources`). A source
    given a weight but not opened, because its folder is not set, is left out with a warning,
    as the remix modes that need music are when ``instrumental`` is not set: one recipe file
    (``configs/default.toml``) trains on whichever corpora a user has."""
    opened = {source.name for source in sources}
    missing = [name for name, weight in config.source_weights.items() if weight > 0 and name not in opened]
    if missing:
        warnings.warn(f"data.source_weights: {', '.join(missing)} not opened (no folder given): "
                      "weight ignored", stacklevel=2)
    return {name: weight for name, weight in config.source_weights.items() if name in opened}


def open_datasets(config: DataConfig, grid: FrameGrid) -> tuple[ClipDataset, ClipDataset, ClipDataset | None]:
    """``(train, valid, test)`` readers of the main dataset of the ``[data]`` section (``root``
    must be resolved) with targets on ``grid``; ``test`` is None when the dataset has no test
    split."""
    options = _reader_options(config, grid)
    if config.format == "mir1k":
        return mir1k_split(config.root, **options)
    reader = JamendoDataset if config.format == "jamendo" else LabelledFolder
    train_set = reader(config.root, **options)
    if config.valid_root:
        return train_set, reader(config.valid_root, **options), None
    if config.format == "jamendo":
        return (subset(train_set, "train"), subset(train_set, "valid"),
                subset(train_set, "test", required=False))
    raise VocalfrontError("data.format 'folder' needs data.valid_root (a folder of validation clips)")


def _reader_options(config: DataConfig, grid: FrameGrid) -> dict[str, Any]:
    return {"grid": grid, "cache_dir": config.cache_dir or None, "on_error": config.on_error}


def subset(dataset: ClipDataset, split: str, required: bool = True) -> ClipDataset | None:
    """A copy of ``dataset`` with only the clips whose metadata ``split`` is ``split``; none is an
    error when ``required``, else ``None``."""
    clips = [clip for clip in dataset.clips if clip.metadata.get("split") == split]
    if not clips:
        if not required:
            return None
        raise VocalfrontError(f"{dataset.root}: no '{split}' clips (filelists/{split} missing or "
                              "empty); give data.valid_root")
    chosen = copy.copy(dataset)
    chosen.clips = clips
    return chosen


def sample(dataset: ClipDataset, count: int, rng: np.random.Generator) -> ClipDataset:
    """A copy of ``dataset`` with ``count`` of its clips drawn by ``rng`` (kept in their order);
    ``dataset`` itself when it has no more than ``count``."""
    if len(dataset.clips) <= count:
        return dataset
    chosen = copy.copy(dataset)
    chosen.clips = [dataset.clips[i] for i in sorted(rng.choice(len(dataset.clips), count, replace=False))]
    return chosen


def uses_training_music(config: DataConfig) -> bool:
    """Whether training draws on ``data.instrumental``: remixing on, the folder given, and a
    remix mode that needs music (MIR-1K's, or the solo voices' when there are any)."""
    return bool(config.remix_enabled and config.instrumental
                and (config.remix.needs_music
                     or ((config.ssvd or config.gtsinger) and config.solo_remix.needs_music)))


def instrumental_pool(config: DataConfig, split: Split, grid: FrameGrid) -> InstrumentalPool | None:
    """The instrumental music of ``split`` at ``grid``'s sample rate: ``train`` (remix modes
    ``external`` and ``instrumental``; the subfolders ``instrumental_train``, or all but the
    held-out ones when it is empty), ``valid`` or ``test`` (the subfolders ``instrumental_valid``
    / ``instrumental_test``); ``None`` when not used."""
    if not (config.remix_enabled and config.instrumental):
        return None
    options: dict[str, Any] = {"max_seconds": config.instrumental_max_seconds or None,
                               "cache_dir": config.cache_dir or None, "sample_rate": grid.sample_rate}
    if split == "train":
        if not uses_training_music(config):
            return None
        return InstrumentalPool(config.instrumental, **options,
                                folders=config.instrumental_train or None,
                                skip_folders=(*config.instrumental_valid, *config.instrumental_test))
    folders = heldout_music_folders(config, split)
    return InstrumentalPool(config.instrumental, **options, folders=folders) if folders else None


def heldout_music_folders(config: DataConfig, split: Split) -> tuple[str, ...]:
    """The subfolders of ``data.instrumental`` held out for ``split`` (``valid`` or ``test``),
    empty when the configuration gives that split no music (nothing is decoded)."""
    folders = config.instrumental_valid if split == "valid" else config.instrumental_test
    return tuple(folders) if config.remix_enabled and config.instrumental and split != "train" else ()
