"""``vocalfront detect PATH...``: find the singing in audio files and write label files.

Every file gets its outputs (default: ``song.lab``) beside it or in ``--out``, each written
atomically, and one line on stdout: ``song.wav: 4 segments, 37.5 % singing``; when a single file
is processed its segments are listed too. Files that fail are reported at the end (on stderr)
and the exit status is then 1; the other files are still processed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from ..audio import load_audio
from ..batch import check_unique_outputs, collect_audio_files, parse_shard, run_batch, shard
from ..detect import Detection, LoadedModel, detect, load_model
from ..errors import VocalfrontError
from ..plotting import plot_timeline
from ..segments import FORMATS, FRAMES_FORMAT, output_path, write_frame_probabilities, write_segments
from .options import Number, OutFolder, Rule

OPTIONS: dict[str, Rule] = {
    "out": OutFolder(), "threshold": Number(0, 1), "min_duration": Number(0),
    "min_gap": Number(0), "threads": Number(1, None, whole=True),
}
"""Options checked before any work (:mod:`.options`)."""
PLOT_SUFFIX = ".timeline.png"
"""File name ending of the ``--plot`` figure (``song.wav`` → ``song.timeline.png``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="audio files, or folders searched recursively for audio files")
    parser.add_argument("--model", type=Path, default=None, metavar="FILE",
                        help="detector file from `vocalfront train` (default: the packaged model)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write outputs here (default: beside each input file)")
    parser.add_argument("--format", default="lab", metavar="LIST",
                        help=f"comma-separated output formats from {','.join(FORMATS)} (default: lab)")
    parser.add_argument("--frames", action="store_true",
                        help="also write the raw per-frame probabilities (song.frames.csv)")
    parser.add_argument("--plot", action="store_true",
                        help=f"also draw a timeline figure (song{PLOT_SUFFIX})")
    parser.add_argument("--threshold", type=float, default=None, metavar="X",
                        help="decision threshold on smoothed probabilities (default: the model's)")
    parser.add_argument("--min-duration", type=float, default=0.0, metavar="SECONDS",
                        help="drop singing segments shorter than this (default: 0)")
    parser.add_argument("--min-gap", type=float, default=0.0, metavar="SECONDS",
                        help="join segments separated by less than this (default: 0)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="process only shard I of N of the sorted file list (e.g. 0/4), "
                        "for job arrays")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip files whose outputs all exist (resume an interrupted batch)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice)")


def run(args: argparse.Namespace) -> int:
    formats = parse_formats(args.format)
    set_threads(args.threads)
    files = collect_audio_files(args.paths)
    if args.shard is not None:
        files = shard(files, *parse_shard(args.shard))
    job = DetectJob(load_model(args.model), args.out, formats, args.frames, args.plot,
                    args.threshold, args.min_duration, args.min_gap, list_segments=len(files) == 1)
    check_unique_outputs(files, lambda file: job.outputs(file)[0])
    report = run_batch(files, job.process, job.outputs_exist, args.skip_existing,
                       progress=not args.no_progress)
    print(report.summary(), file=sys.stderr)
    return report.exit_status()


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (``None``: leave torch's default; checked by :data:`OPTIONS`)."""
    if threads is not None:
        torch.set_num_threads(threads)


def parse_formats(text: str) -> tuple[str, ...]:
    """``"lab,json"`` → ``("lab", "json")``; unknown or no formats are a :class:`VocalfrontError`."""
    formats = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise VocalfrontError(f"--format {text!r}: choose one or more of {','.join(FORMATS)}")
    return formats


class DetectJob:
    """Detect singing in one file and write its outputs (the ``process`` of a batch)."""

    def __init__(self, model: LoadedModel, out: Path | None, formats: tuple[str, ...],
                 frames: bool, plot: bool, threshold: float | None, min_duration: float,
                 min_gap: float, list_segments: bool):
        self.model, self.out, self.formats = model, out, formats
        self.frames, self.plot, self.threshold = frames, plot, threshold
        self.min_duration, self.min_gap, self.list_segments = min_duration, min_gap, list_segments

    def outputs(self, file: Path) -> list[Path]:
        """Every file this job writes for ``file``: the formats, then frames and plot if asked."""
        paths = [output_path(file, self.out, name) for name in self.formats]
        if self.frames:
            paths.append(output_path(file, self.out, FRAMES_FORMAT))
        if self.plot:
            paths.append(paths[0].with_name(file.stem + PLOT_SUFFIX))
        return paths

    def outputs_exist(self, file: Path) -> bool:
        return all(path.is_file() for path in self.outputs(file))

    def process(self, file: Path) -> None:
        grid = self.model.detector.grid
        samples = load_audio(file, grid.sample_rate)
        detection = detect(samples, grid.sample_rate, self.model, self.threshold,
                           min_duration=self.min_duration, min_gap=self.min_gap)
        paths = self.outputs(file)
        for name, path in zip(self.formats, paths[: len(self.formats)], strict=True):
            write_segments(path, detection.segments, name, detection.duration, file,
                           detection.threshold)
        if self.frames:
            write_frame_probabilities(paths[len(self.formats)], detection.probabilities, grid)
        if self.plot:
            plot_timeline(paths[-1], detection.smoothed, detection.threshold, detection.segments,
                          grid, title=f"{file.name} (median-smoothed)", waveform=samples)
        tqdm.write(describe(file, detection, self.list_segments))


def describe(file: Path, detection: Detection, list_segments: bool = False) -> str:
    """``song.wav: 3 segments, 41.2 % singing``, followed by one line per segment if asked."""
    count = len(detection.segments)
    share = 100 * detection.singing_seconds / detection.duration if detection.duration else 0.0
    lines = [f"{file}: {count} segment{'' if count == 1 else 's'}, {share:.1f} % singing"]
    if list_segments:
        lines += [f"  {_clock(s.start)} - {_clock(s.end)}  ({s.duration:.2f} s)"
                  for s in detection.segments]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    """``m:ss.sss``."""
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:06.3f}"
