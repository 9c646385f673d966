"""The fixed singer- and song-disjoint split of our MIR-1K portion (``protocol.md``).

Clips of one singer are near duplicates, so the splits never share a singer; MIR-1K's singers
also sang along to the same karaoke tracks, so the splits never share a backing track either.
Songs (``<singer>_<song>``, e.g. ``davidson_2``) are joined into groups by shared backing tracks
(:data:`MIR1K_SHARED_BACKING`, found by :mod:`.songs`); a group belongs to the most held-out
split among its singers' splits (``test`` before ``valid`` before ``train``), and its songs sung
by singers of another split are left out of every split. ``test`` is never used for choosing
models or thresholds: it is for the figures reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

from .readers import Mir1kDataset
from .songs import groups_of

Split = Literal["train", "valid", "test"]
SPLITS: tuple[Split, ...] = ("train", "valid", "test")
"""The splits, from least to most held out."""

MIR1K_VALID_SINGERS = ("davidson", "yifen")
"""Singers whose clips form the validation set (model, checkpoint and threshold selection)."""
MIR1K_TEST_SINGERS = ("abjones", "jmzen")
"""Singers whose clips form the test set (reported, never used for selection)."""
MIR1K_TRAIN_SINGERS = ("amy", "fdps", "geniusturtle", "Kenshin", "leon", "tammy")
"""Singers whose clips form the training set."""

MIR1K_SHARED_BACKING: tuple[tuple[str, ...], ...] = (
    ("Kenshin_5", "davidson_3", "fdps_3", "leon_2"),
    ("amy_6", "leon_5"),
    ("amy_7", "yifen_2"),
    ("davidson_2", "fdps_5"),
    ("fdps_1", "yifen_1"),
    ("fdps_2", "geniusturtle_4"),
    ("leon_1", "tammy_1"),
)
"""Songs of our MIR-1K portion that share a backing track (every other song stands alone).

Found by ``vocalfront data check --format mir1k`` (:func:`vocalfront.data.songs.song_groups`
on the accompaniment channels; linking clips score 0.68-1.0, unrelated songs at most 0.60).
"""


class Mir1kSplit(NamedTuple):
    """Readers of the three splits (``test`` is None when the folder has no test singers)."""

    train: Mir1kDataset
    valid: Mir1kDataset
    test: Mir1kDataset | None


def singer_split(singer: str) -> Split | None:
    """The split a MIR-1K singer (case-insensitive) belongs to, or None for other singers."""
    for name, singers in zip(SPLITS, (MIR1K_TRAIN_SINGERS, MIR1K_VALID_SINGERS, MIR1K_TEST_SINGERS),
                             strict=True):
        if singer.lower() in {s.lower() for s in singers}:
            return name
    return None


def song_splits(songs: Iterable[str], groups: Sequence[Sequence[str]] = MIR1K_SHARED_BACKING,
                split_of_singer: Callable[[str], Split | None] = singer_split,
                ) -> dict[str, Split | None]:
    """The split of each song ``<singer>_<song>`` (None: in no split), see the module docstring.

    ``groups``: songs sharing a backing track; ``split_of_singer``: singer → split or None.
    """
    songs = list(songs)
    group_index = groups_of([[song.lower() for song in group] for group in groups])
    members: dict[int | str, list[str]] = {}
    for song in songs:
        members.setdefault(group_index.get(song.lower(), song.lower()), []).append(song)
    result: dict[str, Split | None] = {}
    for group in members.values():
        splits = {song: split_of_singer(_singer(song)) for song in group}
        held = [split for split in splits.values() if split is not None]
        group_split = max(held, key=SPLITS.index) if held else None
        result.update({song: split if split == group_split else None for song, split in splits.items()})
    return result


def _singer(song: str) -> str:
    return song.rpartition("_")[0] or song


def mir1k_split_of(clip_metadata: dict[str, Any]) -> Split | None:
    """The split of a :class:`Mir1kDataset` clip (by its ``singer`` and ``song`` metadata), None
    when its song is left out (it shares a backing track with a song of another split)."""
    song = f"{clip_metadata['singer']}_{clip_metadata['song']}"
    group = next((group for group in MIR1K_SHARED_BACKING
                  if song.lower() in {member.lower() for member in group}), ())
    others = [member for member in group if member.lower() != song.lower()]
    return song_splits([song, *others])[song]


def mir1k_split(root: str | Path, **options: Any) -> Mir1kSplit:
    """Readers of the ``train``, ``valid`` and ``test`` clips of the MIR-1K folder ``root``;
    ``options`` go to every reader. A folder without training or validation clips is a
    :class:`~vocalfront.errors.VocalfrontError`."""
    everything = Mir1kDataset(root, **options)
    songs = sorted({f"{clip.metadata['singer']}_{clip.metadata['song']}" for clip in everything.clips})
    splits = song_splits(songs)
    chosen = {name: [song for song in songs if splits[song] == name] for name in SPLITS}
    if not chosen["test"]:
        return Mir1kSplit(Mir1kDataset(root, songs=chosen["train"], **options),
                          Mir1kDataset(root, songs=chosen["valid"], **options), None)
    return Mir1kSplit(*(Mir1kDataset(root, songs=chosen[name], **options) for name in SPLITS))
