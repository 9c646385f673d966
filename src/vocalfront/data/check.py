"""Check a dataset folder: load every clip, list every problem, or summarise a clean dataset.

:func:`check_dataset` never raises for bad data: unreadable, corrupt, empty or too-short audio,
missing or bad label files and mismatched lengths all become :class:`Problem` entries (file,
line, problem) of the returned :class:`Report`. A clean report has a summary per split: clips,
minutes and the fraction of singing frames (MIR-1K: the fixed singer- and song-disjoint split,
:mod:`.split`; SSVD and GTSinger: their fixed recording splits, :mod:`.solo`; Jamendo: its file
lists, when present). For MIR-1K the check also matches every clip's accompaniment against every
other song (:mod:`.songs`): it lists the groups of songs that share a backing track, and a group
whose songs sit in different splits is a problem. :func:`check_instrumental` does the same for
a folder of instrumental music (``scripts/get_instrumental_music.sh``): every track decoded, a
summary per top-level folder, and the tracks that training leaves out by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from ..audio import audio_files, load_audio, load_channels
from ..errors import VocalfrontError
from ..grid import DEFAULT_GRID, FrameGrid
from .labels import DEFAULT_TOLERANCE
from .readers import Clip, ClipDataset, JamendoDataset, LabelledAudio, LabelledFolder, Mir1kDataset
from .remix import is_excluded
from .solo import SOLO_READERS, GtsingerDataset, SsvdDataset
from .songs import fingerprint, song_groups
from .split import mir1k_split_of, song_splits

DatasetFormat = Literal["auto", "mir1k", "jamendo", "folder", "ssvd", "gtsinger", "gtsinger_speech"]
FORMAT_TITLES = {"mir1k": "MIR-1K", "jamendo": "Jamendo", "folder": "labelled folder",
                 "ssvd": "SSVD", "gtsinger": "GTSinger", "gtsinger_speech": "GTSinger speech",
                 "instrumental": "instrumental music"}
READERS: dict[str, type[ClipDataset]] = {
    "mir1k": Mir1kDataset, "jamendo": JamendoDataset, "folder": LabelledFolder, **SOLO_READERS}
"""The reader of each dataset format."""
_SPLIT_ORDER = ("train", "valid", "test")


@dataclass(frozen=True)
class Problem:
    """One problem: the file it is in, the 1-based line when known, and what is wrong."""

    source: str
    problem: str
    line: int | None = None

    @classmethod
    def from_error(cls, error: VocalfrontError) -> Problem:
        source = getattr(error, "source", None)
        if source is None:
            return cls("", str(error))
        return cls(source, getattr(error, "problem", str(error)), getattr(error, "line", None))

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.problem}" if where else self.problem


@dataclass
class SplitSummary:
    """Totals of the loaded clips of one split; durations in seconds, counts in frames."""

    name: str
    clips: int = 0
    seconds: float = 0.0
    frames: int = 0
    vocal_frames: int = 0
    singers: set[str] = field(default_factory=set)

    @property
    def vocal_fraction(self) -> float:
        """Fraction of frames labelled as singing (0 when there are no frames)."""
        return self.vocal_frames / self.frames if self.frames else 0.0

    def add(self, item: LabelledAudio) -> None:
        self.clips += 1
        self.seconds += item.metadata["seconds"]
        self.frames += len(item.labels)
        self.vocal_frames += int(item.labels.sum())
        if "singer" in item.metadata:
            self.singers.add(item.metadata["singer"])

    def merge(self, other: SplitSummary) -> None:
        self.clips += other.clips
        self.seconds += other.seconds
        self.frames += other.frames
        self.vocal_frames += other.vocal_frames
        self.singers |= other.singers


@dataclass
class Report:
    """Outcome of :func:`check_dataset`: ``problems`` (empty when clean) and per-split ``splits``
    (with a ``total`` row last when there are several splits)."""

    root: Path
    format: str
    clips: int = 0
    bad_clips: int = 0
    problems: list[Problem] = field(default_factory=list)
    splits: list[SplitSummary] = field(default_factory=list)
    song_groups: list[list[tuple[str, str]]] = field(default_factory=list)
    """MIR-1K: groups of songs sharing a backing track, as ``(song, split)`` pairs."""
    left_out: list[str] = field(default_factory=list)
    """Instrumental music: the tracks :data:`~.remix.INSTRUMENTAL_EXCLUDED` leaves out."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_text(self) -> str:
        """The problems one per line and a count, or a one-line verdict and the summary table."""
        title = f"{FORMAT_TITLES.get(self.format, self.format)} at {self.root}"
        noun = "track" if self.format == "instrumental" else "clip"
        if not self.ok:
            lines = [str(problem) for problem in self.problems]
            summary = (f"{title}: {_count(len(self.problems), 'problem')} in {self.bad_clips} of "
                       f"{_count(self.clips, noun)}")
            return "\n".join([*lines, summary])
        left_out = ([f"left out by name (INSTRUMENTAL_EXCLUDED): {', '.join(self.left_out)}"]
                    if self.left_out else [])
        return "\n".join([f"{title}: {_count(self.clips, noun)}, no problems", *self._table(),
                          *self._groups(), *left_out])

    def _groups(self) -> list[str]:
        if not self.song_groups:
            return []
        lines = [f"songs sharing a backing track: {_count(len(self.song_groups), 'group')} "
                 "(a song outside its group's split is left out of every split)"]
        lines += ["  " + ", ".join(f"{song} ({split})" for song, split in group)
                  for group in self.song_groups]
        return lines

    def _table(self) -> list[str]:
        if self.format == "instrumental":
            width = max(len("folder"), *(len(split.name) for split in self.splits)) + 2
            return [f"{'folder':<{width}}{'tracks':>7}{'minutes':>9}",
                    *(f"{split.name:<{width}}{split.clips:>7}{split.seconds / 60:>9.1f}"
                      for split in self.splits)]
        with_singers = any(split.singers for split in self.splits)
        header = f"{'split':<8}{'singers':>8}" if with_singers else f"{'split':<8}"
        rows = [f"{header}{'clips':>7}{'minutes':>9}{'vocal':>8}"]
        for split in self.splits:
            row = f"{split.name:<8}" + (f"{len(split.singers):>8}" if with_singers else "")
            rows.append(f"{row}{split.clips:>7}{split.seconds / 60:>9.1f}"
                        f"{100 * split.vocal_fraction:>7.1f}%")
        return rows


def detect_format(root: str | Path) -> Literal["mir1k", "jamendo", "folder", "ssvd", "gtsinger"]:
    """``mir1k`` if ``root/Wavfile`` exists, ``ssvd`` if ``root/train_valid`` does, ``gtsinger``
    if ``root/singing`` does, ``jamendo`` if there are ``.lab`` files, else ``folder``."""
    root = Path(root)
    if (root / Mir1kDataset.AUDIO_DIR).is_dir():
        return "mir1k"
    if (root / SsvdDataset.FOLDERS[0]).is_dir():
        return "ssvd"
    if (root / GtsingerDataset.FOLDER).is_dir():
        return "gtsinger"
    if next(root.rglob("*.lab"), None) is not None:
        return "jamendo"
    return "folder"


def check_dataset(
    root: str | Path,
    format: DatasetFormat = "auto",
    *,
    grid: FrameGrid = DEFAULT_GRID,
    cache_dir: str | Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: bool = False,
) -> Report:
    """Load every clip of the dataset at ``root`` and report all problems, or a summary.

    ``format="auto"`` uses :func:`detect_format`; ``cache_dir`` and ``tolerance`` (seconds) as in
    the readers; ``progress`` shows a progress bar on stderr.
    """
    root = Path(root)
    fmt = detect_format(root) if format == "auto" and root.is_dir() else format
    report = Report(root, "folder" if fmt == "auto" else fmt)
    try:
        dataset = _open(root, report.format, grid=grid, cache_dir=cache_dir, tolerance=tolerance)
    except VocalfrontError as error:
        report.problems.append(Problem.from_error(error))
        return report
    splits: dict[str, SplitSummary] = {}
    for clip in tqdm(dataset.clips, desc="checking", unit="clip", disable=not progress):
        item, problems = dataset.check(clip)
        report.problems += [Problem.from_error(problem) for problem in problems]
        report.bad_clips += bool(problems)
        if item is not None:
            name = _split_name(report.format, clip)
            splits.setdefault(name, SplitSummary(name)).add(item)
    report.clips = len(dataset)
    report.splits = _ordered_with_total(splits)
    if isinstance(dataset, Mir1kDataset):
        _check_songs(dataset, report, progress)
    return report


def check_instrumental(root: str | Path, *, sample_rate: int = DEFAULT_GRID.sample_rate,
                       cache_dir: str | Path | None = None, progress: bool = False) -> Report:
    """Decode every audio file below ``root`` (as :class:`~.remix.InstrumentalPool` would, at
    ``sample_rate`` Hz, cached in ``cache_dir``) and report the unreadable ones as problems, or a
    summary per top-level folder (files as clips, minutes; the vocal fraction is 0: music alone)
    and the tracks left out by name (counted in the summary, not used by training)."""
    root = Path(root)
    report = Report(root, "instrumental")
    paths = audio_files(root)
    if not paths:
        report.problems.append(Problem(str(root), "no audio files found"))
        return report
    folders: dict[str, SplitSummary] = {}
    for path in tqdm(paths, desc="checking", unit="track", disable=not progress):
        name = path.relative_to(root).as_posix()
        if is_excluded(name):
            report.left_out.append(name)
        try:
            seconds = len(load_audio(path, sample_rate=sample_rate, cache_dir=cache_dir)) / sample_rate
        except VocalfrontError as error:
            report.problems.append(Problem.from_error(error))
            report.bad_clips += 1
            continue
        folder = name.split("/")[0] if "/" in name else "."
        summary = folders.setdefault(folder, SplitSummary(folder))
        summary.clips += 1
        summary.seconds += seconds
    report.clips = len(paths)
    report.splits = _ordered_with_total(folders)
    return report


def _check_songs(dataset: Mir1kDataset, report: Report, progress: bool) -> None:
    """Song groups of a MIR-1K dataset from its accompaniment channels, into ``report``; a group
    whose songs are in different splits becomes a problem."""
    fingerprints, song_of = {}, {}
    for clip in tqdm(dataset.clips, desc="matching songs", unit="clip", disable=not progress):
        try:
            stems = load_channels(clip.audio_path, dataset.grid.sample_rate, dataset.cache_dir)
        except VocalfrontError:
            continue  # already reported
        fingerprints[clip.name] = fingerprint(stems[Mir1kDataset.ACCOMPANIMENT_CHANNEL],
                                              dataset.grid.sample_rate)
        song_of[clip.name] = f"{clip.metadata['singer']}_{clip.metadata['song']}"
    groups, _ = song_groups(fingerprints, song_of)
    splits = song_splits(song_of.values())
    for group in (group for group in groups if len(group) > 1):
        report.song_groups.append([(song, splits[song] or "left out") for song in group])
        held = sorted({splits[song] for song in group} - {None})
        if len(held) > 1:
            report.problems.append(Problem(str(dataset.root), f"songs {', '.join(group)} share a "
                                           f"backing track but lie in splits {', '.join(held)}"))


def _count(number: int, noun: str) -> str:
    """``"1 clip"``, ``"2 clips"``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _open(root: Path, fmt: str, **options) -> ClipDataset:
    """The reader for a format name."""
    if fmt not in READERS:
        expected = ", ".join(["auto", *READERS])
        raise VocalfrontError(f"unknown dataset format {fmt!r} (expected {expected})")
    return READERS[fmt](root, **options)


def _split_name(fmt: str, clip: Clip) -> str:
    """The split a clip is summarised under (MIR-1K: ``other`` for clips in no split)."""
    if fmt == "mir1k":
        return mir1k_split_of(clip.metadata) or "other"
    return clip.metadata.get("split", "all")


def _ordered_with_total(splits: dict[str, SplitSummary]) -> list[SplitSummary]:
    """Splits in the order train, valid, test, then by name; a ``total`` row when several."""
    ordered = sorted(splits.values(), key=lambda s: (
        _SPLIT_ORDER.index(s.name) if s.name in _SPLIT_ORDER else len(_SPLIT_ORDER), s.name))
    if len(ordered) < 2:
        return ordered
    total = SplitSummary("total")
    for split in ordered:
        total.merge(split)
    return [*ordered, total]
