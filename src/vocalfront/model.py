"""The singing-voice CNN of Schlüter & Grill (2015) and the detector built around it, and the one
way to build a detector from settings (:func:`build_detector`). Its file is
:mod:`vocalfront.detector_file`'s.

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
gives exactly the excerpt-wise result for every excerpt start. With a frame step of 3 or 9
(:data:`~vocalfront.grid.FRAME_STEPS`) the first one or both poolings keep their excerpt-mode
stride 3 along time instead, and the result is that of every 3rd or 9th excerpt start, for a
fraction of the work after the first pooling.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import VocalfrontError
from .frontends import BandNorm, FrontEnd, build_compression, build_frontend
from .frontends.base import MAX_BANDS
from .grid import FRAME_STEPS, FrameGrid

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


def _shrink(size: int) -> int:
    """Extent after two valid 3x3 convolutions and one 3x3 pooling (floor)."""
    return (size - 4) // POOL


def _pool_bands(x: torch.Tensor) -> torch.Tensor:
    """Max over each 3 bands of ``(batch, channels, bands, frames)`` (stride 3, floor)."""
    bands = x.shape[2] - x.shape[2] % POOL
    return x[:, :, :bands].unflatten(2, (-1, POOL)).amax(3)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 max-pooling with stride 3 on both axes of ``(batch, channels, bands, frames)`` (floor),
    as ``F.max_pool2d(x, 3)``. Without gradients it is done separably: the same result, about 6
    times as fast on long sequences; with them ``F.max_pool2d``, whose backward pass is about
    twice as fast as the separable one's."""
    if x.requires_grad:
        return F.max_pool2d(x, POOL)
    x = _pool_bands(x)
    frames = x.shape[3] - x.shape[3] % POOL
    return x[..., :frames].unflatten(3, (-1, POOL)).amax(4)


def _dense_max_pool(x: torch.Tensor, dilation: int) -> torch.Tensor:
    """3x3 max-pooling of ``(batch, channels, bands, frames)``: stride 3 over bands, stride 1 and
    ``dilation`` over frames. Done separably (same result as ``F.max_pool2d``, but faster)."""
    x = _pool_bands(x)
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

    def _run(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Shared body, one output per ``step`` input frames along time (a power of :data:`POOL`).

        Poolings stride :data:`POOL` in time (as in excerpt mode) while the product of their
        strides is below ``step``; the later ones pool with stride 1 in time and dilate every
        later layer by :data:`POOL` instead. ``step`` = ``POOL ** 2`` is excerpt mode.
        """
        stride, dilation = 1, 1
        for index, unit in enumerate(self.units):
            if index >= _FIRST_DENSE_UNIT:
                x = self.dropout(x)
            x = unit(x, dilation)
            if index in _POOLED_UNITS and stride < step:
                x = _max_pool(x)
                stride *= POOL
            elif index in _POOLED_UNITS:
                x = _dense_max_pool(x, dilation)
                dilation *= POOL
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch,)`` of excerpts ``(batch, 1, n_bands, context)``."""
        self._check_input(x)
        if x.shape[-1] != self.context:
            raise VocalfrontError(f"CNN excerpts must have {self.context} frames, got {x.shape[-1]}")
        return self._run(x, POOL ** len(_POOLED_UNITS)).flatten()

    def dense(self, x: torch.Tensor, step: int = 1) -> torch.Tensor:
        """Logits ``(batch, (frames - context) // step + 1)`` of every ``step``-th excerpt of
        ``(batch, 1, n_bands, frames)``; ``step`` is one of :data:`~vocalfront.grid.FRAME_STEPS`.

        Output ``j`` equals ``forward(x[..., j * step : j * step + context])`` (the excerpt centred
        on input frame ``j * step + context // 2``) in eval mode. Step 3 needs 52 % of step 1's
        multiply-adds (the layers after the first pooling run on every 3rd frame), step 9 47 %. In
        training mode it is a valid training pass, but overlapping excerpts share dropout masks and
        batch-norm statistics, so it is not the same as training on separate excerpts.
        """
        step = check_frame_step(step)
        self._check_input(x)
        if x.shape[-1] < self.context:
            raise VocalfrontError(f"need at least {self.context} frames, got {x.shape[-1]}")
        logits = self._run(x, step)
        return logits[:, 0, 0, : (x.shape[-1] - self.context) // step + 1]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != self.n_bands:
            raise VocalfrontError(
                f"CNN input must be (batch, 1, {self.n_bands}, frames), got {tuple(x.shape)}"
            )

    def get_config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this network."""
        return {"n_bands": self.n_bands, "context": self.context, "batch_norm": self.batch_norm,
                "dropout": self.dropout_p}


def check_frame_step(step: Any) -> int:
    """``step`` as an ``int`` if it is one of :data:`~vocalfront.grid.FRAME_STEPS` (Python or numpy
    integer), else a one-line :class:`VocalfrontError`."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step not in FRAME_STEPS:
        raise VocalfrontError(f"frame step must be one of {', '.join(map(str, FRAME_STEPS))}, "
                              f"got {step!r}")
    return int(step)


def pad_context(features: torch.Tensor, context: int, extra: int = 0) -> torch.Tensor:
    """Pad normalised features ``(..., frames)`` with ``context // 2`` zero frames at both ends,
    and ``extra`` more at the end (frame-step inference rounds the frames up to whole steps).

    Zero is each band's training mean after :class:`BandNorm`: frames before the start and
    after the end of a file look like average music, not like silence or a repeated edge.
    Excerpt-wise and dense inference (and training, if it centres excerpts on edge frames)
    all pad this way, so that every frame gets a prediction from a full ``context`` excerpt.
    """
    half = context // 2
    return F.pad(features, (half, half + extra))


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
    """Build a detector from :meth:`Detector.get_config` output (weights are freshly initialised):
    the one way to make a detector from settings (training's ``[model]`` section goes through it).

    ``config["frontend"]`` goes to :func:`~vocalfront.frontends.build_frontend`,
    ``config["compression"]`` to :func:`~vocalfront.frontends.build_compression`,
    ``config["norm"]`` to :class:`BandNorm` (its ``name`` entry is ignored) and ``config["cnn"]``
    to :class:`SchlueterCNN`. ``norm`` may be left out and so may the CNN's ``n_bands``: both then
    take the front-end's band count. A missing or bad entry is a :class:`VocalfrontError`.
    """
    missing = {"frontend", "compression", "cnn"} - set(config)
    if missing:
        raise VocalfrontError(f"detector config lacks {', '.join(sorted(missing))}")
    parts = [part for part in ("frontend", "compression", "norm", "cnn") if part in config]
    if not all(isinstance(config[part], Mapping) for part in parts):
        raise VocalfrontError("invalid detector config: frontend, compression, norm and cnn must be "
                              "tables of settings")
    try:
        frontend = build_frontend(**config["frontend"])
        norm_config = {"n_bands": frontend.n_bands, **config.get("norm", {})}
        norm_config.pop("name", None)
        return Detector(frontend, build_compression(**config["compression"]), BandNorm(**norm_config),
                        SchlueterCNN(**{"n_bands": frontend.n_bands, **config["cnn"]}))
    except (TypeError, ValueError) as error:
        raise VocalfrontError(f"invalid detector config: {error}") from None
