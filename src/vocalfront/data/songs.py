"""Which clips share a backing track: song groups, for splits that never straddle a song.

MIR-1K's singers sang along to the same karaoke tracks, so clips of different singers can share
their accompaniment exactly (even their cut points). A split by singer alone then puts the same
backing track into training and validation. This module finds those clips by matching their
accompaniment channels.

**Fingerprint.** The accompaniment at ``FINGERPRINT_RATE`` Hz, cut into frames of
``FINGERPRINT_WINDOW`` samples every ``FINGERPRINT_HOP`` samples (62.5 frames/s at 16 kHz),
log energies in ``FINGERPRINT_BANDS`` bands equally spaced on a log-frequency axis between
``FINGERPRINT_FMIN`` and ``FINGERPRINT_FMAX`` Hz; each band's time course is z-scored over the
clip and each frame's vector divided by its Euclidean norm, so that a frame-by-frame dot product
is a correlation of the bands' dynamics (shapes ``(frames, bands)``).

**Match.** A clip's fingerprint ``x`` is slid along a song's fingerprint ``y`` (all clips of one
singer's song, concatenated with gaps): at each lag the score is the mean of ``⟨x_t, y_{t+lag}⟩``
over the overlapping frames that are not gap, counted only where at least ``MIN_OVERLAP`` of the
clip overlaps, and at least ``MIN_OVERLAP_FRAMES`` frames (all of a shorter clip). The same
recording scores close to 1 (0.9 and more on MIR-1K even with a different voice on the other
channel); different songs score below 0.5. Clips and songs whose best score reaches
``MATCH_THRESHOLD`` share a backing track.

**Groups.** A song is a ``(singer, song)`` pair; songs linked by a matching clip are joined into
one group (connected components), see :func:`song_groups`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.signal

from ..audio import resample

FINGERPRINT_RATE = 16000
FINGERPRINT_WINDOW = 1024
FINGERPRINT_HOP = 256
FINGERPRINT_BANDS = 24
FINGERPRINT_FMIN, FINGERPRINT_FMAX = 60.0, 7000.0
MIN_OVERLAP = 0.5
"""Fraction of a clip that must overlap a song at a lag for the lag to count ..."""
MIN_OVERLAP_FRAMES = 125
"""... and at least this many frames (2 s), or the whole clip if it is shorter: a short overlap
correlates highly by chance."""
MATCH_THRESHOLD = 0.6
"""Best mean correlation from which a clip and a song share a backing track."""


def fingerprint(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Fingerprint of an accompaniment ``(samples,)`` at ``sample_rate`` Hz: float32
    ``(frames, FINGERPRINT_BANDS)``, unit-norm rows (see the module docstring); rows of silent
    frames are 0. Fewer samples than one window give ``(0, FINGERPRINT_BANDS)``."""
    audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, FINGERPRINT_RATE)
    if len(audio) < FINGERPRINT_WINDOW:
        return np.zeros((0, FINGERPRINT_BANDS), np.float32)
    _, _, spectrum = scipy.signal.stft(audio, FINGERPRINT_RATE, window="hann",
                                       nperseg=FINGERPRINT_WINDOW,
                                       noverlap=FINGERPRINT_WINDOW - FINGERPRINT_HOP,
                                       boundary=None, padded=False)
    power = np.abs(spectrum) ** 2  # (bins, frames)
    frequencies = np.fft.rfftfreq(FINGERPRINT_WINDOW, 1 / FINGERPRINT_RATE)
    edges = np.geomspace(FINGERPRINT_FMIN, FINGERPRINT_FMAX, FINGERPRINT_BANDS + 1)
    band_of_bin = np.searchsorted(edges, frequencies, side="right") - 1
    inside = (band_of_bin >= 0) & (band_of_bin < FINGERPRINT_BANDS)
    bands = np.zeros((FINGERPRINT_BANDS, power.shape[1]))
    np.add.at(bands, band_of_bin[inside], power[inside])
    log_bands = np.log(bands + 1e-10).T  # (frames, bands)
    z = (log_bands - log_bands.mean(axis=0)) / (log_bands.std(axis=0) + 1e-6)
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.where(norms > 1e-6, z / np.maximum(norms, 1e-6), 0.0).astype(np.float32)


@dataclass(frozen=True)
class SongSpectra:
    """A song's fingerprint, transformed once for matching every clip of up to ``max_clip`` frames.

    ``song`` ``(size // 2 + 1, bands)`` and ``valid`` ``(size // 2 + 1,)`` are real FFTs of length
    ``size >= frames + max_clip - 1`` (so correlations do not wrap around) of the fingerprint and
    of its not-gap mask."""

    frames: int
    max_clip: int
    size: int
    song: np.ndarray
    valid: np.ndarray


def song_spectra(song: np.ndarray, song_valid: np.ndarray | None = None, max_clip: int = 1) -> SongSpectra:
    """:class:`SongSpectra` of fingerprint ``song`` ``(n, bands)`` with not-gap mask ``song_valid``
    ``(n,)`` (default all), for clips of up to ``max_clip`` frames."""
    n = len(song)
    valid = np.ones(n, np.float32) if song_valid is None else song_valid.astype(np.float32)
    size = scipy.fft.next_fast_len(n + max(max_clip, 1) - 1)
    return SongSpectra(n, max(max_clip, 1), size, scipy.fft.rfft(song, size, axis=0),
                       scipy.fft.rfft(valid, size))


def match_score(clip: np.ndarray, song: SongSpectra) -> float:
    """Best mean correlation of fingerprint ``clip`` ``(m, bands)`` slid along a song (see the module
    docstring); 0 when no lag overlaps enough. ``m`` must not exceed ``song.max_clip``."""
    m, n, size = len(clip), song.frames, song.size
    if m == 0 or n == 0:
        return 0.0
    if m > song.max_clip:
        raise ValueError(f"clip of {m} frames, song spectra made for at most {song.max_clip}")
    # correlation at lag L (clip frame t against song frame t + L), for L in -(m-1) .. n-1
    products = scipy.fft.irfft((song.song * np.conj(scipy.fft.rfft(clip, size, axis=0))).sum(axis=1),
                               size)
    counts = scipy.fft.irfft(song.valid * np.conj(scipy.fft.rfft(np.ones(m), size)), size)
    lags = np.arange(-(m - 1), n)
    products, counts = products[lags % size], np.rint(counts[lags % size])
    enough = counts >= max(MIN_OVERLAP * m, min(m, MIN_OVERLAP_FRAMES), 1)
    if not enough.any():
        return 0.0
    return float((products[enough] / counts[enough]).max())


def best_match(clip: np.ndarray, song: np.ndarray, song_valid: np.ndarray | None = None) -> float:
    """Best mean correlation of fingerprint ``clip`` ``(m, bands)`` slid along fingerprint
    ``song`` ``(n, bands)`` (see the module docstring); ``song_valid`` ``(n,)`` marks the song's
    frames that are not gap (default all). 0 when no lag overlaps enough."""
    return match_score(clip, song_spectra(song, song_valid, len(clip)))


def song_groups(fingerprints: Mapping[str, np.ndarray], song_of: Mapping[str, str],
                threshold: float = MATCH_THRESHOLD) -> tuple[list[list[str]], list[tuple[str, str, float]]]:
    """Songs joined by shared backing tracks.

    ``fingerprints``: clip name → :func:`fingerprint` of its accompaniment; ``song_of``: clip
    name → its song (e.g. ``"davidson_2"``). Every clip is matched against every other song.
    Returns ``(groups, links)``: the groups as sorted lists of songs (largest first, then by
    name), and the links that joined different songs as ``(clip, song, score)``.
    """
    songs = sorted(set(song_of[name] for name in fingerprints))
    longest = max((len(clip) for clip in fingerprints.values()), default=1)
    spectra = {song: song_spectra(*_concatenate([fingerprints[name] for name in sorted(fingerprints)
                                                 if song_of[name] == song]), max_clip=longest)
               for song in songs}
    parent = {song: song for song in songs}
    links = []
    for name in sorted(fingerprints):
        for song in songs:
            if song == song_of[name]:
                continue
            score = match_score(fingerprints[name], spectra[song])
            if score >= threshold:
                links.append((name, song, round(score, 3)))
                _union(parent, song_of[name], song)
    members: dict[str, list[str]] = {}
    for song in songs:
        members.setdefault(_find(parent, song), []).append(song)
    groups = sorted((sorted(group) for group in members.values()), key=lambda g: (-len(g), g))
    return groups, links


GAP_FRAMES = 8
"""Zero frames between the clips of a concatenated song (never matched)."""


def _concatenate(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints joined with gaps: ``(song, valid)`` where ``valid`` is False in the gaps."""
    bands = parts[0].shape[1]
    gap = np.zeros((GAP_FRAMES, bands), np.float32)
    pieces = [piece for part in parts for piece in (part, gap)]
    valid = [np.full(len(piece), piece is not gap) for piece in pieces]
    return np.concatenate(pieces), np.concatenate(valid)


def _find(parent: dict[str, str], item: str) -> str:
    while parent[item] != item:
        parent[item] = parent[parent[item]]
        item = parent[item]
    return item


def _union(parent: dict[str, str], a: str, b: str) -> None:
    parent[_find(parent, a)] = _find(parent, b)


def groups_of(groups: Iterable[Iterable[str]]) -> dict[str, int]:
    """Song → index of its group in ``groups``."""
    return {song: index for index, group in enumerate(groups) for song in group}
