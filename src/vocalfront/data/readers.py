"""Dataset readers: list the clips of a corpus and load each as audio + frame targets.

Every reader is a :class:`ClipDataset`: ``clips`` (a list of :class:`Clip`), ``len()``,
``load(clip)`` and ``dataset[i]`` → :class:`LabelledAudio` (mono float32 audio at the grid's
sample rate, float32 0/1 targets with ``grid.num_frames(len(audio))`` frames, metadata), and
iteration over all loaded clips, which skips bad clips with a warning when ``on_error="skip"``
or stops at the first one when ``on_error="raise"``.

Readers: :class:`Mir1kDataset` (MIR-1K layout), :class:`JamendoDataset` (Jamendo corpus
``.lab`` files) and :class:`LabelledFolder` (any folder of audio with segment label files).
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from ..audio import AUDIO_EXTENSIONS, load_audio, load_channels
from ..errors import AudioError, LabelError, VocalfrontError
from ..grid import DEFAULT_GRID, FrameGrid
from .labels import (
    DEFAULT_TOLERANCE,
    JAMENDO_LABELS,
    SINGING_LABELS,
    mir1k_frames_to_grid,
    mir1k_span,
    read_mir1k_labels,
    read_segments,
    segments_to_frames,
)

OnError = Literal["skip", "raise"]


@dataclass(frozen=True)
class Clip:
    """One audio file of a dataset; ``label_path`` is None when its label file is missing."""

    name: str
    audio_path: Path
    label_path: Path | None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


class LabelledAudio(NamedTuple):
    """A loaded clip: ``audio`` float32 ``(samples,)`` at the grid's rate (Hz), ``labels`` float32
    ``(frames,)`` of 0/1 singing targets on the grid, ``metadata`` (clip metadata, ``name`` and
    ``seconds``)."""

    audio: np.ndarray
    labels: np.ndarray
    metadata: dict[str, Any]


class ClipDataset(abc.ABC):
    """Common interface of the readers (see the module docstring).

    ``grid``: frame grid of the targets (and sample rate of the audio); ``cache_dir``: audio cache
    (see :mod:`vocalfront.audio`); ``on_error``: what iteration does with a bad clip;
    ``tolerance``: seconds by which labels and audio lengths may disagree.
    Constructing a reader raises :class:`~vocalfront.errors.VocalfrontError` when the folder or
    its clips are missing; problems of single clips surface when they are loaded.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        grid: FrameGrid = DEFAULT_GRID,
        cache_dir: str | Path | None = None,
        on_error: OnError = "raise",
        tolerance: float = DEFAULT_TOLERANCE,
    ):
        if on_error not in ("skip", "raise"):
            raise VocalfrontError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise VocalfrontError(f"{self.root}: dataset folder not found")
        self.grid = grid
        self.cache_dir = cache_dir
        self.on_error = on_error
        self.tolerance = float(tolerance)
        self.clips: list[Clip] = self._list_clips()

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> LabelledAudio:
        return self.load(self.clips[index])

    def __iter__(self) -> Iterator[LabelledAudio]:
        """Each clip in order; a bad clip is skipped with a warning or raises (``on_error``)."""
        for clip in self.clips:
            try:
                item = self.load(clip)
            except VocalfrontError as error:
                if self.on_error == "raise":
                    raise
                warnings.warn(f"skipping clip {clip.name}: {error}", stacklevel=2)
                continue
            yield item

    def load(self, clip: Clip) -> LabelledAudio:
        """Audio and targets of ``clip``; raises the first problem found (AudioError/LabelError)."""
        problems: list[LabelError] = []
        item = self._load(clip, problems)
        if problems:
            raise problems[0]
        return item

    def check(self, clip: Clip) -> tuple[LabelledAudio | None, list[VocalfrontError]]:
        """Load ``clip`` collecting all problems instead of raising; item None if unusable."""
        problems: list[LabelError] = []
        try:
            item = self._load(clip, problems)
        except VocalfrontError as error:
            return None, [*problems, error]
        return item, list(problems)

    @abc.abstractmethod
    def _list_clips(self) -> list[Clip]:
        """All clips of the dataset, in a fixed order."""

    @abc.abstractmethod
    def _load(self, clip: Clip, problems: list[LabelError]) -> LabelledAudio:
        """Load a clip, appending label problems to ``problems`` and raising fatal ones."""

    def _num_frames(self, clip: Clip, num_samples: int) -> int:
        """Frames of a clip of ``num_samples`` samples; shorter than one frame is an AudioError."""
        frames = self.grid.num_frames(num_samples)
        if frames == 0:
            raise AudioError(
                clip.audio_path,
                f"too short: {num_samples / self.grid.sample_rate:.3f} s, one frame needs "
                f"{self.grid.window / self.grid.sample_rate:.3f} s",
            )
        return frames

    def _item(self, clip: Clip, audio: np.ndarray, labels: np.ndarray) -> LabelledAudio:
        metadata = {"name": clip.name, **clip.metadata,
                    "seconds": len(audio) / self.grid.sample_rate}
        return LabelledAudio(audio, labels, metadata)

    def _missing_labels(self, clip: Clip, expected: Iterable[str]) -> LabelError:
        return LabelError(clip.audio_path, f"no label file (looked for {', '.join(expected)})")


class Mir1kDataset(ClipDataset):
    """MIR-1K layout: ``Wavfile/<singer>_<song>_<n>.(wav|flac)`` and
    ``vocal-nonvocalLabel/<clip>.vocal``.

    Audio is stereo with the accompaniment on channel 0 (left) and the voice on channel 1 (right);
    the mixture is their sum. ``singers`` (case-insensitive) keeps only those singers' clips,
    ``songs`` (``<singer>_<song>``, case-insensitive) only those songs' clips.
    Clip metadata: ``singer``, ``song``.
    """

    AUDIO_DIR = "Wavfile"
    LABEL_DIR = "vocal-nonvocalLabel"
    LABEL_EXT = ".vocal"
    ACCOMPANIMENT_CHANNEL = 0
    VOICE_CHANNEL = 1

    def __init__(self, root: str | Path, singers: Iterable[str] | None = None,
                 songs: Iterable[str] | None = None, **options: Any):
        self.singers = None if singers is None else tuple(singers)
        self.songs = None if songs is None else tuple(songs)
        super().__init__(root, **options)

    def load_stems(self, clip: Clip) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(voice, accompaniment, labels)``: float32 ``(samples,)`` stems and frame targets."""
        problems: list[LabelError] = []
        stems, labels = self._load_stems(clip, problems)
        if problems:
            raise problems[0]
        return stems[self.VOICE_CHANNEL], stems[self.ACCOMPANIMENT_CHANNEL], labels

    @staticmethod
    def singer_and_song(stem: str) -> tuple[str, str]:
        """Singer and song of a clip's file name stem (``abjones_1_01`` → ``abjones``, ``1``)."""
        singer, _, rest = stem.partition("_")
        return singer, rest.rpartition("_")[0] or rest

    def _list_clips(self) -> list[Clip]:
        audio_dir = self.root / self.AUDIO_DIR
        if not audio_dir.is_dir():
            raise VocalfrontError(f"{audio_dir}: MIR-1K audio folder not found")
        wanted = None if self.singers is None else {singer.lower() for singer in self.singers}
        wanted_songs = None if self.songs is None else {song.lower() for song in self.songs}
        clips = []
        for path in sorted(audio_dir.iterdir()):
            if path.suffix.lower() not in (".wav", ".flac") or path.name.startswith("."):
                continue
            singer, song = self.singer_and_song(path.stem)
            if wanted is not None and singer.lower() not in wanted:
                continue
            if wanted_songs is not None and f"{singer}_{song}".lower() not in wanted_songs:
                continue
            label = self.root / self.LABEL_DIR / f"{path.stem}{self.LABEL_EXT}"
            clips.append(Clip(path.stem, path, label if label.is_file() else None,
                              {"singer": singer, "song": song}))
        if not clips:
            which = "" if self.singers is None else f" of singers {', '.join(self.singers)}"
            which += "" if self.songs is None else f" of songs {', '.join(self.songs) or '(none)'}"
            raise VocalfrontError(f"{audio_dir}: no MIR-1K clips{which} (.wav or .flac)")
        return clips

    def _load(self, clip: Clip, problems: list[LabelError]) -> LabelledAudio:
        stems, labels = self._load_stems(clip, problems)
        return self._item(clip, stems.sum(axis=0), labels)

    def _load_stems(self, clip: Clip, problems: list[LabelError]) -> tuple[np.ndarray, np.ndarray]:
        """Stereo stems ``(2, samples)`` at the grid rate and the frame targets."""
        stems = load_channels(clip.audio_path, self.grid.sample_rate, self.cache_dir)
        if stems.shape[0] != 2:
            raise AudioError(clip.audio_path, f"expected 2 channels (accompaniment, voice), "
                                              f"got {stems.shape[0]}")
        num_frames = self._num_frames(clip, stems.shape[1])
        if clip.label_path is None:
            raise self._missing_labels(clip, [f"{self.LABEL_DIR}/{clip.name}{self.LABEL_EXT}"])
        values = read_mir1k_labels(clip.label_path, problems)
        seconds = stems.shape[1] / self.grid.sample_rate
        if abs(mir1k_span(len(values)) - seconds) > self.tolerance:
            problems.append(LabelError(
                clip.label_path,
                f"{len(values)} label frames cover {mir1k_span(len(values)):.2f} s but the audio "
                f"lasts {seconds:.2f} s (tolerance {self.tolerance:g} s)",
            ))
        return stems, mir1k_frames_to_grid(values, num_frames, self.grid)


class LabelledFolder(ClipDataset):
    """Any folder of audio files with segment label files (formats of :mod:`.labels`).

    Audio files are found recursively, either under ``root`` with each label file beside its
    audio (same stem, first existing extension of ``label_ext``), or under ``root/audio`` with
    the label files under ``root/labels`` (same relative path or same stem). Segments whose label
    is in ``singing_labels`` are singing; ``label_set`` (optional) lists the allowed labels;
    ``strict=False`` sorts and repairs overlapping segments with a warning instead of failing.
    """

    def __init__(
        self,
        root: str | Path,
        singing_labels: Collection[str] = SINGING_LABELS,
        label_ext: Iterable[str] = (".lab", ".txt", ".csv"),
        *,
        label_set: Collection[str] | None = None,
        strict: bool = True,
        **options: Any,
    ):
        self.singing_labels = frozenset(singing_labels)
        self.label_ext = tuple(label_ext)
        self.label_set = label_set
        self.strict = strict
        super().__init__(root, **options)

    @property
    def audio_dir(self) -> Path:
        """Where the audio files are: ``root/audio`` in the split layout, else ``root``."""
        return self.root / "audio" if self._split_layout else self.root

    @property
    def _split_layout(self) -> bool:
        return (self.root / "audio").is_dir() and (self.root / "labels").is_dir()

    def _list_clips(self) -> list[Clip]:
        audio_dir = self.audio_dir
        paths = sorted(
            path for path in audio_dir.rglob("*")
            if path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")
            and path.is_file()
        )
        if not paths:
            raise VocalfrontError(
                f"{audio_dir}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found")
        return [self._clip(path, path.relative_to(audio_dir)) for path in paths]

    def _clip(self, path: Path, relative: Path) -> Clip:
        candidates = [path.with_suffix(ext) for ext in self.label_ext]
        if self._split_layout:
            labels = self.root / "labels"
            candidates = [labels / relative.with_suffix(ext) for ext in self.label_ext]
            candidates += [labels / f"{path.stem}{ext}" for ext in self.label_ext]
        label = next((candidate for candidate in candidates if candidate.is_file()), None)
        return Clip(relative.with_suffix("").as_posix(), path, label)

    def _load(self, clip: Clip, problems: list[LabelError]) -> LabelledAudio:
        audio = load_audio(clip.audio_path, self.grid.sample_rate, cache_dir=self.cache_dir)
        num_frames = self._num_frames(clip, len(audio))
        if clip.label_path is None:
            raise self._missing_labels(clip, [f"{clip.audio_path.stem}{ext}"
                                              for ext in self.label_ext])
        segments = read_segments(
            clip.label_path, label_set=self.label_set, strict=self.strict,
            duration=len(audio) / self.grid.sample_rate, tolerance=self.tolerance,
            problems=problems,
        )
        labels = segments_to_frames(segments, num_frames, self.grid, self.singing_labels)
        return self._item(clip, audio, labels)


class JamendoDataset(LabelledFolder):
    """The Jamendo corpus: audio files and same-stem ``.lab`` files (``start end sing|nosing``).

    Accepts ``root/audio`` + ``root/labels`` or the files side by side. When
    ``root/filelists/<split>`` files list audio file names (one a line, as in the corpus), each
    clip's metadata has that ``split`` (e.g. ``train``, ``valid``, ``test``).
    """

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, {"sing"}, (".lab",), label_set=JAMENDO_LABELS, **options)

    def _list_clips(self) -> list[Clip]:
        splits = self._read_filelists()
        return [
            replace(clip, metadata={"split": splits[clip.audio_path.name]})
            if clip.audio_path.name in splits else clip
            for clip in super()._list_clips()
        ]

    def _read_filelists(self) -> dict[str, str]:
        """Audio file name → split name, from ``root/filelists/*`` (empty when there are none)."""
        folder = self.root / "filelists"
        if not folder.is_dir():
            return {}
        splits = {}
        for filelist in sorted(folder.iterdir()):
            if filelist.is_file() and not filelist.name.startswith("."):
                for line in filelist.read_text(encoding="utf-8", errors="replace").splitlines():
                    if line.strip():
                        splits[Path(line.strip()).name] = filelist.stem
        return splits
