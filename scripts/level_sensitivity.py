"""Does a detector call music singing because it is loud? Its decisions at several input levels.

    python scripts/level_sensitivity.py --model src/vocalfront/pretrained/default.pt \\
        --music /data/instrumental/supertuxkart-data /data/instrumental/xmoto-data \\
        --mir1k ../shared/data/mir1k --gains -12 -6 0 6 --out level.md

Every input is scaled by each gain (dB) and clipped to [-1, 1], as a louder master would be
limited, then decided on at the model's stored settings (median filter, threshold, shortest gap
and segment: what its label files say). For each gain the table gives the share of the music
(its first ``--seconds`` of each track; no voice in it) called singing, and with ``--mir1k`` the
frame error, recall and specificity on that dataset's ``--split`` clips (their plain mixes;
splits as ``vocalfront evaluate``'s).
A level-invariant detector gives the same row at every gain; one that takes loudness for
singing calls more music singing, and finds more voice, the louder the input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vocalfront.audio import audio_files, load_audio
from vocalfront.calibration import final_decisions
from vocalfront.cli.evaluate import SPLITS
from vocalfront.detect import load_model
from vocalfront.detector_file import LoadedModel
from vocalfront.errors import VocalfrontError
from vocalfront.evaluation import frame_metrics
from vocalfront.fileio import write_text_atomic
from vocalfront.inference import predict_waveform
from vocalfront.scoring import open_dataset, resolve_split, select

DEFAULT_GAINS = (-12.0, -6.0, 0.0, 6.0)
"""Input gains tried, dB."""
GAIN_LIMITS = (-60.0, 40.0)
"""Gains accepted, dB: quieter is near silence, louder clips almost everything."""


def at_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """``audio`` scaled by ``gain_db`` decibels and clipped to [-1, 1] (float32)."""
    return np.clip(audio * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0).astype(np.float32)


def decided(model: LoadedModel, audio: np.ndarray, source: str) -> np.ndarray:
    """Boolean ``(frames,)``: the frames the model's final decisions call singing."""
    probabilities = predict_waveform(model.detector, audio, source=source)
    return final_decisions(probabilities, model.postprocessing, model.detector.grid)


def calls_per_gain(model: LoadedModel, inputs: Iterable[tuple[str, np.ndarray]],
                   gains: list[float]) -> dict[float, np.ndarray]:
    """Per gain, the final decisions over all ``inputs`` (``(name, audio)``) in order,
    concatenated; each input is held in memory only while it is decided on."""
    calls: dict[float, list[np.ndarray]] = {gain: [] for gain in gains}
    for name, audio in inputs:
        for gain in gains:
            calls[gain].append(decided(model, at_gain(audio, gain), name))
    return {gain: np.concatenate(parts) for gain, parts in calls.items()}


def music_rows(model: LoadedModel, folders: list[Path], seconds: float,
               gains: list[float]) -> dict[float, float]:
    """Per gain, the share of the music's frames called singing."""
    rate = model.detector.grid.sample_rate
    paths = [path for folder in folders for path in audio_files(folder)]
    if not paths:
        raise VocalfrontError(f"no audio files below {', '.join(map(str, folders))}")
    tracks = ((str(path), load_audio(path, rate)[: round(seconds * rate)]) for path in paths)
    return {gain: float(calls.mean()) for gain, calls in calls_per_gain(model, tracks, gains).items()}


def dataset_rows(model: LoadedModel, root: Path, split: str,
                 gains: list[float]) -> dict[float, dict[str, float]]:
    """Per gain, frame metrics of the final decisions on the dataset's ``split`` clips."""
    dataset, fmt = open_dataset(root, "auto", None, model.detector.grid)
    clips = select(dataset, fmt, resolve_split(dataset, fmt, split))
    labels = []

    def clip_audio() -> Iterator[tuple[str, np.ndarray]]:
        for clip in clips:
            item = dataset.load(clip)
            labels.append(item.labels)
            yield clip.name, item.audio

    calls = calls_per_gain(model, clip_audio(), gains)
    truth = np.concatenate(labels)
    return {gain: frame_metrics(decisions, truth) for gain, decisions in calls.items()}


def table(shares: dict[float, float], metrics: dict[float, dict[str, float]] | None) -> str:
    header = "| gain dB | music called singing % |"
    rule = "|---|---|"
    if metrics is not None:
        header += " error % | recall % | specificity % |"
        rule += "---|---|---|"
    lines = [header, rule]
    for gain, share in shares.items():
        cells = [f"{gain:+g}", f"{100 * share:.1f}"]
        if metrics is not None:
            cells += [f"{100 * metrics[gain][key]:.1f}" for key in ("error", "recall", "specificity")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None,
                        help="detector file (default: the packaged model)")
    parser.add_argument("--music", type=Path, nargs="+", required=True, help="folders of music without voice")
    parser.add_argument("--seconds", type=float, default=90.0,
                        help="first seconds of each track (default 90)")
    parser.add_argument("--mir1k", type=Path, default=None, help="a labelled dataset folder (e.g. MIR-1K)")
    parser.add_argument("--split", choices=SPLITS, default="auto",
                        help="its clips to score (default: test if it has test clips, else all)")
    parser.add_argument("--gains", type=float, nargs="+", default=list(DEFAULT_GAINS), help="gains, dB")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    try:
        for folder in [*args.music, *([args.mir1k] if args.mir1k else [])]:
            if not folder.is_dir():
                raise VocalfrontError(f"{folder}: folder not found")
        if not args.seconds > 0:
            raise VocalfrontError(f"--seconds must be positive, got {args.seconds}")
        low, high = GAIN_LIMITS
        for gain in args.gains:
            if not low <= gain <= high:
                raise VocalfrontError(f"--gains {gain:g}: a gain must be from {low:g} to {high:g} dB")
        model = load_model(args.model)
        shares = music_rows(model, args.music, args.seconds, args.gains)
        metrics = dataset_rows(model, args.mir1k, args.split, args.gains) if args.mir1k else None
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = table(shares, metrics)
    print(text)
    if args.out is not None:
        write_text_atomic(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
