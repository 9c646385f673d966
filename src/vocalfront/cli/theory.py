"""``vocalfront theory``: how closely each filter-bank design reproduces the mel-spectrogram."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .options import Number, Numbers, Rule

MAX_SECONDS = 600.0
"""Longest ``--seconds``: three float64 signals of 10 minutes and their features fit in a few
hundred MB (an hour would need gigabytes)."""
MIN_HOP = 128
"""Shortest ``--hops`` value (samples): an eighth of the 1024-sample window
(:data:`vocalfront.grid.WINDOW`; a test checks). Up to the window's sidelobes, the power
spectrogram of a Hann window of ``W`` samples varies no faster than ``4 / W`` cycles per sample
(twice its main lobe's half width), so frames ``W / 8`` apart sample it fully: shorter hops add
work (the mel-spectrogram's memory grows as ``1 / hop``), not information."""
MAX_HOP = 11025
"""Longest ``--hops`` value (samples): half a second at 22050 Hz (:data:`vocalfront.grid.SAMPLE_RATE`;
a test checks), so that the shortest signals (``--seconds 1``) still have the two frames the
per-band z-scored log error needs."""
MAX_HOPS = 10
"""Most ``--hops`` values: each repeats the whole measurement (every design on every signal)."""
OPTIONS: dict[str, Rule] = {"seconds": Number(1, MAX_SECONDS), "clips": Number(1, whole=True),
                            "hops": Numbers(Number(MIN_HOP, MAX_HOP, whole=True), MAX_HOPS)}
"""Options checked before any work (:mod:`.options`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", nargs="*", default=[], metavar="FILE",
                        help="audio files to measure as well (mixed to mono, resampled to 22050 Hz)")
    parser.add_argument("--mir1k", metavar="DIR",
                        help="MIR-1K folder: measure the mixtures of its first --clips clips")
    parser.add_argument("--clips", type=int, default=12, help="MIR-1K clips to use (default 12)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help=f"length of the test signals, 1 to {MAX_SECONDS:g} (default 20)")
    parser.add_argument("--hops", type=int, nargs="+", default=[315, 630, 1260], metavar="SAMPLES",
                        help=f"frame hops to measure at, each {MIN_HOP} to {MAX_HOP}, at most "
                        f"{MAX_HOPS} of them (default 315 630 1260)")
    parser.add_argument("--no-bounds", action="store_true", help="skip the operator-norm bounds")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help="plot per-band errors and bounds")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..audio import load_audio
    from ..frontends import build_frontend
    from ..plotting import plot_theory
    from ..theory import (
        DESIGNS,
        mean_band_errors,
        measure_signals,
        operator_bounds,
        reference_signals,
        summary_table,
        worst_bands,
    )

    progress = not args.no_progress and sys.stderr.isatty()
    signals = reference_signals(args.seconds)
    for path in args.audio:
        signals[Path(path).name] = load_audio(path).astype(np.float64)
    if args.mir1k:
        clips = sorted((Path(args.mir1k) / "Wavfile").glob("*.*"))[: args.clips]
        if not clips:
            raise ValueError(f"{args.mir1k}: no clips in Wavfile/")
        mixtures = [load_audio(clip, mix="sum").astype(np.float64) for clip in clips]
        signals[f"MIR-1K ({len(clips)} clips)"] = np.concatenate(mixtures)
    results = measure_signals(signals, hops=args.hops, progress=progress)
    banks = {name: build_frontend(name) for name in DESIGNS}
    bounds = {} if args.no_bounds else {
        name: operator_bounds(bank, progress=progress, name=f"bounds {name}") for name, bank in banks.items()}
    print(summary_table(results, bounds))
    print()
    print(worst_bands(results, banks["fb"]))
    if args.plot:
        plot_theory(args.plot, *mean_band_errors(results), bounds, banks["fb"])
        print(f"plot written to {args.plot}")
    return 0
