"""Benchmark whole-file inference (not a test).

Measures, for a random-init mel detector on a random signal:
- real-time factor of :func:`vocalfront.inference.predict_waveform` (front-end + dense CNN),
  and of its two parts;
- time per frame of dense vs excerpt-by-excerpt CNN evaluation (the latter on a subset of
  frames, since it is about 50 times slower);
- the CNN's arithmetic rate against a plain matrix product on the same machine (the CNN needs
  about 5.1 million multiply-adds per frame, so the matrix-product rate bounds its speed);
- the process's peak resident memory.

Usage::

    python benchmarks/bench_inference.py                    # 10-minute signal
    python benchmarks/bench_inference.py --minutes 60 --memory   # peak memory of one call
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from vocalfront.frontends import BandNorm, LogCompression, build_frontend
from vocalfront.inference import (
    compute_features,
    excerpt_frame_logits,
    frame_logits,
    predict_waveform,
)
from vocalfront.model import Detector, SchlueterCNN


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def macs_per_frame(cnn: SchlueterCNN) -> int:
    """Multiply-adds per output frame of dense evaluation (each layer's kernel x output bands)."""
    bands: list[int] = []
    hooks = [unit.register_forward_hook(lambda _m, _i, out: bands.append(out.shape[2]))
             for unit in cnn.units]
    frame_logits(cnn, torch.zeros(1, cnn.n_bands, 1))
    for hook in hooks:
        hook.remove()
    return sum(unit.conv.weight.numel() * height for unit, height in zip(cnn.units, bands, strict=True))


def matmul_gflops(repeats: int, size: int = 2048) -> float:
    """Best float32 matrix-product rate (GFLOP/s) with torch's threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / min(timed(lambda: a @ b, repeats + 2)) / 1e9


def describe(label: str, times: list[float], audio_seconds: float) -> None:
    best, median = min(times), statistics.median(times)
    print(f"{label:<26} best {best:8.3f} s ({audio_seconds / best:7.1f}x real time)   "
          f"median {median:8.3f} s ({audio_seconds / median:7.1f}x)")


def report_memory(audio: np.ndarray) -> None:
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak_mib:.0f} MiB (signal alone {audio.nbytes / 2**20:.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="signal length (minutes)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each measurement")
    parser.add_argument("--excerpt-frames", type=int, default=300,
                        help="frames for the excerpt-wise reference (0: skip)")
    parser.add_argument("--memory", action="store_true",
                        help="only call predict_waveform once and report the peak memory")
    args = parser.parse_args()

    torch.manual_seed(0)
    detector = Detector(build_frontend("mel"), LogCompression(), BandNorm(80), SchlueterCNN()).eval()
    seconds = args.minutes * 60
    audio = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * 22050), dtype=np.float32)
    frames = detector.grid.num_frames(len(audio))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"signal {args.minutes:g} min = {frames} frames")

    describe("predict_waveform", timed(lambda: predict_waveform(detector, audio),
                                       1 if args.memory else args.repeats), seconds)
    if args.memory:
        report_memory(audio)
        return
    describe("  features (front-end)", timed(lambda: compute_features(detector, audio),
                                             args.repeats), seconds)
    features = compute_features(detector, audio).unsqueeze(0)
    dense_times = timed(lambda: frame_logits(detector.cnn, features), args.repeats)
    describe("  dense CNN", dense_times, seconds)

    gflops = 2 * macs_per_frame(detector.cnn) * frames / min(dense_times) / 1e9
    peak = matmul_gflops(args.repeats)
    print(f"dense CNN {gflops:.0f} GFLOP/s; float32 matmul {peak:.0f} GFLOP/s, which bounds "
          f"the CNN at {peak / gflops * seconds / min(dense_times):.0f}x real time")

    if args.excerpt_frames > 0:
        subset = features[..., : args.excerpt_frames]
        excerpt_times = timed(lambda: excerpt_frame_logits(detector.cnn, subset), 1)
        dense_per_frame = min(dense_times) / frames
        excerpt_per_frame = excerpt_times[0] / subset.shape[-1]
        print(f"CNN per frame: dense {dense_per_frame * 1e6:.1f} us, excerpt-wise "
              f"{excerpt_per_frame * 1e6:.1f} us ({subset.shape[-1]} frames): "
              f"dense is {excerpt_per_frame / dense_per_frame:.1f}x faster")
    report_memory(audio)


if __name__ == "__main__":
    main()
