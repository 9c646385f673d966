"""The validation and test sets of a training run, and the metrics the trainer selects by.

A run validates on whole clips that look like music: the held-out clips of each source as
mixtures - MIR-1K's own mixtures, and solo voices (SSVD, GTSinger) mixed over instrumental music
that training never sees (:func:`mix_solo_clips`) - plus excerpts of that held-out music alone,
labelled all 0 (:func:`instrumental_clips`), the intros, solos and breaks that a detector must
leave alone (:func:`heldout_clips`; :func:`heldout_set` builds it from a configuration). The
test set is built the same way from the test splits and the test music, with other seeds. The
mixing is seeded, so every validation of a run, and every run of a seed, sees the same audio.
:func:`validate` scores clips pooled (what checkpoint and threshold selection use) and per
source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from ..calibration import SMOOTHINGS, choose_postprocessing, final_metrics
from ..data.remix import InstrumentalPool, RemixConfig, at_level, remix
from ..errors import VocalfrontError
from ..evaluation import choose_threshold, evaluate_files, median_smooth
from ..grid import DEFAULT_GRID, FrameGrid
from ..inference import predict_waveform
from ..model import Detector
from ..postprocessing import PostProcessing
from .config import Config, DataConfig
from .sampler import TrainingClip, load_clips
from .sources import (
    Source,
    Split,
    heldout_music_folders,
    instrumental_pool,
    open_sources,
    sample,
    uses_training_music,
)

VALIDATION_GAIN_DB = (-6.0, 6.0)
"""Voice-to-music gain range (dB, see :mod:`vocalfront.data.remix`) of the solo mixtures."""
INSTRUMENTAL_SOURCE = "instrumental"
"""Source name of the music-only validation clips."""
HELDOUT_MUSIC = (40, 30.0)
"""Excerpts of held-out music alone in the validation and test sets: how many, seconds each."""
HELDOUT_LEVEL = 0.1
"""RMS of every held-out clip's mixture (-20 dB full scale, the level of the music excerpts) when
the run's remixing is level-neutral (``data.remix.level_neutral``)."""
METRIC_KEYS = ("error", "f_measure", "precision", "recall", "specificity", "auroc", "ece")
_STREAMS = {"valid": (), "test": (1,), "train": (2,)}
"""Extra seed parts of each split's mixing (validation keeps the plain seed)."""


def heldout_clips(config: DataConfig, sources: list[Source], split: Split, seed: int, grid: FrameGrid,
                  progress: bool = False, per_source: int | None = None,
                  ) -> tuple[list[TrainingClip], list[str]]:
    """The ``valid`` or ``test`` clips of a run: ``(clips, problems)`` (see the module docstring),
    audio at ``grid``'s sample rate and labels on ``grid`` (``sources`` must be opened on it).

    Each source's clips of ``split`` (sources without them are left out), solo ones mixed over
    the split's held-out music, plus :data:`HELDOUT_MUSIC` excerpts of that music alone.
    Solo sources without held-out music are an error. With ``data.remix.level_neutral`` every
    clip's mixture is brought to :data:`HELDOUT_LEVEL`, so that loudness tells nothing of a
    voice there either. ``per_source``: a seeded sample of at most
    that many clips of each source. Split ``train`` builds the same from the training clips and
    the training music, un-augmented: how well a model fits what it was trained on.
    """
    check_heldout_music(config, sources, split)
    clips: list[TrainingClip] = []
    problems: list[str] = []
    pool = instrumental_pool(config, split, grid)
    stream = (seed, *_STREAMS[split])
    for index, source in enumerate(sources):
        reader = source.reader(split)
        if reader is None:
            continue
        if per_source is not None:
            reader = sample(reader, per_source, np.random.default_rng((*stream, 9, index)))
        loaded, failed = load_clips(reader, False, progress, source.name, source.solo)
        problems += failed
        if source.solo:
            assert pool is not None  # check_heldout_music
            loaded = mix_solo_clips(loaded, pool, stream, grid)
        clips += loaded
    if pool is not None:
        count, seconds = HELDOUT_MUSIC
        clips += instrumental_clips(pool, count, seconds, stream, grid.sample_rate, grid.num_frames)
    if config.remix.level_neutral:
        clips = [at_heldout_level(clip) for clip in clips]
    return clips, problems


def at_heldout_level(clip: TrainingClip) -> TrainingClip:
    """``clip`` with all its stems scaled alike so that their mixture has RMS
    :data:`HELDOUT_LEVEL` (a silent clip as it is)."""
    return replace(clip, audio=at_level(clip.audio, HELDOUT_LEVEL))


def heldout_set(config: Config, split: Split, grid: FrameGrid, seed: int | None = None,
                progress: bool = False, per_source: int | None = None,
                ) -> tuple[list[TrainingClip], list[str]]:
    """A run's ``valid`` or ``test`` set (or ``train``: see :func:`heldout_clips`) from its
    resolved configuration: ``(clips, problems)`` of :func:`heldout_clips` over the sources of
    ``config.data`` opened on ``grid`` (the detector's), mixed with ``seed`` (default
    ``train.seed``: the run's own validation mixing), at most ``per_source`` clips of each source;
    progress bars while the clips load when ``progress``."""
    seed = config.train.seed if seed is None else seed
    return heldout_clips(config.data, open_sources(config.data, grid), split, seed, grid, progress,
                         per_source)


def check_heldout_music(config: DataConfig, sources: list[Source], split: Split) -> None:
    """Refuse solo sources with clips of ``split`` when the configuration gives no held-out music
    to mix them over (checked before any audio is decoded)."""
    solo = [source.name for source in sources if source.solo and source.reader(split) is not None]
    if split == "train":
        if solo and not uses_training_music(config):
            raise VocalfrontError(f"train mixtures of solo voices ({', '.join(solo)}) need training "
                                  "music: set data.instrumental (and remix modes that use it)")
    elif solo and not heldout_music_folders(config, split):
        raise VocalfrontError(f"{split} mixtures of solo voices ({', '.join(solo)}) need held-out "
                              f"music: set data.instrumental_{split}")


def mix_solo_clips(clips: list[TrainingClip], pool: InstrumentalPool, seed: int | tuple[int, ...],
                   grid: FrameGrid) -> list[TrainingClip]:
    """Each solo clip (``(1, samples)`` voice, labels on ``grid``) mixed over a held-out music
    excerpt of its length, at a gain drawn uniformly in :data:`VALIDATION_GAIN_DB`, music at the
    voice's level; the clip's own labels. Deterministic for ``seed``."""
    rng = np.random.default_rng((*np.atleast_1d(seed).tolist(), 7))
    config = RemixConfig(own=0.0, external=1.0, voice=0.0, accompaniment=0.0,
                         gain_db_range=VALIDATION_GAIN_DB)
    mixed = []
    for clip in clips:
        voice = clip.audio[0]
        result = remix(voice, np.zeros_like(voice), clip.labels, rng, config, pool, grid)
        mixed.append(TrainingClip(clip.name, result.audio[None, :], result.labels, clip.source))
    return mixed


def instrumental_clips(pool: InstrumentalPool, count: int, seconds: float, seed: int | tuple[int, ...],
                       sample_rate: int, num_frames: Callable[[int], int]) -> list[TrainingClip]:
    """``count`` excerpts of ``seconds`` of held-out music, labels all 0, source
    :data:`INSTRUMENTAL_SOURCE`. ``num_frames(samples)`` gives the frame count."""
    rng = np.random.default_rng((*np.atleast_1d(seed).tolist(), 8))
    samples = round(seconds * sample_rate)
    return [TrainingClip(f"instrumental-{index:03d}", (0.1 * pool.excerpt(rng, samples))[None, :],
                         np.zeros(num_frames(samples), np.float32), INSTRUMENTAL_SOURCE)
            for index in range(count)]


def validate(detector: Detector, clips: list[TrainingClip], median_filter: int,
             threshold: float | None = None, final: PostProcessing | None = None,
             bf16: bool = False, frame_step: int = 1) -> dict[str, object]:
    """Pooled metrics, the ``threshold`` (``None``: the accuracy-maximising one, chosen on these
    clips), the number of ``frames`` and, under ``sources``, the metrics of each clip source at
    that threshold; with ``final`` settings also ``final_error``, ``final_recall`` and
    ``final_specificity``, pooled and per source: the frame error, recall and specificity of the
    final decisions (:func:`vocalfront.calibration.final_decisions`).

    Whole-file probabilities (:func:`~vocalfront.inference.predict_waveform`, with ``bf16`` and
    ``frame_step`` as its ``bf16`` and ``step``) of each clip's mixture (its stems summed), scored
    by :func:`score_clips`.
    """
    return score_clips(predict_clips(detector, clips, bf16=bf16, frame_step=frame_step), clips,
                       median_filter, threshold, final, detector.grid)


def score_clips(probabilities: list[np.ndarray], clips: list[TrainingClip], median_filter: int,
                threshold: float | None = None, final: PostProcessing | None = None,
                grid: FrameGrid = DEFAULT_GRID) -> dict[str, object]:
    """:func:`validate` from the clips' probabilities ``(frames,)`` (in the order of ``clips``):
    median-smoothed over ``median_filter`` frames, thresholded; AUROC from the unsmoothed
    probabilities (NaN for a source without both classes)."""
    labels = [clip.labels for clip in clips]
    if threshold is None:
        threshold = choose_threshold([median_smooth(p, median_filter) for p in probabilities], labels)
    metrics: dict[str, dict[str, float]] = {}
    for name, mine in source_groups(clips).items():
        part = evaluate_files([probabilities[i] for i in mine], [labels[i] for i in mine], threshold,
                              [clips[i].name for i in mine], median_filter)
        metrics[name] = {"frames": int(part.pooled["frames"]),
                         **{key: float(part.pooled[key]) for key in METRIC_KEYS}}
        if final is not None:
            decided = final_metrics([probabilities[i] for i in mine], [labels[i] for i in mine], final, grid)
            metrics[name].update({f"final_{key}": float(decided[key])
                                  for key in ("error", "recall", "specificity")})
    pooled = metrics.pop("all")
    return {"threshold": threshold, **pooled, **({"sources": metrics} if len(metrics) > 1 else {})}


def source_groups(clips: Sequence[TrainingClip]) -> dict[str, list[int]]:
    """Indices of ``clips`` by source: ``all`` first, then each source in sorted order (a clip
    without a source under ``clips``)."""
    groups = {"all": list(range(len(clips)))}
    for source in sorted({clip.source for clip in clips}):
        groups[source or "clips"] = [i for i, clip in enumerate(clips) if clip.source == source]
    return groups


def predict_clips(detector: Detector, clips: list[TrainingClip], progress: bool = False,
                  bf16: bool = False, frame_step: int = 1) -> list[np.ndarray]:
    """Whole-file probabilities ``(frames,)`` of each clip's mixture (its stems summed; ``bf16``
    and ``frame_step`` as :func:`~vocalfront.inference.predict_waveform`'s ``bf16`` and ``step``);
    a progress bar over the clips when ``progress``."""
    return [predict_waveform(detector, clip.audio.sum(axis=0), source=clip.name, bf16=bf16,
                             step=frame_step)
            for clip in tqdm(clips, desc="scoring clips", unit="clip", disable=not progress, leave=False)]


def calibrate_clips(probabilities: list[np.ndarray], clips: list[TrainingClip], median_filter: int,
                    grid: FrameGrid = DEFAULT_GRID,
                    peak_thresholds: Sequence[float] = ()) -> dict[str, object]:
    """The decision settings chosen on validation ``clips`` from their probabilities
    ``(frames,)`` on ``grid`` (in the order of ``clips``;
    :func:`vocalfront.calibration.choose_postprocessing`, trying the run's own ``median_filter``
    too, and hysteresis with ``peak_thresholds`` when given) as model-record keys, with
    ``valid_final_error``: the pooled frame error of the final decisions there (never above the
    error at the run's own settings)."""
    labels = [clip.labels for clip in clips]
    settings, tried = choose_postprocessing(probabilities, labels, grid,
                                            sorted({*SMOOTHINGS, median_filter}),
                                            peak_thresholds=peak_thresholds)
    return {**settings.to_record(), "valid_final_error": min(row["error"] for row in tried)}
