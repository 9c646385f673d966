"""Fitting a detector's per-band normalisation (:class:`~vocalfront.frontends.BandNorm`) on the
training clips, before the first update of a run."""

from __future__ import annotations

import numpy as np

from ..frontends import BandNorm
from ..inference import compute_features
from ..model import Detector
from .sampler import TrainingClip

NORM_STREAM = 2
"""Sub-stream of ``train.seed`` for picking the normalisation clips."""


def fit_norm(detector: Detector, clips: list[TrainingClip], max_clips: int, seed: int) -> None:
    """Fit the detector's per-band normalisation on un-augmented training mixtures.

    Uses ``max_clips`` clips drawn with ``seed`` (all when 0 or fewer are available).
    """
    rng = np.random.default_rng((seed, NORM_STREAM))
    chosen = clips if max_clips == 0 or max_clips >= len(clips) else [
        clips[i] for i in sorted(rng.choice(len(clips), max_clips, replace=False))]
    identity = BandNorm(detector.norm.n_bands, detector.norm.eps)  # unfitted: the identity
    unnormalised = Detector(detector.frontend, detector.compression, identity, detector.cnn)
    detector.norm.fit([compute_features(unnormalised, clip.audio.sum(axis=0), source=clip.name)
                       for clip in chosen])
