"""Score detector files on a run's held-out set (``valid`` or ``test``), per source.

The set is built exactly as training builds its validation set
(:func:`vocalfront.training.validation.heldout_set`):
the held-out clips of every source of the configuration (MIR-1K's song-disjoint split, SSVD and
GTSinger recordings), solo voices mixed over held-out instrumental music, and held-out music
alone. Every model is scored at its own stored threshold and median filter (chosen on
validation data by its training run), never at one chosen on the scored clips.

    python scripts/evaluate_heldout.py --config configs/default.toml --split test \\
        --models runs/default/model.pt src/vocalfront/pretrained/default.pt --out results.md \\
        data.root=/data/mir1k data.ssvd=/data/ssvd data.gtsinger=/data/gtsinger \\
        data.instrumental=/data/instrumental

Writes a Markdown table (and prints it): per model and source, frames, frame error at the
threshold after median smoothing (the protocol's), the error of the final decisions (also after
the model's peak threshold and shortest-gap and shortest-segment limits: what its label files
say), AUROC, calibration error (``ece``, :func:`vocalfront.evaluation.calibration_error`: how far
the probabilities are from the share of singing frames they claim), and the specificity and
recall of the final decisions; rates in percent. (Tables written before 2026-12-07's hysteresis
gave specificity and recall at the threshold instead; the JSON has both.)

``--singers`` adds a row per MIR-1K singer (at the same threshold): a model can fail one voice
while the pooled figure looks fine (the 0.9.0 model missed MIR-1K's lowest singer).

``--boundaries`` adds a table of where the final decisions err, per model and source: false
alarms and misses by distance to the nearest label change
(:func:`vocalfront.evaluation.errors_by_boundary_distance`): segment edges a little early or late
against passages missed or called singing whole.

``--split train`` scores a sample of the training clips (``--per-source`` of each source),
built the same way from the training music and without augmentation: a model that errs there
as often as on held-out clips underfits (capacity or regularisation limit it, not data).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from vocalfront.calibration import final_decisions
from vocalfront.data.readers import Mir1kDataset
from vocalfront.detect import load_model
from vocalfront.detector_file import LoadedModel
from vocalfront.errors import VocalfrontError
from vocalfront.evaluation import BOUNDARY_COLUMNS, boundary_cells, errors_by_boundary_distance
from vocalfront.grid import FRAME_STEPS
from vocalfront.provenance import cnn_settings
from vocalfront.training import load_config, resolve_config, separate_overrides
from vocalfront.training.sampler import TrainingClip
from vocalfront.training.validation import heldout_set, predict_clips, score_clips, source_groups

COLUMNS = ("frames", "error", "final_error", "auroc", "ece", "final_specificity", "final_recall")
FRACTIONS = ("auroc", "ece")
"""Columns printed as fractions; the other rates are printed in percent."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="training configuration (TOML)")
    parser.add_argument("--split", choices=("valid", "test", "train"), default="test")
    parser.add_argument("--per-source", type=int, default=None, metavar="N",
                        help="a seeded sample of at most N clips per source (default: all)")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="detector files")
    parser.add_argument("--seed", type=int, default=None, help="mixing seed (default: train.seed)")
    parser.add_argument("--bf16", action="store_true", help="the CNN under bf16 autocast (detect --bf16)")
    parser.add_argument("--frame-step", type=int, choices=FRAME_STEPS, default=1,
                        help="the CNN on every Nth frame, interpolated between (detect --frame-step)")
    parser.add_argument("--singers", action="store_true", help="also a row per MIR-1K singer")
    parser.add_argument("--boundaries", action="store_true",
                        help="also the final decisions' errors by distance to the nearest label change")
    parser.add_argument("--out", type=Path, default=None, help="write the table here (Markdown)")
    parser.add_argument("--json", type=Path, default=None, help="write all metrics here (JSON)")
    parser.add_argument("overrides", nargs="*", help="section.key=value settings")
    args = parser.parse_args(argv)
    args.models, misplaced = separate_overrides(args.models)
    args.overrides = [*args.overrides, *misplaced]
    try:
        if args.per_source is not None and args.per_source < 1:
            raise VocalfrontError(f"--per-source {args.per_source}: must be at least 1")
        config = resolve_config(load_config(args.config, args.overrides))
        models = {str(path): load_model(path) for path in args.models}
        seed = config.train.seed if args.seed is None else args.seed
        grids = {model.detector.grid for model in models.values()}
        if len(grids) > 1:
            raise VocalfrontError(f"--models: the detectors use different frame grids ({grids}); "
                                  "score them one grid at a time")
        clips, problems = heldout_set(config, args.split, grids.pop(), seed, progress=sys.stderr.isatty(),
                                      per_source=args.per_source)
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    results = {name: scores(model, clips, args.bf16, args.frame_step, args.singers, args.boundaries)
               for name, model in models.items()}
    table = markdown(results, args.split, seed, "; ".join(cnn_settings(args.bf16, args.frame_step)))
    if args.boundaries:
        table += "\n\n" + boundary_markdown(results)
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


def scores(model: LoadedModel, clips: list[TrainingClip], bf16: bool, frame_step: int,
           singers: bool, boundaries: bool = False) -> dict[str, object]:
    """:func:`~vocalfront.training.validation.validate`'s metrics of ``model`` at its stored
    settings, with ``singers``: also ``singers``, the metrics of each MIR-1K singer's clips; with
    ``boundaries``: also ``boundaries``, source (``all`` first) -> the rows of
    :func:`~vocalfront.evaluation.errors_by_boundary_distance` for its final decisions."""
    probabilities = predict_clips(model.detector.eval(), clips, bf16=bf16, frame_step=frame_step)

    def score(chosen: list[int]) -> dict[str, object]:
        return score_clips([probabilities[i] for i in chosen], [clips[i] for i in chosen], model.smoothing,
                           model.threshold, model.postprocessing, model.detector.grid)

    metrics = score(list(range(len(clips))))
    if singers:
        by_singer: dict[str, list[int]] = {}
        for index, clip in enumerate(clips):
            if clip.source == "mir1k":
                by_singer.setdefault(Mir1kDataset.singer_and_song(clip.name)[0], []).append(index)
        metrics["singers"] = {f"mir1k {singer}": score(chosen)
                              for singer, chosen in sorted(by_singer.items())}
    if boundaries:
        grid = model.detector.grid
        decided = [final_decisions(p, model.postprocessing, grid) for p in probabilities]
        metrics["boundaries"] = {
            source: errors_by_boundary_distance([decided[i] for i in chosen],
                                                [clips[i].labels for i in chosen], grid.frame_rate)
            for source, chosen in source_groups(clips).items()}
    return metrics


def boundary_markdown(results: dict[str, dict]) -> str:
    """The ``boundaries`` rows of each model and source."""
    lines = ["Final decisions' errors by distance (s) to the nearest label change; rates in percent.", "",
             "| model | source | " + " | ".join(BOUNDARY_COLUMNS) + " |",
             "|---|---|" + "---|" * len(BOUNDARY_COLUMNS)]
    labels = distinct_labels(list(results))
    for name, metrics in results.items():
        for source, rows in metrics["boundaries"].items():
            lines += [f"| {labels[name]} | {source} | " + " | ".join(boundary_cells(row)) + " |"
                      for row in rows]
    return "\n".join(lines)


def markdown(results: dict[str, dict], split: str, seed: int, inference: str = "") -> str:
    """One row per model and source (``all`` first), rates in percent; ``inference`` (e.g. "CNN
    in bf16") is added to the title."""
    how = f"; {inference}" if inference else ""
    kind = "Training clips (un-augmented)" if split == "train" else "Held-out split"
    lines = [f"{kind} `{split}` (mixing seed {seed}{how}); each model at its stored decision "
             "settings.", "",
             "| model | threshold | source | " + " | ".join(COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    labels = distinct_labels(list(results))
    for name, metrics in results.items():
        rows = {"all": metrics, **metrics.get("sources", {}), **metrics.get("singers", {})}
        for source, values in rows.items():
            cells = [_cell(column, values[column]) for column in COLUMNS]
            lines.append(f"| {labels[name]} | {metrics['threshold']:.3f} | {source} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def distinct_labels(paths: list[str]) -> dict[str, str]:
    """Each model path's label in the table: its file name, with as many parent folders as it
    takes to tell models of the same name apart (``ft13/model.pt``, ``ft14/model.pt``)."""
    parts = {path: Path(path).parts for path in paths}
    for depth in range(1, max((len(p) for p in parts.values()), default=1) + 1):
        labels = {path: "/".join(p[-depth:]) for path, p in parts.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {path: path for path in paths}


def _cell(column: str, value: float) -> str:
    if column == "frames":
        return f"{int(value)}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.3f}" if column in FRACTIONS else f"{100 * value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
