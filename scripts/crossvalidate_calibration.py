"""Does a way of choosing decision settings carry over to clips it did not see? K-fold check on the
validation set alone.

The decision settings of a model are chosen on its run's validation set
(:mod:`vocalfront.calibration`), so their error there flatters them, more so the more settings are
chosen. This splits that set into ``--folds`` parts by song (:func:`vocalfront.experiment.testset.
song_of`: MIR-1K songs, GTSinger recording groups, SSVD recordings and music excerpts; the groups
dealt in turn), chooses the settings on all parts but one - with one threshold,
and with hysteresis (a lower threshold and a peak threshold) - and scores the final decisions on
the part left out; the test set is never touched.

    python scripts/crossvalidate_calibration.py --config configs/default.toml \\
        --model runs/default/model.pt data.root=/data/mir1k data.ssvd=... data.instrumental=...

Prints (and with ``--out`` writes) a Markdown table: per fold and way, the settings chosen and the
final frame error on the part left out, and the pooled error over all parts left out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vocalfront.calibration import PEAK_THRESHOLDS, SMOOTHINGS, choose_postprocessing, final_decisions
from vocalfront.detect import load_model
from vocalfront.errors import VocalfrontError
from vocalfront.evaluation import frame_metrics
from vocalfront.experiment.testset import song_of
from vocalfront.grid import FrameGrid
from vocalfront.postprocessing import PostProcessing
from vocalfront.training import load_config, resolve_config
from vocalfront.training.sampler import TrainingClip
from vocalfront.training.validation import heldout_set, predict_clips

WAYS = {"one threshold": (), "hysteresis": PEAK_THRESHOLDS}
"""How the settings are chosen: the peak thresholds tried (none: one threshold)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the run's configuration (TOML)")
    parser.add_argument("--model", type=Path, required=True, help="detector file")
    parser.add_argument("--folds", type=int, default=2, help="parts of the validation set (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    parser.add_argument("overrides", nargs="*", help="section.key=value settings")
    args = parser.parse_args(argv)
    try:
        if args.folds < 2:
            raise VocalfrontError(f"--folds {args.folds}: must be at least 2")
        config = resolve_config(load_config(args.config, args.overrides))
        model = load_model(args.model)
        clips, problems = heldout_set(config, "valid", model.detector.grid, progress=sys.stderr.isatty())
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    try:
        folds = fold_of(clips, args.folds)
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    probabilities = predict_clips(model.detector.eval(), clips)
    smoothings = sorted({*SMOOTHINGS, config.eval.median_filter})
    table = markdown(crossvalidate(probabilities, clips, folds, model.detector.grid, smoothings),
                     args.model)
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    return 0


def fold_of(clips: list[TrainingClip], folds: int) -> list[int]:
    """Each clip's part, ``0 .. folds - 1``: the song groups, sorted by source and name, dealt
    in turn (so each source is spread over the parts); fewer groups than parts is an error."""
    groups = sorted({song_of(clip) for clip in clips})
    if len(groups) < folds:
        raise VocalfrontError(f"the validation set has {len(groups)} song group(s): too few for "
                              f"--folds {folds}")
    dealt = {group: index % folds for index, group in enumerate(groups)}
    return [dealt[song_of(clip)] for clip in clips]


def crossvalidate(probabilities: list[np.ndarray], clips: list[TrainingClip], folds: list[int],
                  grid: FrameGrid, smoothings: list[int]) -> list[dict[str, object]]:
    """Per way of choosing (:data:`WAYS`) and part: the settings chosen on the other parts and
    the final decisions' metrics on this one; then per way the metrics pooled over the parts
    (``fold`` ``"all"``)."""
    labels = [clip.labels for clip in clips]
    rows: list[dict[str, object]] = []
    for way, peaks in WAYS.items():
        decided, truth = [], []
        for fold in sorted(set(folds)):
            fit = [i for i, f in enumerate(folds) if f != fold]
            held = [i for i, f in enumerate(folds) if f == fold]
            settings, _ = choose_postprocessing([probabilities[i] for i in fit], [labels[i] for i in fit],
                                                grid, smoothings, peak_thresholds=peaks)
            mine = [final_decisions(probabilities[i], settings, grid) for i in held]
            rows.append({"way": way, "fold": fold, "settings": settings,
                         **frame_metrics(np.concatenate(mine), np.concatenate([labels[i] for i in held]))})
            decided += mine
            truth += [labels[i] for i in held]
        rows.append({"way": way, "fold": "all", "settings": None,
                     **frame_metrics(np.concatenate(decided), np.concatenate(truth))})
    return rows


def markdown(rows: list[dict[str, object]], model: Path) -> str:
    """The table of :func:`crossvalidate`'s rows, rates in percent."""
    lines = [f"`{model}`: decision settings chosen on all parts of the validation set but one, "
             "final frame error on the part left out.", "",
             "| way | part left out | threshold | peak threshold | median | gap s | segment s | "
             "error % | specificity % | recall % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        settings = row["settings"]
        chosen = ["", "", "", "", ""] if not isinstance(settings, PostProcessing) else [
            f"{settings.threshold:.3f}", f"{settings.peak_threshold:.2f}" if settings.peak_threshold else "–",
            str(settings.smoothing), f"{settings.min_gap:g}", f"{settings.min_duration:g}"]
        rates = [f"{100 * float(row[key]):.2f}" for key in ("error", "specificity", "recall")]
        lines.append(f"| {row['way']} | {row['fold']} | " + " | ".join(chosen + rates) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
