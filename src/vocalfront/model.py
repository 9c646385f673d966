"""The singing-voice CNN of Schlüter & Grill (2015) and the detector built around it.

Axis order: the CNN takes ``(batch, 1, n_bands, frames)`` - frequency on the height axis, time on
the width (last) axis - so that ``features.unsqueeze(1)`` of front-end output
``(batch, n_bands, frames)`` feeds it directly. (Schlüter's Lasagne code puts time first; the
two are the same network with transposed kernels.)

Layers (valid convolutions, Leaky ReLU 0.01, orthogonal init)::

    conv 3x3 64 -> conv 3x3 32 -> max-pool 3x3 -> conv 3x3 128 -> conv 3x3 64 -> max-pool 3x3
    -> dropout -> dense 256 -> dropout -> dense 64 -> dropout -> dense 1 (logit)

The dense layers are stored as convolutions: dense 256 has a kernel covering the whole remaining
band x frame extent (7 x 11 for 80 bands x 115 frames), dense 64 and dense 1 are 1 x 1. So the
same weights evaluate one excerpt (:meth:`SchlueterCNN.forward`) or every frame of a long
sequence at once (:meth:`SchlueterCNN.dense`): there, pooling keeps stride 1 along time and each
later layer is dilated along time by the product of the earlier pooling strides (à trous), which
gives exactly the excerpt-wise result for every excerpt start.
"""

from __future__ import annotations

import io
import pickle
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import VocalfrontError
from .fileio import atomic_write
from .frontends import BandNorm, FrontEnd, build_compression, build_frontend
from .frontends.base import MAX_BANDS
from .grid import FrameGrid

LEAKINESS = 0.01
"""Negative slope of the Leaky ReLU units."""
POOL = 3
"""Max-pooling size and stride (both axes) in excerpt mode."""
_POOLED_UNITS = (1, 3)
"""Units followed by max-pooling (the second and fourth convolution)."""
_FIRST_DENSE_UNIT = 4
"""Units from here on are the dense layers, each preceded by dropout."""
MAX_CONTEXT = 1023
"""Longest CNN excerpt in frames (14.6 s at 70 frames per second; the default is 115)."""
FILE_FORMAT = "vocalfront-detector"
FILE_VERSION = 1
MAX_FILE_BYTES = 512 * 2**20
"""Largest detector file read (bytes); the packaged model is about 6 MB."""


def _shrink(size: int) -> int:
    """Extent after two valid 3x3 convolutions and one 3x3 pooling (floor)."""
    return (size - 4) // POOL


def _dense_max_pool(x: torch.Tensor, dilation: int) -> torch.Tensor:
    """3x3 max-pooling of ``(batch, channels, bands, frames)``: stride 3 over bands, stride 1 and
    ``dilation`` over frames. Done separably (same result as ``F.max_pool2d``, but faster)."""
    bands = x.shape[2] - x.shape[2] % POOL
    x = x[:, :, :bands].unflatten(2, (-1, POOL)).amax(3)
    span = (POOL - 1) * dilation
    frames = x.shape[3] - span
    pooled = x[..., :frames]
    for offset in range(dilation, span + 1, dilation):
        pooled = torch.maximum(pooled, x[..., offset : offset + frames])
    return pooled


class _Unit(nn.Module):
    """Convolution, optional batch normalisation, Leaky ReLU; convolution dilated in time on demand."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int],
                 batch_norm: bool, activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, bias=not batch_norm)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else None
        self.activation = activation
        gain = nn.init.calculate_gain("leaky_relu", LEAKINESS) if activation else 1.0
        nn.init.orthogonal_(self.conv.weight, gain=gain)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, time_dilation: int = 1) -> torch.Tensor:
        x = F.conv2d(x, self.conv.weight, self.conv.bias, dilation=(1, time_dilation))
        if self.norm is not None:
            x = self.norm(x)
        return F.leaky_relu(x, LEAKINESS, inplace=True) if self.activation else x


class SchlueterCNN(nn.Module):
    """Schlüter & Grill (2015) CNN: ``(batch, 1, n_bands, context)`` excerpt → centre-frame logit.

    ``batch_norm`` adds batch normalisation after every hidden convolution/dense layer (before
    the nonlinearity; those layers then have no bias). ``dropout`` is the drop probability before
    each dense layer. Apply a sigmoid to the logits for probabilities.
    """

    def __init__(self, n_bands: int = 80, context: int = 115, batch_norm: bool = False,
                 dropout: float = 0.5):
        super().__init__()
        if isinstance(context, bool) or not isinstance(context, int) or not 1 <= context <= MAX_CONTEXT \
                or context % 2 != 1:
            raise VocalfrontError(f"CNN context must be an odd number of frames up to {MAX_CONTEXT}, "
                                  f"got {context!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise VocalfrontError(f"CNN dropout must be a probability from 0 to below 1, got {dropout!r}")
        if isinstance(n_bands, bool) or not isinstance(n_bands, int) or not 1 <= n_bands <= MAX_BANDS:
            raise VocalfrontError(f"CNN n_bands must be a whole number from 1 to {MAX_BANDS}, "
                                  f"got {n_bands!r}")
        if not isinstance(batch_norm, bool):
            raise VocalfrontError(f"CNN batch_norm must be true or false, got {batch_norm!r}")
        self.n_bands, self.context = n_bands, context
        self.batch_norm, self.dropout_p = batch_norm, float(dropout)
        bands_left, frames_left = _shrink(_shrink(self.n_bands)), _shrink(_shrink(self.context))
        if min(bands_left, frames_left) < 1:
            raise VocalfrontError(
                f"CNN input of {n_bands} bands x {context} frames is too small for two conv-pool blocks"
            )
        self.units = nn.ModuleList([
            _Unit(1, 64, (3, 3), self.batch_norm),
            _Unit(64, 32, (3, 3), self.batch_norm),
            _Unit(32, 128, (3, 3), self.batch_norm),
            _Unit(128, 64, (3, 3), self.batch_norm),
            _Unit(64, 256, (bands_left, frames_left), self.batch_norm),
            _Unit(256, 64, (1, 1), self.batch_norm),
            _Unit(64, 1, (1, 1), batch_norm=False, activation=False),
        ])
        self.dropout = nn.Dropout(self.dropout_p)

    def _run(self, x: torch.Tensor, dense: bool) -> torch.Tensor:
        """Shared body; ``dense`` pools with stride 1 in time and dilates later layers instead."""
        dilation = 1
        for index, unit in enumerate(self.units):
            if index >= _FIRST_DENSE_UNIT:
                x = self.dropout(x)
            x = unit(x, dilation)
            if index in _POOLED_UNITS and dense:
                x = _dense_max_pool(x, dilation)
                dilation *= POOL
            elif index in _POOLED_UNITS:
                x = F.max_pool2d(x, POOL)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch,)`` of excerpts ``(batch, 1, n_bands, context)``."""
        self._check_input(x)
        if x.shape[-1] != self.context:
            raise VocalfrontError(f"CNN excerpts must have {self.context} frames, got {x.shape[-1]}")
        return self._run(x, dense=False).flatten()

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, frames - context + 1)`` of every excerpt of ``(batch, 1, n_bands, frames)``.

        Output ``t`` equals ``forward(x[..., t:t + context])`` (the excerpt centred on input frame
        ``t + context // 2``) in eval mode. In training mode it is a valid training pass, but
        overlapping excerpts share dropout masks and batch-norm statistics, so it is not the
        same as training on separate excerpts.
        """
        self._check_input(x)
        if x.shape[-1] < self.context:
            raise VocalfrontError(f"need at least {self.context} frames, got {x.shape[-1]}")
        logits = self._run(x, dense=True)
        return logits[:, 0, 0, : x.shape[-1] - self.context + 1]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_bands:
            raise VocalfrontError(
                f"CNN input must be (batch, 1, {self.n_bands}, frames), got {tuple(x.shape)}"
            )

    def get_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this network."""
        return {"n_bands": self.n_bands, "context": self.context, "batch_norm": self.batch_norm,
                "dropout": self.dropout_p}


def pad_context(features: torch.Tensor, context: int) -> torch.Tensor:
    """Pad normalised features ``(..., frames)`` with ``context // 2`` zero frames at both ends.

    Zero is each band's training mean after :class:`BandNorm`: frames before the start and
    after the end of a file look like average music, not like silence or a repeated edge.
    Excerpt-wise and dense inference (and training, if it centres excerpts on edge frames)
    all pad this way, so that every frame gets a prediction from a full ``context`` excerpt.
    """
    half = context // 2
    return F.pad(features, (half, half))


class Detector(nn.Module):
    """Waveform → singing-voice logits: front-end → compression → per-band norm → CNN.

    Waveforms are ``(batch, samples)`` floats at ``frontend.sample_rate`` Hz (22050).
    :meth:`forward` returns the centre-frame logit of each excerpt; whole files go through
    :mod:`vocalfront.inference`.
    """

    def __init__(self, frontend: FrontEnd, compression: nn.Module, norm: BandNorm,
                 cnn: SchlueterCNN):
        super().__init__()
        sizes = {"front-end": frontend.n_bands, "norm": norm.n_bands, "CNN": cnn.n_bands}
        if len(set(sizes.values())) != 1:
            raise VocalfrontError(f"band counts disagree: {sizes}")
        self.frontend, self.compression, self.norm, self.cnn = frontend, compression, norm, cnn

    @property
    def grid(self) -> FrameGrid:
        """The front-end's frame grid (sample rate in Hz, hop and window in samples)."""
        return self.frontend.grid

    @property
    def context(self) -> int:
        """Frames per CNN excerpt (115: 1.64 s at 70 frames per second)."""
        return self.cnn.context

    @property
    def excerpt_samples(self) -> int:
        """Samples of a waveform excerpt that yields exactly :attr:`context` frames."""
        return self.grid.num_samples(self.context)

    def features(self, waveform: torch.Tensor) -> torch.Tensor:
        """Normalised log band energies ``(batch, n_bands, frames)`` of ``(batch, samples)``."""
        return self.norm(self.compression(self.frontend(waveform)))

    def excerpt_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch,)`` for the centre frame of feature excerpts ``(batch, n_bands, frames)``.

        ``frames`` is :attr:`context` or more; longer excerpts (computed with a margin against
        front-end edge effects) are cropped to their central ``context`` frames, which needs
        ``frames - context`` even so that the centre frame is unambiguous.
        """
        extra = features.shape[-1] - self.context
        if extra < 0 or extra % 2:
            raise VocalfrontError(
                f"excerpts need {self.context} + an even number of frames, got {features.shape[-1]}"
            )
        start = extra // 2
        return self.cnn(features[..., start : start + self.context].unsqueeze(1))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Centre-frame logits ``(batch,)`` of waveform excerpts ``(batch, samples)``.

        ``samples`` is :attr:`excerpt_samples`, or more by an even number of hops.
        """
        return self.excerpt_logits(self.features(waveform))

    def get_config(self) -> dict[str, dict[str, Any]]:
        """Configuration that :func:`build_detector` turns back into an (untrained) detector."""
        return {
            "frontend": self.frontend.get_config(),
            "compression": self.compression.get_config(),
            "norm": self.norm.get_config(),
            "cnn": self.cnn.get_config(),
        }


def build_detector(config: Mapping[str, Mapping[str, Any]]) -> Detector:
    """Build a detector from :meth:`Detector.get_config` output (weights are freshly initialised).

    ``config["frontend"]`` goes to :func:`~vocalfront.frontends.build_frontend`,
    ``config["compression"]`` to :func:`~vocalfront.frontends.build_compression`,
    ``config["norm"]`` to :class:`BandNorm` (its ``name`` entry is ignored) and ``config["cnn"]``
    to :class:`SchlueterCNN`.
    """
    missing = {"frontend", "compression", "norm", "cnn"} - set(config)
    if missing:
        raise VocalfrontError(f"detector config lacks {', '.join(sorted(missing))}")
    if not all(isinstance(config[part], Mapping) for part in ("frontend", "compression", "norm", "cnn")):
        raise VocalfrontError("invalid detector config: frontend, compression, norm and cnn must be "
                              "tables of settings")
    norm_config = {key: value for key, value in config["norm"].items() if key != "name"}
    try:
        return Detector(build_frontend(**config["frontend"]),
                        build_compression(**config["compression"]),
                        BandNorm(**norm_config), SchlueterCNN(**config["cnn"]))
    except (TypeError, ValueError) as error:
        raise VocalfrontError(f"invalid detector config: {error}") from None


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


def _read_payload(path: Path) -> dict[str, Any]:
    data = _read_bounded(path)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as error:
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


def load_checkpoint(path: str | Path) -> tuple[Detector, dict[str, Any]]:
    """Read a file written by :func:`save_detector`: the detector (in eval mode) and its ``extra``.

    The file is checked whole before use: a regular file of at most :data:`MAX_FILE_BYTES`, the
    schema of the payload, the types and ranges of the stored configuration (those of
    :func:`build_detector`), weights that fit it and are finite. Any problem raises
    :class:`ModelFileError` with a one-line message naming the file.
    """
    path = Path(path)
    payload = _read_payload(path)
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
    return detector.eval(), dict(payload.get("extra", {}))


def load_detector(path: str | Path) -> Detector:
    """The detector (in eval mode) stored in ``path`` by :func:`save_detector`."""
    return load_checkpoint(path)[0]
