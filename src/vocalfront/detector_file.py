"""The detector file: how a detector is written and read back, in one place.

A detector file is a ``torch.save`` dictionary ``{"format": "vocalfront-detector", "version": 1,
"config": Detector.get_config(), "state_dict": ..., "extra": {...}}``, written atomically.
``extra`` is the stored record: plain values (numbers, strings, lists, tables, tensors), among
them the decision settings (:meth:`~vocalfront.postprocessing.PostProcessing.from_record`:
``threshold``, ``median_filter``, ``peak_threshold``, ``min_duration``, ``min_gap``) and what
training adds (update,
validation, configuration). :func:`save_detector` writes it; :func:`load_detector_file` is the one
reader, and checks the file whole before anything uses it. The packaged default detector lives
in :mod:`vocalfront.pretrained`.

Example::

    >>> from vocalfront.detector_file import load_detector_file, save_detector
    >>> save_detector("model.pt", detector, {"threshold": 0.6})        # doctest: +SKIP
    >>> model = load_detector_file("model.pt")                         # doctest: +SKIP
    >>> model.detector, model.threshold, model.record["threshold"]     # doctest: +SKIP
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import VocalfrontError
from .fileio import atomic_write
from .model import Detector, build_detector
from .postprocessing import PostProcessing

FILE_FORMAT = "vocalfront-detector"
FILE_VERSION = 1
MAX_FILE_BYTES = 512 * 2**20
"""Largest detector file read (bytes); the packaged model is about 6 MB."""


@dataclass(frozen=True)
class LoadedModel:
    """A detector with its decision settings ``postprocessing`` (:mod:`vocalfront.postprocessing`;
    the defaults there for a detector without a file); ``source`` is the file it came from and
    ``record`` that file's ``extra`` record (empty for a detector that came from no file)."""

    detector: Detector
    postprocessing: PostProcessing = field(default_factory=PostProcessing)
    source: str | None = None
    record: Mapping[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The decision threshold on smoothed probabilities."""
        return self.postprocessing.threshold

    @property
    def smoothing(self) -> int:
        """The median filter length, frames."""
        return self.postprocessing.smoothing


class ModelFileError(VocalfrontError):
    """A detector file that cannot be read; the message names the file."""

    def __init__(self, source: str | Path, problem: str):
        self.source, self.problem = str(source), problem
        super().__init__(f"{self.source}: {problem}")


def _check_plain(value: Any, where: str) -> None:
    """Reject values that a safe (``weights_only``) load cannot restore."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise VocalfrontError(f"{where}: keys must be strings, got {key!r}")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif not isinstance(value, str | int | float | bool | torch.Tensor | None):
        raise VocalfrontError(
            f"{where}: {type(value).__name__} cannot be saved; use str, int, float, bool, None, "
            "tensors, lists and dicts"
        )


def save_detector(path: str | Path, detector: Detector, extra: Mapping[str, Any] | None = None) -> None:
    """Write config, state dict and ``extra`` (plain values, e.g. threshold, training info) to ``path``.

    The file is a ``torch.save`` dictionary, written atomically (readers never see a partial file).
    """
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, "config": detector.get_config(),
               "state_dict": detector.state_dict(), "extra": extra}
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def _read_bounded(path: Path) -> bytes:
    """The bytes of ``path``: a regular file of at most :data:`MAX_FILE_BYTES` (checked before
    reading, so devices and pipes are never read or waited on)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(path, "not a regular file (a device, pipe or folder?)")
        if info.st_size > MAX_FILE_BYTES:
            raise ModelFileError(path, f"{info.st_size} bytes is larger than any detector file "
                                       f"(at most {MAX_FILE_BYTES})")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ModelFileError(path, f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:  # grew while read
        raise ModelFileError(path, f"larger than any detector file (at most {MAX_FILE_BYTES} bytes)")
    return data


def _check_checksums(path: Path, data: bytes) -> None:
    """Refuse a file whose stored pieces fail their CRC-32 (``torch.save`` writes a zip archive
    with a checksum per piece; ``torch.load`` does not check them, so a flipped bit in the
    weights would load silently). Bytes that are no zip archive are left to ``torch.load``."""
    try:
        damaged = zipfile.ZipFile(io.BytesIO(data)).testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return
    if damaged is not None:
        raise ModelFileError(path, f"damaged: its piece {damaged} fails its checksum "
                                   "(copy or download the file again)")


def _read_payload(path: Path) -> dict[str, Any]:
    data = _read_bounded(path)
    _check_checksums(path, data)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # on foreign bytes the unpickler raises anything (IndexError, KeyError)
        raise ModelFileError(
            path, f"corrupt or not a detector file (torch.load failed: {type(error).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ModelFileError(path, "not a vocalfront detector file")
    if payload.get("version") != FILE_VERSION:
        raise ModelFileError(path, f"unsupported detector file version {payload.get('version')!r}")
    if not isinstance(payload.get("config"), Mapping) or not isinstance(payload.get("state_dict"), Mapping) \
            or not isinstance(payload.get("extra", {}), Mapping):
        raise ModelFileError(path, "damaged detector file (config, state_dict and extra must be tables)")
    return payload


def load_detector_file(path: str | Path) -> LoadedModel:
    """Read a file written by :func:`save_detector`: the detector (in eval mode), its decision
    settings (from the record; the defaults where it has none) and its whole ``extra`` record.

    The file is checked whole before use: a regular file of at most :data:`MAX_FILE_BYTES`, the
    schema of the payload, the types and ranges of the stored configuration (those of
    :func:`~vocalfront.model.build_detector`), weights that fit it and are finite, and stored
    decision settings in their ranges. Any problem raises :class:`ModelFileError` with a
    one-line message naming the file.
    """
    path = Path(path)
    payload = _read_payload(path)
    detector = _stored_detector(path, payload)
    record = dict(payload.get("extra", {}))
    try:
        settings = PostProcessing.from_record(record)
    except VocalfrontError as error:
        raise ModelFileError(path, str(error)) from None
    return LoadedModel(detector, settings, str(path), record)


def _stored_detector(path: Path, payload: Mapping[str, Any]) -> Detector:
    """The detector of a checked payload, in eval mode, with its weights checked."""
    try:
        detector = build_detector(payload["config"])
    except VocalfrontError as error:
        raise ModelFileError(path, f"stored configuration is not usable ({error})") from None
    try:
        detector.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, AttributeError, TypeError) as error:
        # load_state_dict lists the problems on the lines after a header; keep the first one
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[min(1, len(lines) - 1)] if lines else type(error).__name__
        raise ModelFileError(path, f"weights do not fit the stored configuration ({reason})") from None
    for name, tensor in detector.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(path, f"weights are not finite (NaN or Inf in {name})")
    return detector.eval()
