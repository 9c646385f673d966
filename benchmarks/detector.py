"""Detector speed: whole-file inference (dense vs excerpt-wise) and its peak memory.

Whole-file inference is bounded by the CNN's arithmetic: dense evaluation needs
:func:`macs_per_frame` multiply-adds per output frame (about 5.1 million for the paper's CNN), so
this machine's float32 matrix-product rate (:func:`matmul_gflops`) sets the most real time any
float32 implementation of the same network can reach here; :func:`inference` reports both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import torch

from vocalfront.frontends import BandNorm, LogCompression, build_frontend
from vocalfront.inference import compute_features, excerpt_frame_logits, frame_logits, predict_waveform
from vocalfront.model import Detector, SchlueterCNN

from .timing import median_seconds


def _detector(frontend: str = "mel") -> Detector:
    torch.manual_seed(0)
    return Detector(build_frontend(frontend), LogCompression(), BandNorm(80), SchlueterCNN()).eval()


def macs_per_frame(cnn: SchlueterCNN) -> int:
    """Multiply-adds per output frame of dense evaluation (each layer's kernel × output bands)."""
    bands: list[int] = []
    hooks = [unit.register_forward_hook(lambda _m, _i, out: bands.append(out.shape[2]))
             for unit in cnn.units]
    frame_logits(cnn, torch.zeros(1, cnn.n_bands, 1))
    for hook in hooks:
        hook.remove()
    return sum(unit.conv.weight.numel() * height for unit, height in zip(cnn.units, bands, strict=True))


def matmul_gflops(repeats: int, size: int = 2048) -> float:
    """Float32 matrix-product rate (GFLOP/s, median of ``repeats``) with torch's threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / median_seconds({"matmul": lambda: a @ b}, repeats)["matmul"] / 1e9


def inference(minutes: float, repeats: int, excerpt_frames: int = 300) -> dict:
    """Real-time factors of whole-file inference (float32, and with the ``bf16`` option); CNN
    time per frame dense vs excerpt-wise; the dense CNN's arithmetic rate and the real-time
    factor that the float32 matrix-product rate would allow the CNN alone."""
    detector = _detector()
    seconds = minutes * 60
    audio = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * 22050), dtype=np.float32)
    whole = median_seconds({"float32": lambda: predict_waveform(detector, audio),
                            "bf16": lambda: predict_waveform(detector, audio, bf16=True)}, repeats)
    features = compute_features(detector, audio).unsqueeze(0)
    frames = features.shape[-1]
    subset = features[..., :excerpt_frames]
    cnn = median_seconds({
        "dense": lambda: frame_logits(detector.cnn, features),
        "excerpt": lambda: excerpt_frame_logits(detector.cnn, subset),
    }, max(1, repeats - 1))
    dense_per_frame = cnn["dense"] / frames
    excerpt_per_frame = cnn["excerpt"] / subset.shape[-1]
    macs = macs_per_frame(detector.cnn)
    matmul = matmul_gflops(repeats)
    return {"minutes": minutes, "predict_seconds": whole["float32"],
            "real_time_factor": seconds / whole["float32"],
            "real_time_factor_bf16": seconds / whole["bf16"],
            "dense_us_per_frame": dense_per_frame * 1e6, "excerpt_us_per_frame": excerpt_per_frame * 1e6,
            "dense_speedup": excerpt_per_frame / dense_per_frame,
            "excerpt_real_time_factor": seconds / (excerpt_per_frame * frames),
            "cnn_macs_per_frame": macs,
            "cnn_gflops": 2 * macs / dense_per_frame / 1e9, "matmul_gflops": matmul,
            "matmul_bound_real_time_factor": matmul * 1e9 / (2 * macs) / detector.grid.frame_rate}


# Peak memory from /proc (VmHWM): ru_maxrss of a child can carry its parent's peak over exec.
_MEMORY_SNIPPET = """
import json, time, numpy as np, torch
from benchmarks.detector import _detector
from vocalfront.inference import predict_waveform

def high_water_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

detector = _detector()
audio = 0.1 * np.random.default_rng(0).standard_normal(int({minutes} * 60 * 22050), dtype=np.float32)
before = high_water_mb()
start = time.perf_counter()
predict_waveform(detector, audio)
elapsed = time.perf_counter() - start
print(json.dumps({{"peak_mb": high_water_mb(), "before_mb": before,
                  "signal_mb": audio.nbytes / 2**20, "seconds": elapsed}}))
"""


def peak_memory(minutes: float = 60) -> dict:
    """Peak resident memory (MB) of a fresh process predicting ``minutes`` of audio."""
    result = subprocess.run([sys.executable, "-c", _MEMORY_SNIPPET.format(minutes=minutes)],
                            capture_output=True, text=True, check=True, timeout=3600)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["minutes"] = minutes
    return report


def timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
