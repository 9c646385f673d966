"""Singing-voice detection in one call: audio (file or array) → singing segments.

::

    from vocalfront import detect
    segments, probabilities = detect("song.flac")            # the packaged default model
    result = detect(samples, sample_rate=44100, model="runs/x/model.pt")
    result.segments, result.smoothed, result.threshold, result.frame_times

Steps: the audio is mixed to mono and resampled to the model rate (22050 Hz); the detector gives
one singing probability per frame of the common grid (70 frames per second, frame ``b`` centred at
``(315 b + 512) / 22050`` s; :func:`~vocalfront.inference.predict_waveform`); the probabilities are
median-smoothed (56 frames = 0.8 s unless the model file says otherwise) and a frame is singing
when its smoothed probability is strictly above the threshold (the model's validation threshold
unless given); runs of singing frames become :class:`~vocalfront.segments.Segment` objects, close
ones merged, those that never rise above a peak threshold dropped when one is set, and short ones
dropped (:class:`~vocalfront.postprocessing.PostProcessing` owns these steps).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import MAX_FILE_RATE, MIN_FILE_RATE, load_audio, resample
from .detector_file import LoadedModel, load_detector_file
from .errors import AudioError, VocalfrontError
from .inference import predict_waveform
from .model import Detector, check_frame_step
from .postprocessing import is_number
from .pretrained import require_default_model
from .provenance import Provenance, make_provenance
from .segments import Segment, frames_inside

AudioInput = str | Path | np.ndarray | torch.Tensor


ModelInput = str | Path | Detector | LoadedModel | None

_loaded: dict[str, tuple[tuple[int, int], LoadedModel]] = {}
"""Resolved model path → ((mtime_ns, size) when read, model): one cached model per file."""


def load_model(model: ModelInput = None) -> LoadedModel:
    """The detector and decision settings named by ``model``: what :func:`detect` is given.

    ``model`` is a detector file (read by :func:`~vocalfront.detector_file.load_detector_file`
    once per process and reused while the file is unchanged),
    a :class:`Detector` (threshold 0.5, 56-frame smoothing), a :class:`LoadedModel` (returned as
    is) or ``None`` for the packaged default (:class:`~vocalfront.pretrained.MissingModelError` if
    there is none). File settings come from the file's ``extra`` record
    (:meth:`~vocalfront.postprocessing.PostProcessing.from_record`: ``threshold``,
    ``median_filter``, ``min_duration``, ``min_gap``; the defaults there when missing).
    """
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, Detector):
        return LoadedModel(model)
    if model is None:
        model = require_default_model()
    if not isinstance(model, str | Path):
        raise VocalfrontError(
            f"model must be a file path, a Detector or None, got {type(model).__name__}")
    path = Path(model).resolve()
    try:
        stat = path.stat()
    except OSError as error:
        raise VocalfrontError(f"{model}: cannot read model ({error.strerror or error})") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _loaded.get(str(path))
    if cached is None or cached[0] != stamp:
        cached = (stamp, load_detector_file(path))
        _loaded[str(path)] = cached
    return cached[1]


@dataclass(frozen=True, eq=False)
class Detection:
    """What :func:`detect` found in one signal.

    ``segments``: singing intervals in seconds, sorted and disjoint. ``probabilities``: raw
    per-frame singing probability, float32 ``(frames,)``; ``smoothed``: after the median filter,
    ``(frames,)``; ``threshold``: the one it was compared with (the provenance has every
    setting, :class:`~vocalfront.postprocessing.PostProcessing`). ``frame_times``: frame centres
    in seconds ``(frames,)``. ``duration``: signal length in seconds. ``provenance``: version,
    model and post-processing that made it (set by :func:`detect`). Unpacks as
    ``segments, probabilities = detection``.
    """

    segments: list[Segment]
    probabilities: np.ndarray
    smoothed: np.ndarray
    threshold: float
    frame_times: np.ndarray
    duration: float
    provenance: Provenance | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.segments, self.probabilities))

    @property
    def decisions(self) -> np.ndarray:
        """Per-frame singing decisions, boolean ``(frames,)``: whether each frame's centre lies in
        a segment (what the label files say)."""
        return frames_inside(self.segments, self.frame_times)

    @property
    def singing_seconds(self) -> float:
        """Total length of the segments in seconds."""
        return sum(segment.duration for segment in self.segments)


def detect(
    audio: AudioInput,
    sample_rate: float | None = None,
    model: ModelInput = None,
    threshold: float | None = None,
    smooth: int | None = None,
    min_duration: float | None = None,
    min_gap: float | None = None,
    progress: bool = False,
    bf16: bool = False,
    frame_step: int = 1,
    peak_threshold: float | None = None,
) -> Detection:
    """Detect singing in an audio file or signal.

    ``audio``: a file path (any format :func:`~vocalfront.audio.load_audio` reads; channels are
    averaged), or a numpy array / tensor of shape ``(samples,)`` or ``(channels, samples)`` or
    ``(samples, channels)`` (the shorter axis is taken as channels and averaged) at
    ``sample_rate`` Hz, which arrays need and files must not be given; integer arrays are scaled
    to [-1, 1). ``model``: see :func:`load_model`. ``threshold``: decision threshold on smoothed
    probabilities, 0 to 1 (default: the model's). ``smooth``: median filter length in frames,
    0 to :data:`~vocalfront.evaluation.MAX_SMOOTHING` (default: the model's, 56).
    ``min_gap``/``min_duration`` (seconds): fill shorter gaps between segments, then drop shorter
    segments (default: the model's, see :mod:`vocalfront.postprocessing`). ``peak_threshold``: keep
    only runs of frames above ``threshold`` whose smoothed probability rises above it somewhere, 0
    to 1 (default: the model's; at or below ``threshold``: every run). Numbers may be Python
    or numpy scalars; arrays need a ``sample_rate`` from :data:`~vocalfront.audio.MIN_FILE_RATE`
    to :data:`~vocalfront.audio.MAX_FILE_RATE` Hz. ``progress``: show a progress bar for long
    signals. ``bf16``: run the CNN under bfloat16 autocast, faster on CPUs with bf16 instructions,
    probabilities within :data:`~vocalfront.inference.BF16_TOLERANCE` of float32's (recorded in
    the provenance). ``frame_step``: 1 (every frame), 3 or 9: run the CNN on every 3rd or 9th frame
    only and interpolate its logits between (:func:`~vocalfront.inference.frame_logits`; recorded
    in the provenance); step 3 makes detection about 1.5 times as fast and moves the
    probabilities a little where the CNN's output jumps from frame to frame (the packaged model's
    figures: README, "Detecting singing"). Bad input raises a one-line
    :class:`~vocalfront.errors.VocalfrontError`.
    """
    frame_step = check_frame_step(frame_step)
    loaded = load_model(model)
    settings = loaded.postprocessing.override(threshold, smooth, min_duration, min_gap, peak_threshold)
    grid = loaded.detector.grid
    samples, source = _mono_samples(audio, sample_rate, grid.sample_rate)
    probabilities = predict_waveform(loaded.detector, samples, source=source, progress=progress,
                                     bf16=bf16, step=frame_step)
    smoothed, segments = settings.apply(probabilities, grid, len(samples) / grid.sample_rate)
    return Detection(segments, np.asarray(probabilities), smoothed, settings.threshold,
                     grid.frame_times(len(smoothed)), len(samples) / grid.sample_rate,
                     make_provenance(loaded.source, settings, bf16, frame_step))


def _mono_samples(audio: AudioInput, sample_rate: float | None,
                  target_rate: int) -> tuple[np.ndarray, str | None]:
    """Mono float32 ``(samples,)`` at ``target_rate`` Hz, and the file name (None for arrays)."""
    if isinstance(audio, str | Path):
        if sample_rate is not None:
            raise AudioError(audio, "sample_rate is only for arrays; a file carries its own rate")
        return load_audio(audio, target_rate), str(audio)
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu()
        audio = (audio.float() if audio.dtype in (torch.float16, torch.bfloat16) else audio).numpy()
    if not isinstance(audio, np.ndarray):
        raise AudioError(None, f"expected a file path, numpy array or tensor, got {type(audio).__name__}")
    if sample_rate is None:
        raise AudioError(None, "sample_rate (Hz) is required when passing an array")
    if (not is_number(sample_rate) or not MIN_FILE_RATE <= sample_rate <= MAX_FILE_RATE
            or sample_rate != int(sample_rate)):
        raise AudioError(None, f"sample_rate must be a whole number of Hz from {MIN_FILE_RATE} to "
                               f"{MAX_FILE_RATE}, got {sample_rate!r}")
    mono = _mix_down(audio)
    if sample_rate == target_rate:
        return mono, None  # no copy: long signals stay affordable
    return resample(mono, int(sample_rate), target_rate), None


def _mix_down(audio: np.ndarray) -> np.ndarray:
    """Average the channels of a 1-D or 2-D array (the shorter axis is channels).

    Float input of 32 bits or more keeps its dtype (1-D input is returned as it is); half
    precision becomes float32, signed integers float32 in [-1, 1).
    """
    if audio.ndim not in (1, 2) or audio.size == 0:
        raise AudioError(None, f"expected audio of shape (samples,) or (channels, samples), got "
                               f"{audio.shape}")
    if np.issubdtype(audio.dtype, np.signedinteger):
        audio = audio.astype(np.float32) / np.float32(np.iinfo(audio.dtype).max + 1)
    elif not np.issubdtype(audio.dtype, np.floating):
        raise AudioError(None, f"audio must be floating point or signed integer, got {audio.dtype}")
    elif audio.dtype.itemsize < 4:
        audio = audio.astype(np.float32)
    if not np.isfinite(audio).all():
        raise AudioError(None, "audio contains NaN or Inf samples")
    if audio.ndim == 2:
        audio = audio.mean(axis=int(np.argmin(audio.shape)), dtype=audio.dtype)
    return audio
