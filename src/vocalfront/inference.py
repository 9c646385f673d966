"""Whole-file inference: one singing-voice probability per frame of the common grid.

The CNN runs densely (:meth:`~vocalfront.model.SchlueterCNN.dense`) over the feature sequence,
padded at both ends by ``context // 2`` = 57 frames with zeros (each band's training mean, see
:func:`~vocalfront.model.pad_context`), so frame ``b`` gets the prediction of the 115-frame excerpt
centred on it - exactly what :func:`excerpt_frame_logits` computes one excerpt at a time, at a
fraction of the cost. On request (``step`` 3 or 9) it runs on every 3rd or 9th frame only and
the logits of the frames between are interpolated linearly. Memory stays bounded for files of
any length: the front-end runs on overlapping audio chunks and the CNN on overlapping feature
chunks; only the features (80 floats per frame, 81 MB per hour) and the output are kept whole.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .errors import AudioError, VocalfrontError
from .model import Detector, SchlueterCNN, check_frame_step, pad_context

CHUNK_FRAMES = 512
"""Frames per CNN chunk: small enough to stay in cache, large enough to amortise the overlap."""
MARGIN_SAMPLES = 8192
"""Default audio margin (samples) on each side of a front-end chunk, dropped afterwards."""
BF16_TOLERANCE = 0.02
"""Largest difference between probabilities computed with ``bf16=True`` and in float32 that
the tests allow (the packaged model differs by at most 0.007 on its example)."""
PROGRESS_DELAY = 2.0
"""Seconds a step must run before its progress bar appears (short files stay quiet)."""


def _steps(steps: range, progress: bool, what: str, per_step_seconds: float) -> Iterator[int]:
    """``steps``, with a progress bar in seconds of audio when ``progress`` (stderr, transient)."""
    if not progress:
        yield from steps
        return
    with tqdm(total=round(len(steps) * per_step_seconds), desc=what, unit="s audio", leave=False,
              delay=PROGRESS_DELAY) as bar:
        for step in steps:
            yield step
            bar.update(min(per_step_seconds, bar.total - bar.n))


@contextlib.contextmanager
def _evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode and ``torch.inference_mode`` for the block; every submodule's mode is restored."""
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        for submodule, training in modes:
            submodule.training = training


def frame_logits(cnn: SchlueterCNN, features: torch.Tensor,
                 chunk_frames: int = CHUNK_FRAMES, progress: bool = False,
                 frame_rate: float = 70.0, bf16: bool = False, step: int = 1) -> torch.Tensor:
    """Per-frame logits ``(batch, frames)`` of normalised features ``(batch, n_bands, frames)``.

    Dense evaluation in eval mode, ``chunk_frames`` output frames at a time (rounded up to whole
    steps; each chunk reads ``context - 1`` extra frames of overlap); the result does not depend
    on ``chunk_frames``. ``progress``: a progress bar in seconds of audio (``frame_rate`` frames
    per second). ``bf16``: the CNN under bfloat16 autocast, about 1.7 times as fast on CPUs with
    bf16 instructions; its probabilities differ from float32's by round-off
    (:data:`BF16_TOLERANCE`). The logits are float32 either way.

    ``step`` (one of :data:`~vocalfront.grid.FRAME_STEPS`): the CNN runs on the anchor frames
    0, ``step``, ``2 step``, ... up to the first at or after the last frame (beyond the end the
    features are padded with zeros, as :func:`~vocalfront.model.pad_context` pads), where its
    logits are those of step 1 up to round-off; the frames between two anchors get the linear
    interpolation of their logits. Step 3 needs 52 % of the CNN's multiply-adds (it ran 1.5 to
    1.7 times as fast); the median filter of the decisions smooths over far more frames than the
    interpolation spans.
    """
    step = check_frame_step(step)
    if chunk_frames < 1:
        raise VocalfrontError(f"chunk_frames must be positive, got {chunk_frames}")
    frames = features.shape[-1]
    if frames < 1:
        raise VocalfrontError("features have no frames")
    last = -(-(frames - 1) // step) * step  # the first anchor at or after the last frame
    chunk = -(-chunk_frames // step) * step  # frames per chunk, whole steps
    with _evaluating(cnn), torch.autocast(features.device.type, torch.bfloat16, enabled=bf16):
        padded = pad_context(features, cnn.context, last + 1 - frames).unsqueeze(1)
        pieces = [cnn.dense(padded[..., start : start + chunk - step + cnn.context], step).float()
                  for start in _steps(range(0, last + 1, chunk), progress, "singing",
                                      chunk / frame_rate)]
    return _interpolate(torch.cat(pieces, dim=-1), step)[..., :frames]


def _interpolate(anchors: torch.Tensor, step: int) -> torch.Tensor:
    """Logits ``(batch, (n - 1) * step + 1)`` linearly interpolated from those of every
    ``step``-th frame ``(batch, n)``; exactly the anchors' values at the anchors."""
    weights = torch.arange(step, dtype=anchors.dtype) / step
    between = torch.lerp(anchors[:, :-1, None], anchors[:, 1:, None], weights)
    return torch.cat([between.flatten(1), anchors[:, -1:]], dim=1)


def excerpt_frame_logits(cnn: SchlueterCNN, features: torch.Tensor,
                         batch_size: int = 32) -> torch.Tensor:
    """Reference for :func:`frame_logits`: each frame's padded excerpt through ``cnn.forward``.

    ``features`` ``(batch, n_bands, frames)`` → logits ``(batch, frames)``; about 50 times slower
    than dense evaluation, meant for tests and benchmarks.
    """
    batch, bands, frames = features.shape
    with _evaluating(cnn):
        # a view (batch, frames, bands, context); only batch_size frames at a time are copied
        windows = pad_context(features, cnn.context).unfold(-1, cnn.context, 1).transpose(1, 2)
        logits = [cnn(windows[:, start : start + batch_size].reshape(-1, 1, bands, cnn.context))
                  .view(batch, -1) for start in range(0, frames, batch_size)]
    return torch.cat(logits, dim=1)


def _check_audio(audio: np.ndarray | torch.Tensor, min_samples: int, source: str | None) -> None:
    """Reject anything but a mono floating-point signal of at least ``min_samples`` samples."""
    if not isinstance(audio, np.ndarray | torch.Tensor):
        raise AudioError(source, f"expected a numpy array or tensor, got {type(audio).__name__}")
    if audio.ndim != 1:
        raise AudioError(source, f"expected mono audio of shape (samples,), got {tuple(audio.shape)}")
    floating = (audio.is_floating_point() if isinstance(audio, torch.Tensor)
                else np.issubdtype(audio.dtype, np.floating))
    if not floating:
        raise AudioError(source, f"audio must be floating point, got {audio.dtype}")
    if len(audio) < min_samples:
        raise AudioError(source, f"too short: {len(audio)} samples, need at least {min_samples} "
                                 "for one frame")


def _float_segment(audio: np.ndarray | torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Samples ``[start, stop)`` as a new float32 tensor ``(1, stop - start)``."""
    if isinstance(audio, torch.Tensor):
        return audio[start:stop].to(torch.float32, copy=True).unsqueeze(0)
    return torch.from_numpy(np.array(audio[start:stop], dtype=np.float32)).unsqueeze(0)


def compute_features(detector: Detector, audio: np.ndarray | torch.Tensor,
                     chunk_seconds: float = 60.0, margin: int = MARGIN_SAMPLES,
                     source: str | None = None, progress: bool = False) -> torch.Tensor:
    """Normalised features ``(n_bands, frames)`` of mono ``audio`` at ``detector.grid.sample_rate``.

    The front-end runs on chunks of ``chunk_seconds`` worth of frames, each read with ``margin``
    extra samples (rounded up to whole hops) on both sides; frames computed from those margins
    are dropped, so a front-end whose frames depend on at most ``margin`` samples beyond their
    window gives the one-shot result. ``frames = detector.grid.num_frames(len(audio))``.
    ``source`` (a file name) is put into error messages; features that are not finite (samples
    far beyond [-1, 1] overflow the front-end) are an :class:`~vocalfront.errors.AudioError`.
    ``progress``: a progress bar in seconds of audio for signals that take a while.
    """
    grid = detector.grid
    _check_audio(audio, grid.window, source)
    if chunk_seconds <= 0 or margin < 0:
        raise VocalfrontError(
            f"need chunk_seconds > 0 and margin >= 0, got {chunk_seconds} and {margin}")
    total = grid.num_frames(len(audio))
    chunk = max(1, round(chunk_seconds * grid.frame_rate))
    margin_frames = math.ceil(margin / grid.hop)
    with _evaluating(detector):
        features = torch.empty(detector.cnn.n_bands, total)
        for first in _steps(range(0, total, chunk), progress, "features", chunk / grid.frame_rate):
            stop = min(total, first + chunk)
            read_from = max(0, first - margin_frames)
            read_to = min(len(audio), grid.num_samples(stop + margin_frames))
            segment = _float_segment(audio, read_from * grid.hop, read_to)
            try:
                chunk_features = detector.features(segment)[0]
            except AudioError as error:
                raise AudioError(source or error.source, error.problem) from None
            if not bool(torch.isfinite(chunk_features).all()):  # e.g. float samples of 1e30
                raise AudioError(source, "features are not finite (peak sample magnitude "
                                         f"{float(segment.abs().max()):.3g}; expected about [-1, 1])")
            features[:, first:stop] = chunk_features[:, first - read_from : stop - read_from]
    return features


def predict_waveform(detector: Detector, audio: np.ndarray | torch.Tensor,
                     chunk_seconds: float = 60.0, margin: int = MARGIN_SAMPLES,
                     source: str | None = None, progress: bool = False,
                     bf16: bool = False, step: int = 1) -> np.ndarray:
    """Singing-voice probability per frame, float32 ``(detector.grid.num_frames(len(audio)),)``.

    ``audio``: mono float samples at ``detector.grid.sample_rate`` Hz (22050), at least one
    window (1024 samples) long, else :class:`~vocalfront.errors.AudioError`. Frame ``b`` is
    centred at sample ``hop * b + window // 2``. Features come from :func:`compute_features`
    (``chunk_seconds``, ``margin``, ``source`` as there), logits from :func:`frame_logits`
    (``bf16`` as there: faster, equal to float32 within :data:`BF16_TOLERANCE`; ``step`` as
    there: the CNN on every ``step``-th frame, its logits interpolated between);
    ``progress`` shows a progress bar for each when they take a while.
    """
    step = check_frame_step(step)
    features = compute_features(detector, audio, chunk_seconds, margin, source, progress)
    logits = frame_logits(detector.cnn, features.unsqueeze(0), progress=progress,
                          frame_rate=detector.grid.frame_rate, bf16=bf16, step=step)[0]
    return torch.sigmoid(logits).numpy()
