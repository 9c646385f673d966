"""``vocalfront detect PATH...``: find the singing in audio files and write label files.

Every file gets its outputs (default: ``song.lab``) beside it or in ``--out``, each written
atomically, and one line on stdout: ``song.wav: 4 segments, 37.5 % singing``; when a single file
is processed its segments are listed too. Files that fail are reported at the end (on stderr)
and the exit status is then 1; the other files are still processed.

Post-processing (threshold, peak threshold, median filter, ``--min-duration``, ``--min-gap``)
defaults to the model file's record (:mod:`vocalfront.postprocessing`); every output records what made it
(:mod:`vocalfront.provenance`). Heavy modules (torch) are imported in :func:`run`, so that
``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import VocalfrontError
from ..fileio import write_text_atomic
from ..grid import FRAME_STEPS
from ..segments import (
    FORMATS,
    FRAMES_FORMAT,
    PROVENANCE_FORMAT,
    REPORT_FORMAT,
    WITHOUT_COMMENTS,
    Segment,
    clock,
    format_provenance,
    output_path,
    write_frame_probabilities,
    write_segments,
)
from .options import Number, OneOf, OutFolder, Rule

if TYPE_CHECKING:
    import numpy as np

    from ..detect import Detection
    from ..detector_file import LoadedModel

OPTIONS: dict[str, Rule] = {
    "out": OutFolder(), "threshold": Number(0, 1), "peak_threshold": Number(0, 1),
    "min_duration": Number(0), "min_gap": Number(0), "threads": Number(1, None, whole=True),
    "frame_step": OneOf(FRAME_STEPS),
}
"""Options checked before any work (:mod:`.options`)."""
PLOT_SUFFIX = ".timeline.png"
"""File name ending of the ``--plot`` figure (``song.wav`` → ``song.timeline.png``)."""
REFERENCE_SUFFIXES = (".lab", ".txt", ".csv")
"""Ground-truth label files looked for beside a song (or in ``--reference DIR``), in this order."""
SETTING_OPTIONS = ("threshold", "peak_threshold", "min_duration", "min_gap")
"""Options that override one of the model's decision settings (keywords of
:func:`vocalfront.detect.detect`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="audio files, or folders searched recursively for audio files")
    parser.add_argument("--model", type=Path, default=None, metavar="FILE",
                        help="detector file from `vocalfront train` (default: the packaged model)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="write outputs here (default: beside each input file)")
    parser.add_argument("--format", default="lab", metavar="LIST",
                        help=f"comma-separated output formats from {','.join(FORMATS)} (default: lab; "
                        "lab and audacity get a song.provenance.json beside them)")
    parser.add_argument("--frames", action="store_true",
                        help="also write the raw per-frame probabilities (song.frames.csv)")
    parser.add_argument("--plot", action="store_true",
                        help=f"also draw a timeline figure (song{PLOT_SUFFIX}); a ground-truth label "
                        "file beside the song (song.lab) is drawn under it")
    parser.add_argument("--report", action="store_true",
                        help="also write one self-contained HTML page (song.report.html): the "
                        "timeline figure, the segments table, an audio player that plays a segment "
                        "when its row is clicked (the song is linked, not copied), the provenance")
    parser.add_argument("--reference", type=Path, default=None, metavar="FILE_OR_DIR",
                        help="ground truth for --plot and --report: a label file (one input), or a folder of "
                        "label files named after the songs (song.lab, .txt or .csv)")
    parser.add_argument("--threshold", type=float, default=None, metavar="X",
                        help="decision threshold in [0, 1] on smoothed probabilities "
                        "(default: the model's)")
    parser.add_argument("--peak-threshold", type=float, default=None, metavar="X",
                        help="keep a run of frames above the threshold only if it rises above X "
                        "somewhere (hysteresis; default: the model's; 0 keeps every run)")
    parser.add_argument("--min-duration", type=float, default=None, metavar="SECONDS",
                        help="drop singing segments shorter than this (default: the model's, "
                        "chosen on its validation data; 0.75 s for a model that stores none)")
    parser.add_argument("--min-gap", type=float, default=None, metavar="SECONDS",
                        help="join segments separated by less than this (default: the model's, "
                        "chosen on its validation data; 0.2 s for a model that stores none)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="process only shard I of N of the sorted file list (e.g. 0/4), "
                        "for job arrays")
    parser.add_argument("--skip-existing", action="store_true",
                        help="skip files whose outputs all exist (resume an interrupted batch)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--bf16", action="store_true",
                        help="run the CNN in bfloat16: about 1.5 times as fast on CPUs with bf16 "
                        "instructions (avx512_bf16, amx), maybe slower on others; probabilities within "
                        "0.02 of float32's; recorded in the provenance")
    parser.add_argument("--frame-step", type=int, default=1, metavar="S",
                        help="run the CNN on every S-th frame only (1, 3 or 9; default 1) and "
                        "interpolate its logits between: S=3 makes detection about 1.5 times as "
                        "fast and moves probabilities by about 0.01 on average (the median filter "
                        "smooths over far more frames); recorded in the provenance")


def run(args: argparse.Namespace) -> int:
    from ..batch import check_unique_outputs, collect_audio_files, parse_shard, run_batch, shard
    from ..detect import load_model

    formats = parse_formats(args.format)
    set_threads(args.threads)
    files = collect_audio_files(args.paths)
    if args.shard is not None:
        files = shard(files, *parse_shard(args.shard))
    check_reference(args.reference, len(files))
    progress = not args.no_progress and sys.stderr.isatty()
    job = DetectJob(load_model(args.model), args.out, formats, args.frames, args.plot,
                    list_segments=len(files) == 1,
                    settings={name: getattr(args, name) for name in SETTING_OPTIONS},
                    reference=args.reference, progress=progress, report=args.report,
                    bf16=args.bf16, frame_step=args.frame_step)
    check_unique_outputs(files, lambda file: job.outputs(file)[0])
    check_replaceable(files, job, args.skip_existing)
    report = run_batch(files, job.process, job.outputs_exist, args.skip_existing,
                       progress=not args.no_progress)
    print(report.summary(), file=sys.stderr)
    return report.exit_status()


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (``None``: leave torch's default; checked by :data:`OPTIONS`)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def check_replaceable(files: list[Path], job: DetectJob, skip_existing: bool) -> None:
    """Refuse, before any file is processed, a batch that would replace a file that no earlier
    ``vocalfront detect`` wrote (:meth:`DetectJob.foreign_outputs`): a ground-truth ``song.lab``
    beside the song, a user's own ``song.csv``. Files that ``--skip-existing`` skips write
    nothing and are not checked."""
    foreign = [path for file in files if not (skip_existing and job.outputs_exist(file))
               for path in job.foreign_outputs(file)]
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise VocalfrontError(f"{foreign[0]}{more}: exists and was not written by vocalfront detect "
                              "(ground truth?); it is never replaced: move it, or write the outputs "
                              "elsewhere with --out DIR")


def parse_formats(text: str) -> tuple[str, ...]:
    """``"lab,json"`` → ``("lab", "json")``; unknown or no formats are a :class:`VocalfrontError`."""
    formats = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise VocalfrontError(f"--format {text!r}: choose one or more of {','.join(FORMATS)}")
    return formats


def check_reference(reference: Path | None, files: int) -> None:
    """``--reference`` must be a folder, or a file when one song is processed."""
    if reference is None:
        return
    if reference.is_file() and files > 1:
        raise VocalfrontError(f"--reference {reference}: a single label file fits one input, got "
                              f"{files}; give a folder of label files named after the songs")
    if not reference.exists():
        raise VocalfrontError(f"--reference {reference}: no such file or folder")


class DetectJob:
    """Detect singing in one file and write its outputs (the ``process`` of a batch).

    ``settings``: decision settings by :func:`vocalfront.detect.detect`'s keyword
    (:data:`SETTING_OPTIONS`); missing or ``None`` takes the model's. ``reference``: a
    ground-truth label file or folder for the plot (``None``: a label file beside the song, if
    it is not one of this job's outputs). ``report``: also write the HTML page
    (:mod:`vocalfront.report`). ``bf16``: the CNN in bfloat16; ``frame_step``: the CNN on every
    ``frame_step``-th frame (both as :func:`vocalfront.detect.detect` takes them).
    """

    def __init__(self, model: LoadedModel, out: Path | None, formats: tuple[str, ...],
                 frames: bool, plot: bool, list_segments: bool,
                 settings: Mapping[str, float | None] | None = None, reference: Path | None = None,
                 progress: bool = False, report: bool = False, bf16: bool = False,
                 frame_step: int = 1):
        self.model, self.out, self.formats = model, out, formats
        self.frames, self.plot, self.list_segments = frames, plot, list_segments
        self.settings = {name: value for name, value in (settings or {}).items() if value is not None}
        self.reference, self.progress, self.report = reference, progress, report
        self.bf16, self.frame_step = bf16, frame_step

    def outputs(self, file: Path) -> list[Path]:
        """Every file this job writes for ``file``: the formats, then frames, plot, report and
        the provenance side file (for formats that cannot hold it) if any."""
        paths = [output_path(file, self.out, name) for name in self.formats]
        if self.frames:
            paths.append(output_path(file, self.out, FRAMES_FORMAT))
        if self.plot:
            paths.append(paths[0].with_name(file.stem + PLOT_SUFFIX))
        if self.report:
            paths.append(output_path(file, self.out, REPORT_FORMAT))
        if any(name in WITHOUT_COMMENTS for name in self.formats):
            paths.append(output_path(file, self.out, PROVENANCE_FORMAT))
        return paths

    def outputs_exist(self, file: Path) -> bool:
        return all(path.is_file() for path in self.outputs(file))

    def foreign_outputs(self, file: Path) -> list[Path]:
        """Segment outputs and the provenance side file of ``file`` that exist but that no earlier
        ``vocalfront detect`` wrote: not listed in the side file of their folder and carrying no
        provenance record (:func:`_carries_provenance`). Such names (``song.lab``, ``song.csv``)
        are also those of ground-truth label files; the frames, plot and report names are
        vocalfront's own and not checked."""
        paths = [output_path(file, self.out, name) for name in (*self.formats, PROVENANCE_FORMAT)]
        ours = _written_by_vocalfront(paths[0].parent, file.stem)
        return [path for path in paths if (path.exists() or path.is_symlink()) and path not in ours
                and not _carries_provenance(path)]

    def process(self, file: Path) -> None:
        from tqdm import tqdm

        from ..audio import load_audio
        from ..detect import detect

        grid = self.model.detector.grid
        samples = load_audio(file, grid.sample_rate)
        detection = detect(samples, grid.sample_rate, self.model, **self.settings,
                           progress=self.progress, bf16=self.bf16, frame_step=self.frame_step)
        self.write(file, detection, samples)
        tqdm.write(describe(file, detection, self.list_segments))

    def write(self, file: Path, detection: Detection, samples: np.ndarray) -> None:
        """Write every output of ``file`` from its ``detection`` (``samples``: for the plot)."""
        grid, provenance = self.model.detector.grid, detection.provenance
        paths = self.outputs(file)
        for name, path in zip(self.formats, paths, strict=False):
            write_segments(path, detection.segments, name, detection.duration, file,
                           detection.threshold, provenance)
        rest = iter(paths[len(self.formats):])
        if self.frames:
            write_frame_probabilities(next(rest), detection.probabilities, grid, provenance)
        png = self.timeline_png(file, detection, samples) if self.plot or self.report else b""
        if self.plot:
            from ..plotting import write_png

            write_png(png, next(rest))
        if self.report:
            from ..report import audio_url, build_report

            page = next(rest)
            write_text_atomic(page, build_report(file.name, detection, audio_url(file, page), png))
        side_file = next(rest, None)
        if side_file is not None and provenance is not None:
            earlier = _written_by_vocalfront(side_file.parent, file.stem) - set(paths)
            outputs = paths[:-1] + sorted(path for path in earlier if path.is_file())
            write_text_atomic(side_file, format_provenance(provenance, file, outputs))

    def timeline_png(self, file: Path, detection: Detection, samples: np.ndarray) -> bytes:
        """The ``--plot`` figure of ``file`` as PNG bytes (also embedded in the report)."""
        from ..plotting import figure_png, timeline_figure

        provenance = detection.provenance
        figure = timeline_figure(detection.smoothed, detection.threshold, detection.segments,
                                 self.model.detector.grid, title=f"{file.name} (median-smoothed "
                                 "probability)", waveform=samples,
                                 reference=self.reference_segments(file, detection.duration),
                                 subtitle="" if provenance is None else provenance.to_line(),
                                 peak_threshold=None if provenance is None else provenance.peak_threshold)
        return figure_png(figure)

    def reference_file(self, file: Path) -> Path | None:
        """The ground-truth label file of ``file``: ``--reference`` (a file, or the folder's
        ``STEM.lab|.txt|.csv``), else such a file beside the song that this job did not write."""
        if self.reference is not None and self.reference.is_file():
            return self.reference
        folder = file.parent if self.reference is None else self.reference
        ours = set(self.outputs(file)) | _written_by_vocalfront(file.parent, file.stem)
        candidates = [folder / (file.stem + suffix) for suffix in REFERENCE_SUFFIXES]
        return next((path for path in candidates if path.is_file() and path not in ours), None)

    def reference_segments(self, file: Path, duration: float) -> list[Segment] | None:
        """Singing segments of :meth:`reference_file` (``None`` without one)."""
        path = self.reference_file(file)
        if path is None:
            return None
        from ..data.labels import SINGING_LABELS, read_segments

        segments = read_segments(path, strict=False, duration=duration)
        return [s for s in segments if s.label.lower() in SINGING_LABELS]


def _written_by_vocalfront(folder: Path, stem: str) -> set[Path]:
    """Files that an earlier ``vocalfront detect`` wrote for ``stem`` in ``folder`` (listed by its
    provenance side file), so that they are never taken for ground truth nor kept from being
    replaced."""
    document = _json_object(_small_text(output_path(folder / stem, None, PROVENANCE_FORMAT)))
    names = document.get("outputs", []) if document is not None else []
    return {folder / name for name in names if isinstance(name, str)} if isinstance(names, list) else set()


MAX_OUTPUT_BYTES = 1 << 26
"""Largest existing output file read to find its provenance record (64 MiB; a JSON output of
an hour of audio is well under 1 MiB)."""


def _small_text(path: Path) -> str | None:
    """The UTF-8 text of ``path`` if it is a regular file of at most :data:`MAX_OUTPUT_BYTES`,
    else ``None`` (a pipe or device is never read)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_OUTPUT_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _json_object(text: str | None) -> dict | None:
    """``text`` parsed as a JSON object, else ``None``."""
    try:
        document = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _carries_provenance(path: Path) -> bool:
    """Whether ``path`` holds vocalfront's provenance record: the ``# vocalfront`` first line of a
    CSV output, or the ``provenance`` object of a JSON output or side file."""
    text = _small_text(path)
    if text is not None and text.startswith("# vocalfront "):
        return True
    document = _json_object(text)
    return document is not None and isinstance(document.get("provenance"), dict)


def describe(file: Path, detection: Detection, list_segments: bool = False) -> str:
    """``song.wav: 3 segments, 41.2 % singing``, followed by one line per segment if asked."""
    count = len(detection.segments)
    share = 100 * detection.singing_seconds / detection.duration if detection.duration else 0.0
    lines = [f"{file}: {count} segment{'' if count == 1 else 's'}, {share:.1f} % singing"]
    if list_segments:
        lines += [f"  {clock(s.start)} - {clock(s.end)}  ({s.duration:.2f} s)"
                  for s in detection.segments]
    return "\n".join(lines)

