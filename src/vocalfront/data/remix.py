"""Remixing separate voice and accompaniment stems (MIR-1K) into new training mixtures.

Audio is 1-D float (mono, 22050 Hz by default), labels one value per frame of the common grid;
the labels follow the voice stem. One call of ``remix`` draws a mode:

- ``own``: the voice over its own accompaniment, at a random voice-to-accompaniment gain ``g``
  (dB; 0 dB is the original mixture voice + accompaniment);
- ``external``: the voice over a random excerpt of other instrumental music from an
  ``InstrumentalPool`` (looped or cropped to length, brought to the level of the clip's own
  accompaniment), at a random gain ``g`` likewise;
- ``voice``: the voice alone;
- ``accompaniment``: the accompaniment alone, labels all 0;
- ``instrumental``: an excerpt of other instrumental music alone (as in ``external``), labels
  all 0: the intros, solos and breaks of real songs, voice-like lead instruments included.

Every mode mixes ``voice * 10**(g/40) + music * 10**(-g/40)`` with one stem muted for the last
three, so the gain is split evenly and the overall level stays about the same. Labels are
unchanged except that ``accompaniment`` and ``instrumental`` set them to 0. A solo voice (no
accompaniment of its own) is remixed with an all-zero accompaniment: ``own`` then equals
``voice``, and the music of ``external`` takes the voice's level. Everything random comes from the
``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from vocalfront.audio import audio_files, header_seconds, load_audio
from vocalfront.data.augment import check_audio_and_labels
from vocalfront.errors import AudioError, VocalfrontError
from vocalfront.grid import DEFAULT_GRID, SAMPLE_RATE, FrameGrid

logger = logging.getLogger(__name__)

INSTRUMENTAL_EXCLUDED: frozenset[str] = frozenset({
    "nunc_dimittis.ogg", "silence.ogg",
    "neverball-common/inter.ogg", "supertux-data/ghostforest_map.ogg",
    "supertux-data/christmas_theme.ogg", "widelands-data/ingame_00.ogg",
    "widelands-data/ingame_10.ogg", "widelands-data/ingame_11.ogg", "widelands-data/ingame_16.ogg",
})
"""Tracks never used as instrumental music: file names, or paths below the music folder
(compared case-insensitively).

From ``scripts/get_instrumental_music.sh``: ``nunc_dimittis.ogg`` (wesnoth-1.16-music) is a choral
piece (the canticle sung by a choir), i.e. it contains singing; ``silence.ogg``
(wesnoth-1.16-music) is 10 s of near-digital silence, not music. The seven paths are the tracks
of the packages added on 2026-12-07 that the 0.7.0 detector calls singing for half their length
or more; nobody has listened to them, and a voice among the negatives costs more than a hard
negative gains. See ``docs/data.md``.
"""

MEMORY_SHARE = 0.5
"""Largest share of the machine's physical memory the music of one pool may take (checked from
the file headers before anything is decoded)."""

MIN_TRACK_RMS = 1e-4
"""Tracks quieter than this RMS (−80 dB full scale) are skipped as silent."""


class RemixMode(StrEnum):
    """What a remixed training example contains."""

    OWN = "own"
    EXTERNAL = "external"
    VOICE = "voice"
    ACCOMPANIMENT = "accompaniment"
    INSTRUMENTAL = "instrumental"

    @property
    def keeps_voice(self) -> bool:
        """Whether the voice stem is heard in an example of this mode."""
        return self not in (RemixMode.ACCOMPANIMENT, RemixMode.INSTRUMENTAL)


@dataclass(frozen=True)
class RemixConfig:
    """Mode probabilities and gain range of ``remix``.

    Attributes:
        own, external, voice, accompaniment, instrumental: relative weights of the modes
            (normalised to sum to 1; 0 switches a mode off; ``external`` or ``instrumental``
            > 0 needs an ``InstrumentalPool``).
        gain_db_range: ``(low, high)`` voice-to-music gain in dB, drawn uniformly; 0 dB is the
            original balance.
        level_neutral: scale every example to the RMS of its accompaniment (of its voice when
            the accompaniment is silent), whatever its mode, so that loudness says nothing about
            whether a voice is in it. Off, a voice added over music makes the example louder
            than the music alone (by 3 dB at a 0 dB gain), and a detector learns that cue.
    """

    own: float = 0.6
    external: float = 0.2
    voice: float = 0.1
    accompaniment: float = 0.1
    instrumental: float = 0.0
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    level_neutral: bool = False

    def __post_init__(self) -> None:
        weights = self.weights()
        if np.any(weights < 0) or weights.sum() <= 0:
            raise VocalfrontError("remix mode weights must be non-negative and not all 0")
        low, high = self.gain_db_range
        if not (-60.0 <= low <= high <= 60.0):
            raise VocalfrontError(f"remix gain_db_range must be (low, high) with -60 <= low <= high "
                                  f"<= 60 dB, got {self.gain_db_range}")
        if not np.all(np.isfinite(weights)):
            raise VocalfrontError("remix mode weights must be finite")

    @property
    def needs_music(self) -> bool:
        """Whether a mode that draws from an :class:`InstrumentalPool` has weight > 0."""
        return self.external > 0 or self.instrumental > 0

    def weights(self) -> np.ndarray:
        """Weights of the modes in ``RemixMode`` order, shape ``(5,)``."""
        return np.array([getattr(self, mode.value) for mode in RemixMode], dtype=float)

    def draw(self, rng: np.random.Generator) -> tuple[RemixMode, float]:
        """A mode, by the weights, and a voice-to-music gain in dB, uniform in ``gain_db_range``
        (in this order from ``rng``: what :func:`remix` draws first)."""
        weights = self.weights()
        mode = list(RemixMode)[rng.choice(len(weights), p=weights / weights.sum())]
        return mode, float(rng.uniform(*self.gain_db_range))


@dataclass(frozen=True, eq=False)
class Remix:
    """A remixed training example.

    Attributes:
        audio: mixture, shape ``(samples,)``, float32.
        labels: frame labels, shape ``(frames,)``, float32.
        mode: which mode made it.
        gain_db: voice-to-music gain in dB that was drawn (applied as ``±gain_db / 2`` to the
            voice and the music).
    """

    audio: np.ndarray
    labels: np.ndarray
    mode: RemixMode
    gain_db: float


def rms(audio: np.ndarray) -> float:
    """Root mean square of ``audio`` (float64 accumulation)."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def at_level(audio: np.ndarray, level: float) -> np.ndarray:
    """``audio`` ``(samples,)``, or stems ``(stems, samples)`` scaled alike, brought to a mixture
    (the sum of the stems) of RMS ``level`` (float32); silent audio, or a zero ``level``, as it is."""
    current = rms(audio if audio.ndim == 1 else audio.sum(axis=0))
    if current <= 0 or level <= 0:
        return audio
    return (audio * np.float32(level / current)).astype(np.float32)


class InstrumentalPool:
    """Instrumental music tracks, loaded once, to draw random excerpts from.

    ``source`` is a folder (searched recursively for files ending in one of
    ``vocalfront.audio.AUDIO_EXTENSIONS``, read with ``vocalfront.audio.load_audio`` as mono at
    ``sample_rate`` Hz), a mapping name → 1-D array (already at ``sample_rate``), or a sequence
    of 1-D arrays (named by position). A folder's tracks are named by their path below it
    (``package/track.ogg``: packages may share file names). Tracks whose file name or path is
    in ``exclude`` (case-insensitive, default ``INSTRUMENTAL_EXCLUDED``) are skipped, and so are
    silent tracks and files that cannot be read (logged and listed in
    ``failures``). Each track is scaled to an RMS of 1 over its whole length, so excerpts keep
    the track's own dynamics. For a folder, ``folders`` keeps only the tracks below those
    top-level subfolders (e.g. package names of ``get_instrumental_music.sh``) and
    ``skip_folders`` leaves those out: that is how tracks are held out for validation and test
    (a subfolder named in either that does not exist is an error: a mistyped name would let
    held-out music into training).
    ``max_seconds`` keeps only the middle ``max_seconds`` of each track, to bound memory: all
    of ``get_instrumental_music.sh`` (1 070 usable minutes before the 2026-12-07 additions)
    takes about 5.7 GB as float32 at 22050 Hz and about 15 minutes to decode and resample on
    one core (``cache_dir``, default ``$VOCALFRONT_CACHE``, caches the decoded audio).
    """

    def __init__(
        self,
        source: str | Path | Mapping[str, np.ndarray] | Sequence[np.ndarray],
        exclude: Iterable[str] = INSTRUMENTAL_EXCLUDED,
        sample_rate: int = SAMPLE_RATE,
        max_seconds: float | None = None,
        folders: Iterable[str] | None = None,
        skip_folders: Iterable[str] = (),
        cache_dir: str | Path | None = None,
    ):
        excluded = {name.lower() for name in exclude}
        self.failures: list[str] = []
        candidates = self._candidates(source, sample_rate, folders, skip_folders, cache_dir,
                                      max_seconds)
        tracks: dict[str, np.ndarray] = {}
        for name, load in candidates:
            if is_excluded(name, excluded):
                continue
            track = self._usable(name, load)
            if track is not None:
                tracks[name] = _centre(track, max_seconds, sample_rate)
        if not tracks:
            where = source if isinstance(source, str | Path) else "instrumental tracks"
            raise VocalfrontError(f"{where}: no usable instrumental tracks")
        self.names: tuple[str, ...] = tuple(tracks)
        self._tracks = tuple(tracks.values())
        lengths = np.array([len(track) for track in self._tracks], dtype=float)
        self._choice_weights = lengths / lengths.sum()

    @staticmethod
    def _candidates(
        source: str | Path | Mapping[str, np.ndarray] | Sequence[np.ndarray], sample_rate: int,
        folders: Iterable[str] | None, skip_folders: Iterable[str], cache_dir: str | Path | None,
        max_seconds: float | None,
    ) -> list[tuple[str, Callable[[], np.ndarray]]]:
        """``(name, load)`` pairs; ``load()`` returns the track as a float32 array. A folder whose
        music would not fit in memory (:func:`check_memory`) is refused here, before decoding."""
        if isinstance(source, str | Path):
            folder = Path(source)
            if not folder.is_dir():
                raise AudioError(folder, "instrumental music folder not found")
            wanted = None if folders is None else set(folders)
            skipped = set(skip_folders)
            subfolders = {path.name for path in folder.iterdir() if path.is_dir()}
            missing = sorted(((wanted or set()) | skipped) - subfolders)
            if missing:
                raise AudioError(folder, f"no subfolder {', '.join(map(repr, missing))}")
            paths = [path for path in audio_files(folder)
                     if (top := path.relative_to(folder).parts[0]) not in skipped
                     and (wanted is None or top in wanted)]
            check_memory(folder, paths, sample_rate, max_seconds)
            return [(path.relative_to(folder).as_posix(), partial(_load_file, path, sample_rate, cache_dir))
                    for path in paths]
        named = source.items() if isinstance(source, Mapping) else enumerate(source)
        return [(str(name), partial(np.asarray, track, np.float32)) for name, track in named]

    def _usable(self, name: str, load: Callable[[], np.ndarray]) -> np.ndarray | None:
        """The unit-RMS float32 track, or ``None`` (recorded in ``failures``) if unusable."""
        try:
            track = load()
            if track.ndim != 1 or len(track) == 0 or not np.all(np.isfinite(track)):
                raise AudioError(name, "instrumental track must be a non-empty finite 1-D array")
            level = rms(track)
            if level < MIN_TRACK_RMS:
                raise AudioError(name, "instrumental track is silent")
        except (ValueError, OSError) as error:
            self.failures.append(str(error))
            logger.warning("skipping instrumental track: %s", error)
            return None
        return (track / level).astype(np.float32)

    def __len__(self) -> int:
        """Number of usable tracks."""
        return len(self._tracks)

    @property
    def total_samples(self) -> int:
        """Total length of the usable tracks in samples."""
        return sum(len(track) for track in self._tracks)

    def excerpt(self, rng: np.random.Generator, num_samples: int) -> np.ndarray:
        """A random excerpt of ``num_samples`` samples, float32, shape ``(num_samples,)``.

        The track is drawn with probability proportional to its length (every second of music
        equally likely). A track at least as long is cropped at a random start; a shorter one is
        looped from a random start.
        """
        track = self._tracks[rng.choice(len(self._tracks), p=self._choice_weights)]
        if len(track) >= num_samples:
            start = rng.integers(0, len(track) - num_samples + 1)
            return track[start : start + num_samples].copy()
        start = rng.integers(0, len(track))
        return np.take(track, np.arange(start, start + num_samples), mode="wrap")


def is_excluded(name: str, exclude: Collection[str] = INSTRUMENTAL_EXCLUDED) -> bool:
    """Whether the track ``name`` (its path below the music folder, ``/``-separated) is in
    ``exclude`` by that path or by its file name (case-insensitive; entries in lower case)."""
    name = name.lower()
    return name in exclude or PurePosixPath(name).name in exclude


def check_memory(folder: Path, paths: Sequence[Path], sample_rate: int, max_seconds: float | None,
                 ) -> None:
    """Refuse music that would take more than :data:`MEMORY_SHARE` of the physical memory as
    float32 at ``sample_rate`` Hz, keeping at most ``max_seconds`` of each file (lengths from the
    file headers; a file without a readable header counts as empty: it is reported when loaded).
    No check where the physical memory is unknown."""
    total = physical_memory()
    if total is None:
        return
    needed = 4 * sample_rate * sum(min(header_seconds(path), max_seconds or math.inf) for path in paths)
    if needed > MEMORY_SHARE * total:
        raise AudioError(folder, f"its music would take {needed / 1e9:.1f} GB in memory, more than "
                                 f"{MEMORY_SHARE:.0%} of this machine's {total / 1e9:.1f} GB: keep less "
                                 "of each track (data.instrumental_max_seconds) or use fewer folders "
                                 "(data.instrumental_train)")


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine, or ``None`` where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _centre(track: np.ndarray, max_seconds: float | None, sample_rate: int) -> np.ndarray:
    """The middle ``max_seconds`` of ``track`` (all of it if shorter or ``max_seconds`` is None)."""
    if max_seconds is None:
        return track
    keep = max(1, round(max_seconds * sample_rate))
    start = max(0, (len(track) - keep) // 2)
    return track[start : start + keep].copy()


def _load_file(path: Path, sample_rate: int, cache_dir: str | Path | None) -> np.ndarray:
    """Read an audio file as mono float32 at ``sample_rate`` Hz (cached in ``cache_dir``)."""
    return np.asarray(load_audio(path, sample_rate=sample_rate, cache_dir=cache_dir), dtype=np.float32)


def remix(
    voice: np.ndarray,
    accompaniment: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    config: RemixConfig | None = None,
    pool: InstrumentalPool | None = None,
    grid: FrameGrid = DEFAULT_GRID,
    drawn: tuple[RemixMode, float] | None = None,
) -> Remix:
    """Draw a mode and gain and mix a new training example (see the module docstring).

    ``voice`` and ``accompaniment`` are ``(samples,)`` at ``grid.sample_rate`` Hz, ``labels``
    ``(grid.num_frames(samples),)``. The external music is scaled to the RMS of
    ``accompaniment`` (of ``voice`` if the accompaniment is silent) before the gain. ``drawn``:
    the mode and gain, already drawn by :meth:`RemixConfig.draw` (so that a caller can skip
    work on a voice the mode mutes); otherwise drawn here. Deterministic given the state of
    ``rng``.
    """
    config = config or RemixConfig()
    voice, labels = check_audio_and_labels(voice, labels, grid)
    accompaniment = np.asarray(accompaniment, dtype=np.float32)
    if accompaniment.shape != voice.shape:
        raise AudioError(
            None, f"accompaniment has shape {accompaniment.shape}, voice {voice.shape}"
        )
    if config.needs_music and pool is None:
        raise VocalfrontError("remix modes 'external'/'instrumental' have weight > 0 but no "
                              "InstrumentalPool")
    mode, gain_db = config.draw(rng) if drawn is None else drawn
    music = accompaniment
    if mode in (RemixMode.EXTERNAL, RemixMode.INSTRUMENTAL):
        level = rms(accompaniment)
        music = pool.excerpt(rng, len(voice)) * np.float32(level if level > 0 else rms(voice) or 0.1)
    muted = not mode.keeps_voice
    voice_weight = 0.0 if muted else 10.0 ** (gain_db / 40.0)
    music_weight = 0.0 if mode is RemixMode.VOICE else 10.0 ** (-gain_db / 40.0)
    audio = np.float32(voice_weight) * voice + np.float32(music_weight) * music
    if config.level_neutral:
        audio = at_level(audio, rms(accompaniment) or rms(voice))
    labels = np.zeros_like(labels) if muted else labels.copy()
    return Remix(audio=audio, labels=labels, mode=mode, gain_db=gain_db)
