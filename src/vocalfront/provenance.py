"""What made an output: one record, written by every writer of detections.

A :class:`Provenance` names the vocalfront version, the model file (name and the first 12 hex
digits of its SHA-256) and the post-processing that turned probabilities into segments
(:class:`~vocalfront.postprocessing.PostProcessing`). It is made once per detection
(:func:`make_provenance`) and written by every output: a ``provenance`` field in JSON files, a
``#`` comment line above CSV headers, a ``song.provenance.json`` side file beside label files
that cannot hold comments (``.lab``, Audacity), and the subtitle of plots.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .postprocessing import PostProcessing

DIGEST_DIGITS = 12
"""Hex digits of the SHA-256 kept to name a model file (48 bits: no accidental collisions)."""
IN_MEMORY = "(in memory)"
"""Model name of a detector that did not come from a file."""

_digests: dict[tuple[str, int, int], str] = {}
"""(resolved path, mtime_ns, size) -> digest: each file version is hashed once per process."""


def file_digest(path: str | Path) -> str:
    """First :data:`DIGEST_DIGITS` hex digits of the SHA-256 of the file's bytes."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _digests:
        with path.open("rb") as handle:
            _digests[key] = hashlib.file_digest(handle, "sha256").hexdigest()[:DIGEST_DIGITS]
    return _digests[key]


@dataclass(frozen=True)
class Provenance:
    """What made a detection: ``version`` of vocalfront, ``model`` file name (:data:`IN_MEMORY`
    for a detector without one) and ``model_sha256`` (its digest prefix, ``None`` without a
    file), and the post-processing: ``threshold`` (on smoothed probabilities), ``smoothing``
    (median filter, frames), ``min_duration`` and ``min_gap`` (seconds), ``peak_threshold`` (a
    run of frames above ``threshold`` is kept when it rises above this; see
    :mod:`vocalfront.postprocessing`); how the CNN ran: ``bf16`` (under bfloat16 autocast) and
    ``frame_step`` (on every frame, or every 3rd or 9th with the logits interpolated between).
    Records written before a field existed lack it and read as its default
    (``Provenance(**record)``)."""

    version: str
    model: str
    model_sha256: str | None
    threshold: float
    smoothing: int
    min_duration: float
    min_gap: float
    bf16: bool = False
    frame_step: int = 1
    peak_threshold: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values, in field order (the ``provenance`` object of JSON outputs)."""
        return asdict(self)

    def to_line(self) -> str:
        """One line for CSV comments and plot subtitles, e.g. ``vocalfront 0.3.0, model
        default.pt (sha256 1a2b3c4d5e6f), threshold 0.343, median 56 frames, min duration
        0.75 s, min gap 0.2 s``, with ``, peak 0.850`` after the threshold when a peak threshold
        applies, and ``, CNN in bf16`` and ``, CNN every 3rd frame`` when it ran so."""
        model = self.model if self.model_sha256 is None else f"{self.model} (sha256 {self.model_sha256})"
        peak = f", peak {self.peak_threshold:.3f}" if self.peak_applies else ""
        how = "".join(f", {phrase}" for phrase in cnn_settings(self.bf16, self.frame_step))
        return (f"vocalfront {self.version}, model {model}, threshold {self.threshold:.3f}{peak}, "
                f"median {self.smoothing} frames, min duration {self.min_duration:g} s, "
                f"min gap {self.min_gap:g} s{how}")

    @property
    def peak_applies(self) -> bool:
        """Whether the peak threshold could drop runs (see
        :func:`vocalfront.postprocessing.peak_applies`)."""
        from .postprocessing import peak_applies  # postprocessing -> segments -> this module

        return peak_applies(self.threshold, self.peak_threshold)

    @property
    def cnn_frames(self) -> str:
        """The frames the CNN ran on: ``every frame``, ``every 3rd frame``, ``every 9th frame``."""
        return cnn_frames(self.frame_step)


def cnn_frames(frame_step: int) -> str:
    """The frames a CNN run on every ``frame_step``-th frame saw: ``every frame``, ``every 3rd
    frame``, ``every 9th frame``."""
    if frame_step == 1:
        return "every frame"
    return f"every {frame_step}{'rd' if frame_step % 10 == 3 else 'th'} frame"


def cnn_settings(bf16: bool, frame_step: int) -> list[str]:
    """How the CNN ran, in words, where it differs from the default (float32 on every frame):
    ``["CNN in bf16", "CNN every 3rd frame"]``, or ``[]``."""
    return [*(["CNN in bf16"] if bf16 else []),
            *([f"CNN {cnn_frames(frame_step)}"] if frame_step != 1 else [])]


def make_provenance(model_source: str | Path | None, settings: PostProcessing,
                    bf16: bool = False, frame_step: int = 1) -> Provenance:
    """The record of a detection by the model read from ``model_source`` (``None``: a detector
    in memory) with the post-processing ``settings`` (``bf16``: the CNN ran in bfloat16;
    ``frame_step``: it ran on every ``frame_step``-th frame)."""
    if model_source is None:
        name, digest = IN_MEMORY, None
    else:
        name, digest = Path(model_source).name, file_digest(model_source)
    return Provenance(__version__, name, digest, settings.threshold, settings.smoothing,
                      settings.min_duration, settings.min_gap, bf16, frame_step,
                      settings.peak_threshold)
