"""Scoring an experiment's run on the test portion of its data, per source and per file.

The test set is the run's held-out ``test`` set (:func:`vocalfront.training.validation.heldout_set`:
the song-disjoint MIR-1K test singers, the SSVD/GTSinger test recordings mixed over held-out
test music, and that music alone), never used for any choice. It is mixed with one fixed seed,
:data:`TEST_MIXING_SEED`, for every run, so every run of the experiment scores the same audio
and runs can be paired file by file. The detector is the run's ``model.pt`` - the checkpoint
chosen on validation - at the decision settings (threshold, median filter, shortest segment and
gap) that training chose on validation and stored in it.

The record (``evaluation.json``'s ``test``): ``model``, ``settings`` (the stored decision
settings), ``clips``, ``problems`` (clips that could not be read), the pooled metrics and
``final_error`` with ``sources`` (per source, as :func:`~vocalfront.training.validation.validate`
gives them) and ``files``: one row per clip (:func:`file_records`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..calibration import final_decisions
from ..data.readers import Mir1kDataset
from ..data.solo import GtsingerDataset, GtsingerSpeechDataset
from ..detect import load_model
from ..evaluation import evaluate_files, frame_metrics
from ..grid import FrameGrid
from ..postprocessing import PostProcessing
from ..training import Config
from ..training.sampler import TrainingClip
from ..training.validation import METRIC_KEYS, heldout_set, predict_clips, score_clips

TEST_MIXING_SEED = 0
"""Seed of the test set's mixtures (solo voices over test music, music excerpts), the same for
every run."""
TESTED_MODEL = "model.pt"
"""The detector scored on the test set: the checkpoint chosen on validation, with its settings."""


def song_of(clip: TrainingClip) -> str:
    """The cluster a test clip belongs to, ``<source>/<key>``: MIR-1K clips ``<singer>_<song>_<n>``
    by their song (``<singer>_<song>``), GTSinger recordings by their recording group (its
    speech too: ``gtsinger/<key>``, the singer who sang), every other clip (an SSVD recording, a
    music excerpt, a file of another corpus) on its own."""
    if clip.source == "mir1k" and clip.name.count("_") >= 2:
        key = "_".join(Mir1kDataset.singer_and_song(clip.name))
    elif clip.source in (GtsingerDataset.SOURCE, GtsingerSpeechDataset.SOURCE):
        return f"gtsinger/{GtsingerDataset.group_key(clip.name)}"
    else:
        key = clip.name
    return f"{clip.source or 'clips'}/{key}"


def evaluate_test(run_dir: Path, config: Config, progress: bool = False) -> dict[str, Any] | None:
    """The test record of a trained run (see the module docstring); ``None`` when its data has
    no test clips."""
    model = load_model(run_dir / TESTED_MODEL)
    clips, problems = heldout_set(config, "test", model.detector.grid, TEST_MIXING_SEED, progress)
    if not clips:
        return None
    settings = model.postprocessing
    probabilities = predict_clips(model.detector.eval(), clips, progress)
    summary = score_clips(probabilities, clips, settings.smoothing, settings.threshold, settings,
                          model.detector.grid)
    return {"model": TESTED_MODEL, "settings": settings.to_record(), "clips": len(clips),
            "problems": problems, **summary,
            "files": file_records(probabilities, clips, settings, model.detector.grid)}


def file_records(probabilities: list[np.ndarray], clips: list[TrainingClip], settings: PostProcessing,
                 grid: FrameGrid) -> list[dict[str, Any]]:
    """Per clip: ``file``, ``source``, ``song`` (:func:`song_of`), ``frames``, the metrics of
    :data:`~vocalfront.training.validation.METRIC_KEYS` at ``settings``' threshold and median
    filter, and ``final_error`` (after the shortest segment and gap too)."""
    labels = [clip.labels for clip in clips]
    report = evaluate_files(probabilities, labels, settings.threshold, [clip.name for clip in clips],
                            settings.smoothing)
    records = []
    for clip, row, curve in zip(clips, report.files, probabilities, strict=True):
        decided = final_decisions(curve, settings, grid)
        records.append({"file": clip.name, "source": clip.source, "song": song_of(clip),
                        "frames": int(row["frames"]), **{key: float(row[key]) for key in METRIC_KEYS},
                        "final_error": float(frame_metrics(decided, clip.labels)["error"])})
    return records
