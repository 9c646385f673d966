"""Readers of solo singing (a voice alone, no accompaniment): SSVD and GTSinger.

Both give :class:`~.readers.LabelledAudio` like every reader: mono float32 audio at the grid's
rate, 0/1 singing targets on the grid. Mixed over instrumental music
(:mod:`vocalfront.data.remix`), a solo voice gives a training or validation mixture with exact
labels. Each clip's metadata has ``split`` (``train``, ``valid`` or ``test``, fixed by
:func:`split_of_key` from a key that keeps near-duplicate recordings together) and ``source``.

- :class:`SsvdDataset`: SSVD v2.0 (sight-singing by many amateur singers, phone recordings),
  ``<id>.opus`` + ``<id>.txt`` with one note a line, ``onset offset midi_pitch`` (seconds),
  in ``train_valid/`` and ``test/``. Singing = inside a note; gaps between notes shorter than
  ``merge_gap`` seconds (breaths within a phrase) count as singing too, as in the phrase-level
  labels of produced songs.
- :class:`GtsingerDataset`: GTSinger demo recordings (professional singers, 9 languages,
  several techniques) in ``singing/``, without time labels: singing is where the clean voice's
  own level is within ``threshold_db`` of its loud frames (:func:`voice_activity`).
- :class:`GtsingerSpeechDataset`: the same singers reading their lyrics (``speech/``), labelled
  the same way, as voice: songs labelled by lyric timing count rapped and spoken vocals as voice.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import load_audio
from ..errors import LabelError, VocalfrontError
from ..grid import FrameGrid
from ..segments import true_runs
from .labels import Segment, segments_to_frames, validate_segments
from .readers import Clip, ClipDataset, LabelledAudio

SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.15, "test": 0.15}
"""Shares of the splits of the solo corpora (by key, see :func:`split_of_key`)."""
MERGE_GAP = 0.25
"""Seconds: gaps between notes up to this long count as singing (SSVD)."""
ACTIVITY_THRESHOLD_DB = -30.0
"""Frames within this many dB of the clip's loud level (95th percentile) are voice (GTSinger)."""
ACTIVITY_FLOOR_DB = -60.0
"""Frames below this level (dB re full scale) are never voice, whatever the clip's level."""
MIN_SEGMENT = 0.1
"""Seconds: voice activity shorter than this is dropped (GTSinger)."""


def split_of_key(key: str) -> str:
    """The split of a recording group ``key``: fixed by a CRC-32 of the key, in the shares of
    :data:`SPLIT_FRACTIONS` (so adding recordings never moves old ones)."""
    position = (zlib.crc32(key.encode("utf-8")) % 10_000) / 10_000
    for name, share in SPLIT_FRACTIONS.items():
        if position < share:
            return name
        position -= share
    return "test"


def close_gaps(targets: np.ndarray, max_gap: int) -> np.ndarray:
    """0/1 ``targets`` ``(frames,)`` with runs of at most ``max_gap`` zeros between ones set to 1."""
    out = targets.copy()
    for start, stop in true_runs(targets == 0):
        if start > 0 and stop < len(targets) and stop - start <= max_gap:
            out[start:stop] = 1
    return out


def drop_short(targets: np.ndarray, min_length: int) -> np.ndarray:
    """0/1 ``targets`` ``(frames,)`` with runs of ones shorter than ``min_length`` set to 0."""
    out = targets.copy()
    for start, stop in true_runs(targets == 1):
        if stop - start < min_length:
            out[start:stop] = 0
    return out


def frame_levels_db(audio: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """Level of each grid frame in dB (mean square over its ``grid.window`` samples), ``(frames,)``."""
    frames = grid.num_frames(len(audio))
    starts = grid.hop * np.arange(frames)
    squares = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    power = (squares[starts + grid.window] - squares[starts]) / grid.window
    return 10 * np.log10(power + 1e-12)


def voice_activity(audio: np.ndarray, grid: FrameGrid, threshold_db: float = ACTIVITY_THRESHOLD_DB,
                   merge_gap: float = MERGE_GAP, min_segment: float = MIN_SEGMENT) -> np.ndarray:
    """0/1 float32 targets ``(frames,)`` of a clean solo voice from its own level: frames within
    ``threshold_db`` of the clip's loud level (95th percentile of :func:`frame_levels_db`) and
    above :data:`ACTIVITY_FLOOR_DB`, gaps up to ``merge_gap`` seconds closed, then runs shorter
    than ``min_segment`` seconds dropped."""
    levels = frame_levels_db(audio, grid)
    floor = max(float(np.percentile(levels, 95)) + threshold_db, ACTIVITY_FLOOR_DB)
    active = (levels > floor).astype(np.float32)
    active = close_gaps(active, round(merge_gap * grid.frame_rate))
    return drop_short(active, round(min_segment * grid.frame_rate))


class SsvdDataset(ClipDataset):
    """SSVD v2.0: ``train_valid/`` and ``test/`` folders of ``<id>.opus`` + ``<id>.txt`` note
    lists (see the module docstring). The upstream folders are ignored for our split: every
    recording gets :func:`split_of_key` of its id. Metadata: ``source``, ``split``."""

    FOLDERS = ("train_valid", "test")
    SOURCE = "ssvd"

    def __init__(self, root: str | Path, merge_gap: float = MERGE_GAP, **options: Any):
        self.merge_gap = float(merge_gap)
        super().__init__(root, **options)

    def _list_clips(self) -> list[Clip]:
        clips = []
        for folder in self.FOLDERS:
            for path in sorted((self.root / folder).glob("*.opus")):
                label = path.with_suffix(".txt")
                clips.append(Clip(f"{folder}/{path.stem}", path, label if label.is_file() else None,
                                  {"source": self.SOURCE, "split": split_of_key(f"ssvd/{path.stem}")}))
        if not clips:
            raise VocalfrontError(f"{self.root}: no SSVD recordings ({'/, '.join(self.FOLDERS)}/ "
                                  "with .opus files)")
        return clips

    def _load(self, clip: Clip, problems: list[LabelError]) -> LabelledAudio:
        audio = load_audio(clip.audio_path, self.grid.sample_rate, cache_dir=self.cache_dir)
        num_frames = self._num_frames(clip, len(audio))
        if clip.label_path is None:
            raise self._missing_labels(clip, [f"{clip.audio_path.stem}.txt"])
        notes = validate_segments(self._read_notes(clip.label_path, problems), clip.label_path,
                                  duration=len(audio) / self.grid.sample_rate,
                                  tolerance=self.tolerance, problems=problems)
        targets = segments_to_frames(notes, num_frames, self.grid)
        return self._item(clip, audio, close_gaps(targets, round(self.merge_gap * self.grid.frame_rate)))

    @staticmethod
    def _read_notes(path: Path, problems: list[LabelError]) -> list[Segment]:
        """The notes of an SSVD label file as ``sing`` segments (pitch ignored)."""
        notes = []
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                onset, offset = float(fields[0]), float(fields[1])
            except (ValueError, IndexError):
                problems.append(LabelError(path, f"expected 'onset offset pitch', got {line.strip()!r}",
                                           number))
                continue
            notes.append(Segment(onset, offset, "sing"))
        return notes


class GtsingerDataset(ClipDataset):
    """GTSinger demo recordings: ``singing/*.opus`` (see the module docstring); targets from
    :func:`voice_activity`. Recordings of one song or singer (the name up to the first ``_``,
    at most three ``-``-fields, e.g. ``fr01``, ``EN-Alto-2``) share a split. Metadata:
    ``source``, ``split``."""

    FOLDER = "singing"
    SOURCE = "gtsinger"

    def __init__(self, root: str | Path, threshold_db: float = ACTIVITY_THRESHOLD_DB, **options: Any):
        self.threshold_db = float(threshold_db)
        super().__init__(root, **options)

    @staticmethod
    def group_key(stem: str) -> str:
        """The recording group of a file name stem (``fr01_Breathy-C9tU`` → ``fr01``)."""
        return "-".join(re.split(r"_", stem, maxsplit=1)[0].split("-")[:3])

    def _list_clips(self) -> list[Clip]:
        paths = sorted((self.root / self.FOLDER).glob("*.opus"))
        if not paths:
            raise VocalfrontError(f"{self.root}: no GTSinger recordings ({self.FOLDER}/*.opus)")
        return [Clip(path.stem, path, None,
                     {"source": self.SOURCE, "split": split_of_key(f"gtsinger/{self.group_key(path.stem)}")})
                for path in paths]

    def _load(self, clip: Clip, problems: list[LabelError]) -> LabelledAudio:
        audio = load_audio(clip.audio_path, self.grid.sample_rate, cache_dir=self.cache_dir)
        self._num_frames(clip, len(audio))
        return self._item(clip, audio, voice_activity(audio, self.grid, self.threshold_db))


class GtsingerSpeechDataset(GtsingerDataset):
    """GTSinger's speech recordings, ``speech/*.opus`` (each singer reading the lyrics), with
    :func:`voice_activity` targets as voice. A recording's split is its singer's (the same
    group keys as :class:`GtsingerDataset`), so a held-out singer's speech is held out too.
    Metadata: ``source`` (``gtsinger_speech``), ``split``."""

    FOLDER = "speech"
    SOURCE = "gtsinger_speech"


SOLO_READERS: dict[str, type[ClipDataset]] = {
    reader.SOURCE: reader for reader in (SsvdDataset, GtsingerDataset, GtsingerSpeechDataset)}
"""The solo corpora's readers by source name (a clip's ``source``, a ``data.source_weights``
key), in the order a run opens them."""
