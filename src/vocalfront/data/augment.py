"""Waveform augmentation for training, applied before any front-end.

Every front-end therefore sees exactly the same augmented audio. Audio is a 1-D float array
(mono, ``grid.sample_rate`` Hz, 22050 by default); labels hold one value per frame of the common
frame grid (``grid.num_frames(len(audio))`` values, 1 = singing). Augmentations, in this order:

1. **Speed change** by resampling with a factor ``r``: the result plays ``r`` times faster, so
   pitch rises and tempo grows by ``r`` together (the combined "pitch shift + time stretch" of
   Schlüter & Grill 2015, done on the waveform). The labels are re-mapped onto the frame grid of
   the new length: output frame ``b`` (centre time ``t``) takes the label of the input frame whose
   centre is nearest to time ``r * t``.
2. **Random equalisation**: a smooth random gain curve over frequency (a few control points,
   equally spaced on a log-frequency axis, with gains drawn uniformly within ``± eq_max_db``,
   joined by shape-preserving cubic interpolation so the curve never leaves that range), applied
   as a zero-phase filter in the frequency domain.
3. **Gain** drawn uniformly in decibels.
4. **Loud mastering**: the audio is driven by a gain drawn in decibels into a limiter
   (pedalboard's ``Limiter``, JUCE's, threshold :data:`MASTER_CEILING_DB`) and clipped at full
   scale, as commercial records are mastered loud: a higher level and flattened peaks; the
   models otherwise rarely see audio near full scale.
   Off by default (``master_probability = 0``).

Each augmentation happens with its own probability (0 switches it off). Everything random comes
from the ``numpy.random.Generator`` passed in, so the result is a function of its state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pedalboard
import scipy.fft
import soxr
from scipy.interpolate import PchipInterpolator

from vocalfront.errors import AudioError, VocalfrontError
from vocalfront.grid import DEFAULT_GRID, FrameGrid

EQ_PADDING = 8192
"""Zeros (samples) appended before filtering in the frequency domain, so that the filter's
impulse response (a few hundred samples for the default curves) does not wrap around."""

MASTER_CEILING_DB = -1.0
"""Threshold (dBFS) of the loud-mastering limiter; what overshoots its attack is clipped at 0 dBFS."""


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities of the waveform augmentations.

    Attributes:
        speed_probability: chance of a speed change (0 switches it off).
        speed_range: ``(low, high)`` speed factors, drawn uniformly; 1.3 = 30 % faster and
            higher, 0.7 = 30 % slower and lower.
        eq_probability: chance of a random equalisation.
        eq_max_db: the gain curve stays within ``± eq_max_db`` decibels.
        eq_points: number of control points of the curve.
        eq_range_hz: ``(low, high)`` frequencies (Hz) of the first and last control point; the
            curve is constant below and above.
        gain_probability: chance of a gain change.
        gain_db_range: ``(low, high)`` gain in decibels, drawn uniformly.
        limit_peak: if true, audio whose peak exceeds 1 after augmentation is scaled down to a
            peak of 1 (off by default: the models work on floating point, not on clipped audio).
        master_probability: chance of loud mastering (0 switches it off).
        master_drive_db_range: ``(low, high)`` gain in decibels, drawn uniformly, that drives
            the audio into the mastering limiter.
    """

    speed_probability: float = 1.0
    speed_range: tuple[float, float] = (0.7, 1.3)
    eq_probability: float = 1.0
    eq_max_db: float = 10.0
    eq_points: int = 6
    eq_range_hz: tuple[float, float] = (30.0, 10000.0)
    gain_probability: float = 1.0
    gain_db_range: tuple[float, float] = (-6.0, 6.0)
    limit_peak: bool = False
    master_probability: float = 0.0
    master_drive_db_range: tuple[float, float] = (0.0, 12.0)

    def __post_init__(self) -> None:
        for name in ("speed_probability", "eq_probability", "gain_probability", "master_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise VocalfrontError(f"augmentation {name} must lie in [0, 1]")
        _check_range("speed_range", self.speed_range, minimum=0.0)
        _check_range("eq_range_hz", self.eq_range_hz, minimum=0.0)
        _check_range("gain_db_range", self.gain_db_range)
        _check_range("master_drive_db_range", self.master_drive_db_range)
        if self.master_drive_db_range[0] < -60.0 or self.master_drive_db_range[1] > 60.0:
            raise VocalfrontError("augmentation master_drive_db_range must lie within -60 to 60 dB, "
                                  f"got {tuple(self.master_drive_db_range)}")
        if not 0 <= self.eq_max_db <= 60:
            raise VocalfrontError(f"augmentation eq_max_db must be from 0 to 60, got {self.eq_max_db!r}")
        if not 2 <= self.eq_points <= 1000:
            raise VocalfrontError(f"augmentation eq_points must be from 2 to 1000, got {self.eq_points!r}")


def _check_range(name: str, bounds: tuple[float, float], minimum: float | None = None) -> None:
    """Reject a ``(low, high)`` range with ``low > high`` or ``low <= minimum``."""
    low, high = bounds
    if not (np.isfinite(low) and np.isfinite(high)) or low > high or (minimum is not None and low <= minimum):
        limit = "" if minimum is None else f" with low > {minimum:g}"
        raise VocalfrontError(f"augmentation {name} must be finite (low, high) with low <= high{limit}, "
                              f"got {tuple(bounds)}")


def check_audio_and_labels(
    audio: np.ndarray, labels: np.ndarray, grid: FrameGrid = DEFAULT_GRID
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``audio`` and ``labels`` as float32 after checking they fit together.

    Raises ``AudioError`` unless ``audio`` is 1-D, finite and at least one frame long and
    ``labels`` is 1-D with ``grid.num_frames(len(audio))`` values.
    """
    audio = np.asarray(audio, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.float32)
    if audio.ndim != 1 or labels.ndim != 1:
        raise AudioError(None, "audio and labels must be 1-D arrays (mono samples, frames)")
    if not np.all(np.isfinite(audio)):
        raise AudioError(None, "audio contains NaN or infinite samples")
    expected = grid.num_frames(len(audio))
    if expected == 0:
        raise AudioError(None, f"{len(audio)} samples is shorter than one frame ({grid.window})")
    if len(labels) != expected:
        raise AudioError(
            None, f"{len(labels)} frame labels for {len(audio)} samples, expected {expected}"
        )
    return audio, labels


def remap_labels(
    labels: np.ndarray, factor: float, num_frames: int, grid: FrameGrid = DEFAULT_GRID
) -> np.ndarray:
    """Labels for ``num_frames`` frames of audio played ``factor`` times faster.

    Output frame ``b`` is centred at time ``t_b`` (seconds); it takes the label of the input
    frame whose centre is nearest to ``factor * t_b`` (the first or last frame beyond the ends).
    Shapes: ``labels (frames_in,)`` → ``(num_frames,)``, same dtype.
    """
    source_times = factor * grid.frame_times(num_frames)
    source = np.clip(grid.frame_at_time(source_times), 0, len(labels) - 1)
    return labels[source]


def change_speed(
    audio: np.ndarray, labels: np.ndarray, factor: float, grid: FrameGrid = DEFAULT_GRID
) -> tuple[np.ndarray, np.ndarray]:
    """Play ``audio`` ``factor`` times faster (pitch and tempo together) by resampling.

    The samples are read as if recorded at ``factor * sample_rate`` and resampled (soxr, high
    quality) to ``sample_rate``, giving about ``len(audio) / factor`` samples; ``labels`` are
    re-mapped with ``remap_labels`` onto the frame grid of the new length.
    Returns ``(audio (samples_out,) float32, labels (grid.num_frames(samples_out),))``.
    """
    rate = grid.sample_rate
    faster = soxr.resample(audio, factor * rate, rate, quality="HQ").astype(np.float32)
    return faster, remap_labels(labels, factor, grid.num_frames(len(faster)), grid)


def random_eq_curve(
    rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Draw control points of a random gain curve.

    Returns ``(frequencies (eq_points,) in Hz, log-spaced over eq_range_hz; gains (eq_points,)
    in dB, uniform in [-eq_max_db, eq_max_db])``.
    """
    low, high = config.eq_range_hz
    frequencies = np.geomspace(low, high, config.eq_points)
    gains_db = rng.uniform(-config.eq_max_db, config.eq_max_db, size=config.eq_points)
    return frequencies, gains_db


def eq_curve_db(
    frequencies: np.ndarray, control_hz: np.ndarray, control_db: np.ndarray
) -> np.ndarray:
    """Gain in dB at ``frequencies`` (Hz) of the curve through the control points.

    Shape-preserving cubic (PCHIP) interpolation over log frequency, constant beyond the first
    and last control point; values never leave ``[min(control_db), max(control_db)]``.
    """
    log_frequencies = np.log(np.clip(frequencies, control_hz[0], control_hz[-1]))
    return PchipInterpolator(np.log(control_hz), control_db)(log_frequencies)


def equalise(
    audio: np.ndarray, control_hz: np.ndarray, control_db: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Filter ``audio`` (samples,) with the zero-phase gain curve ``eq_curve_db``; float32 out."""
    size = scipy.fft.next_fast_len(len(audio) + EQ_PADDING, real=True)
    spectrum = scipy.fft.rfft(audio, size)
    gains_db = eq_curve_db(scipy.fft.rfftfreq(size, 1.0 / sample_rate), control_hz, control_db)
    filtered = scipy.fft.irfft(spectrum * 10.0 ** (gains_db / 20.0), size)
    return filtered[: len(audio)].astype(np.float32)


def augment(
    audio: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig | None = None,
    grid: FrameGrid = DEFAULT_GRID,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the random augmentations of ``config`` (default ``AugmentConfig()``).

    ``audio`` is ``(samples,)`` at ``grid.sample_rate`` Hz, ``labels`` ``(frames,)`` on ``grid``.
    Returns ``(audio (samples_out,) float32, labels (grid.num_frames(samples_out),) float32)``;
    only the speed change alters the length. Deterministic given the state of ``rng``.
    """
    config = config or AugmentConfig()
    audio, labels = check_audio_and_labels(audio, labels, grid)
    if rng.random() < config.speed_probability:
        audio, labels = change_speed(audio, labels, rng.uniform(*config.speed_range), grid)
    if rng.random() < config.eq_probability:
        audio = equalise(audio, *random_eq_curve(rng, config), grid.sample_rate)
    if rng.random() < config.gain_probability:
        audio = audio * np.float32(10.0 ** (rng.uniform(*config.gain_db_range) / 20.0))
    if rng.random() < config.master_probability:
        audio = master_loud(audio, float(rng.uniform(*config.master_drive_db_range)), grid.sample_rate)
    if config.limit_peak and len(audio) and np.max(np.abs(audio)) > 1.0:
        audio = audio / np.max(np.abs(audio))
    return audio, labels


def master_loud(audio: np.ndarray, drive_db: float, sample_rate: int) -> np.ndarray:
    """``audio`` ``(samples,)`` raised by ``drive_db`` decibels into JUCE's limiter (threshold
    :data:`MASTER_CEILING_DB`, 100 ms release; it adds the threshold's depth back as make-up
    gain and clips at 0 dBFS) and clipped to ``[-1, 1]``: a loud master's level and flattened
    peaks. float32, same length."""
    driven = np.asarray(audio, dtype=np.float32) * np.float32(10.0 ** (drive_db / 20.0))
    limited = pedalboard.Limiter(threshold_db=MASTER_CEILING_DB, release_ms=100.0)(driven, sample_rate)
    return np.clip(limited.reshape(-1)[: len(driven)], -1.0, 1.0).astype(np.float32)
