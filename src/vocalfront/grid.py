"""The common frame grid every front-end produces (``protocol.md``).

Frame ``b`` is centred at sample ``hop * b + window // 2`` and, for the STFT front-end, covers the
samples ``[hop * b, hop * b + window)`` (no centring, no padding). A signal of ``n`` samples has
``1 + (n - window) // hop`` frames; shorter signals have none and are rejected.
With the defaults (22050 Hz, hop 315, window 1024) that is 70 frames per second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 22050
"""Model sample rate in Hz."""
HOP = 315
"""Frame hop in samples (70 frames per second at 22050 Hz)."""
WINDOW = 1024
"""STFT window length in samples; frame centres lie ``WINDOW // 2`` samples after frame starts."""
FRAME_STEPS = (1, 3, 9)
"""Frames between the CNN's evaluations that whole-file inference offers (the logits of the frames
between are interpolated, :func:`vocalfront.inference.frame_logits`): the powers of the CNN's
pooling size 3 up to its two poolings (:meth:`vocalfront.model.SchlueterCNN.dense`). Kept here,
free of torch, so that the command line checks ``--frame-step`` before importing it."""


@dataclass(frozen=True)
class FrameGrid:
    """Frame positions for a sample rate (Hz), hop (samples) and window (samples)."""

    sample_rate: int = SAMPLE_RATE
    hop: int = HOP
    window: int = WINDOW

    @property
    def offset(self) -> int:
        """Sample index of the centre of frame 0."""
        return self.window // 2

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop

    def num_frames(self, num_samples: int) -> int:
        """Number of whole frames in a signal of ``num_samples`` samples (0 if shorter than a window)."""
        if num_samples < self.window:
            return 0
        return 1 + (num_samples - self.window) // self.hop

    def num_samples(self, num_frames: int) -> int:
        """Shortest signal length in samples that has ``num_frames`` frames."""
        return self.window + (num_frames - 1) * self.hop

    def frame_centres(self, num_frames: int) -> np.ndarray:
        """Centre sample index of each frame, shape ``(num_frames,)``."""
        return self.offset + self.hop * np.arange(num_frames)

    def frame_times(self, num_frames: int) -> np.ndarray:
        """Centre time of each frame in seconds, shape ``(num_frames,)``."""
        return self.frame_centres(num_frames) / self.sample_rate

    def frame_at_time(self, seconds: np.ndarray | float) -> np.ndarray:
        """Index of the frame whose centre is nearest to each time (seconds); may be out of range."""
        return np.rint((np.asarray(seconds) * self.sample_rate - self.offset) / self.hop).astype(int)


DEFAULT_GRID = FrameGrid()
