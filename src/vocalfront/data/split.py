"""The fixed singer-disjoint split of our MIR-1K portion (``protocol.md``).

Clips of one singer are near duplicates, so training and validation never share a singer. The
split is fixed here so that every run uses the same one. Singers in neither list (for instance
the held-out MIR-1K singers) belong to neither split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from .readers import Mir1kDataset

MIR1K_VALID_SINGERS = ("davidson", "yifen")
"""Singers whose clips form the validation set."""
MIR1K_TRAIN_SINGERS = (
    "abjones", "amy", "fdps", "geniusturtle", "jmzen", "Kenshin", "leon", "tammy",
)
"""Singers whose clips form the training set."""


def mir1k_split_of(singer: str) -> Literal["train", "valid"] | None:
    """The split a MIR-1K singer (case-insensitive) belongs to, or None for other singers."""
    for name, singers in (("train", MIR1K_TRAIN_SINGERS), ("valid", MIR1K_VALID_SINGERS)):
        if singer.lower() in {s.lower() for s in singers}:
            return name
    return None


def mir1k_split(root: str | Path, **options: Any) -> tuple[Mir1kDataset, Mir1kDataset]:
    """``(train, valid)`` readers of the MIR-1K folder ``root``; ``options`` go to both readers."""
    return (Mir1kDataset(root, MIR1K_TRAIN_SINGERS, **options),
            Mir1kDataset(root, MIR1K_VALID_SINGERS, **options))
