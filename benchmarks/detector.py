"""Detector speed: whole-file inference (dense vs excerpt-wise) and its peak memory.

Whole-file inference is bounded by the CNN's arithmetic: dense evaluation needs
:func:`macs_per_frame` multiply-adds per output frame (about 5.1 million for the paper's CNN), so
this machine's float32 matrix-product rate (:func:`matmul_gflops`) sets the most real time any
float32 implementation of the same network can reach here; :func:`inference` reports both, and
the real time of every frame step (the CNN on every 1st, 3rd or 9th frame, 2.7 and 2.4 million
multiply-adds per frame at steps 3 and 9) in float32 and bf16. What a frame step costs in
accuracy, :func:`frame_step_accuracy` measures with the packaged model on its example.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from vocalfront.data.labels import read_segments, segments_to_frames
from vocalfront.detect import detect, load_model
from vocalfront.evaluation import evaluate_files, frame_metrics
from vocalfront.frontends import BandNorm, LogCompression, build_frontend
from vocalfront.grid import FRAME_STEPS
from vocalfront.inference import compute_features, excerpt_frame_logits, frame_logits, predict_waveform
from vocalfront.model import Detector, SchlueterCNN
from vocalfront.pretrained import default_model_path
from vocalfront.provenance import file_digest

from .timing import median_seconds


def _detector(frontend: str = "mel") -> Detector:
    torch.manual_seed(0)
    return Detector(build_frontend(frontend), LogCompression(), BandNorm(80), SchlueterCNN()).eval()


def macs_per_frame(cnn: SchlueterCNN, step: int = 1) -> float:
    """Multiply-adds per frame of dense evaluation every ``step`` frames: each layer's kernel ×
    output bands × its output frames per input frame (1 before any strided pooling, 1/3 after
    one; measured as the growth of its output between two input lengths)."""
    sizes: list[torch.Size] = []
    hooks = [unit.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape)) for unit in cnn.units]
    longer = FRAME_STEPS[-1]  # a whole number of frames at every unit's stride
    with torch.inference_mode():
        for frames in (cnn.context, cnn.context + longer):
            cnn.dense(torch.zeros(1, 1, cnn.n_bands, frames), step)
    for hook in hooks:
        hook.remove()
    short, long = sizes[: len(cnn.units)], sizes[len(cnn.units) :]
    return sum(unit.conv.weight.numel() * after[2] * (after[3] - before[3]) / longer
               for unit, before, after in zip(cnn.units, short, long, strict=True))


def matmul_gflops(repeats: int, size: int = 2048) -> float:
    """Float32 matrix-product rate (GFLOP/s, median of ``repeats``) with torch's threads."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / median_seconds({"matmul": lambda: a @ b}, repeats)["matmul"] / 1e9


def _whole_file_runs(detector: Detector, audio: np.ndarray) -> dict:
    """``predict_waveform`` of ``audio`` at every frame step, float32 and bf16, by name
    (``float32 step 1`` ... ``bf16 step 9``)."""
    return {f"{precision} step {step}": (lambda bf16=bf16, step=step:
                                         predict_waveform(detector, audio, bf16=bf16, step=step))
            for precision, bf16 in (("float32", False), ("bf16", True)) for step in FRAME_STEPS}


def inference(minutes: float, repeats: int, excerpt_frames: int = 300) -> dict:
    """Real-time factors of whole-file inference (float32, and with the ``bf16`` option) at every
    frame step (``step_real_time_factors``, by :func:`_whole_file_runs` name); CNN time per frame
    dense vs excerpt-wise; the dense CNN's arithmetic rate and the real-time factor that the
    float32 matrix-product rate would allow the CNN alone."""
    detector = _detector()
    seconds = minutes * 60
    audio = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * 22050), dtype=np.float32)
    whole = median_seconds(_whole_file_runs(detector, audio), repeats)
    features = compute_features(detector, audio).unsqueeze(0)
    frames = features.shape[-1]
    subset = features[..., :excerpt_frames]
    cnn = median_seconds({
        "dense": lambda: frame_logits(detector.cnn, features),
        "excerpt": lambda: excerpt_frame_logits(detector.cnn, subset),
    }, max(3, repeats))  # one sample each was noisy: 95 GFLOP/s beside a 201x whole-file rate
    dense_per_frame = cnn["dense"] / frames
    excerpt_per_frame = cnn["excerpt"] / subset.shape[-1]
    macs = macs_per_frame(detector.cnn)
    matmul = matmul_gflops(repeats)
    return {"minutes": minutes, "predict_seconds": whole["float32 step 1"],
            "real_time_factor": seconds / whole["float32 step 1"],
            "real_time_factor_bf16": seconds / whole["bf16 step 1"],
            "step_real_time_factors": {name: seconds / value for name, value in whole.items()},
            "step_cnn_macs_per_frame": {str(step): macs_per_frame(detector.cnn, step)
                                        for step in FRAME_STEPS},
            "dense_us_per_frame": dense_per_frame * 1e6, "excerpt_us_per_frame": excerpt_per_frame * 1e6,
            "dense_speedup": excerpt_per_frame / dense_per_frame,
            "excerpt_real_time_factor": seconds / (excerpt_per_frame * frames),
            "cnn_macs_per_frame": macs,
            "cnn_gflops": 2 * macs / dense_per_frame / 1e9, "matmul_gflops": matmul,
            "matmul_bound_real_time_factor": matmul * 1e9 / (2 * macs) / detector.grid.frame_rate}


def frame_step_accuracy() -> dict:
    """The packaged model on its packaged example (``example.flac``, labels ``example.lab``) at
    every frame step, at all its decision settings: the frame ``error`` of its final decisions
    (what its label files say) and ``auroc`` (:func:`~vocalfront.evaluation.evaluate_files`), and
    against step 1 the largest and the mean probability change ``max_abs_dp``, ``mean_abs_dp``
    and the share of frames decided differently ``decisions_changed``;
    by step (``"1"``, ``"3"``, ``"9"``, as JSON keeps it) under ``steps``, and the model file's
    ``model_sha256``."""
    model = load_model()
    folder = Path(str(resources.files("vocalfront") / "examples"))
    song, labels = folder / "example.flac", folder / "example.lab"
    detections = {step: detect(song, model=model, frame_step=step) for step in FRAME_STEPS}
    exact = detections[1]
    truth = segments_to_frames(read_segments(labels), len(exact.probabilities), model.detector.grid)
    result = {}
    for step, detection in detections.items():
        auroc = evaluate_files([detection.probabilities], [truth], detection.threshold).pooled["auroc"]
        change = np.abs(detection.probabilities - exact.probabilities)
        result[str(step)] = {"error": frame_metrics(detection.decisions, truth)["error"], "auroc": auroc,
                             "max_abs_dp": float(change.max()), "mean_abs_dp": float(change.mean()),
                             "decisions_changed": float(np.mean(detection.decisions != exact.decisions))}
    return {"model_sha256": file_digest(default_model_path()), "steps": result}


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
