"""``python -m benchmarks``: every performance number the README states, from one command.

Sections (``--only`` picks some): ``extraction`` (10 min of audio, forward: ours against a plain
torch.stft mel reference, librosa, nnAudio and SpeechBrain's Leaf), ``batch`` (32 × 1.64 s,
forward + backward: every learnable variant against nnAudio's trainable mel and Leaf),
``detector`` (whole-file inference real-time factor, dense vs excerpt-wise, at every frame step
in float32 and bf16; peak memory for a 1-hour file), ``frame_steps`` (what the frame steps change
in the packaged model's decisions on its example: no timing, so it may be rerun on a busy
machine when the model changes), ``training`` (labelled frames per second of one
training update, dense vs excerpt and dense bf16; whole updates with the examples made in place
or ahead; a batch of examples made by one thread or several, :mod:`benchmarks.training`),
``stages`` (where
``fb``'s time goes: each stage's share and ratio to torch.stft mel, :mod:`benchmarks.stages`).
Times are medians of interleaved, warmed-up repeats; every ratio is between numbers of the same
run.
Writes JSON (``--json``; with ``--only``, the sections not rerun are kept from that file, each
with the time it was measured) and, with ``--readme``, replaces the block between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` of that file with the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path

import torch

from vocalfront.fileio import write_text_atomic

from . import detector, peers, stages, training

REFERENCE = "torch.stft reference"


VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "neon",
                "asimd", "sve")
"""CPU flags that decide which kernels oneDNN, MKL and PocketFFT pick (and so the ratios)."""


def cpu_flags() -> tuple[str, str]:
    """The CPU's model name and its :data:`VECTOR_FLAGS` (from ``/proc/cpuinfo``; Linux only)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), "unknown"
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    name = fields.get("model name") or fields.get("Hardware") or platform.machine()
    present = set((fields.get("flags") or fields.get("Features") or "").split())
    return name, " ".join(flag for flag in VECTOR_FLAGS if flag in present) or "none listed"


def machine() -> str:
    """One line naming what the numbers were measured on: ratios move between CPUs (README)."""
    name, flags = cpu_flags()
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"{os.cpu_count()} cores ({name}; {flags}; torch kernels {capability}), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def extraction_table(result: dict) -> str:
    times, seconds = result["times"], result["seconds"]
    ref = times[REFERENCE]
    lines = [f"| front-end | {seconds // 60} min forward (s) | × real time | ratio to torch.stft mel |",
             "|---|---|---|---|"]
    for name, value in times.items():
        lines.append(f"| {name} | {value:.2f} | {seconds / value:.0f} | {value / ref:.2f} |")
    lines += [f"| {name} | not measured: {error} | | |" for name, error in result["unavailable"].items()]
    return "\n".join(lines)


def batch_table(result: dict) -> str:
    times = result["times"]
    ref = next(v for k, v in times.items() if k.startswith(REFERENCE))
    leaf = times.get("SpeechBrain Leaf")
    lines = ["| front-end | fwd+bwd (s) | ratio to torch.stft mel | Leaf / this |", "|---|---|---|---|"]
    for name, value in times.items():
        versus = f"{leaf / value:.0f}×" if leaf else "—"
        lines.append(f"| {name} | {value:.3f} | {value / ref:.2f} | {versus} |")
    lines += [f"| {name} | not measured: {error} | | |" for name, error in result["unavailable"].items()]
    return "\n".join(lines)


def stages_table(result: dict) -> str:
    result = result["cases"]
    cases = list(result)
    lines = ["| stage | " + " | ".join(f"{case}: share, ratio to torch.stft mel" for case in cases) + " |",
             "|---|" + "---|" * len(cases)]
    for stage in result[cases[0]]["shares"]:
        cells = [f"{result[case]['shares'][stage]:.0%}, {result[case]['ratios'][stage]:.2f}"
                 for case in cases]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"{result[case]['ratio']:.2f}" for case in cases) + " |")
    return "\n".join(lines)


def frame_step_rows(inf: dict) -> list[str]:
    """Rows of the CNN's multiply-adds per frame and whole-file inference (float32, bf16) at each
    frame step, with the speed ratio of step 3 to step 1."""
    rates, macs = inf["step_real_time_factors"], inf["step_cnn_macs_per_frame"]
    steps = " / ".join(macs)
    lines = [f"| CNN multiply-adds per frame at frame step {steps} (`--frame-step`; M) | "
             + " / ".join(f"{value / 1e6:.2f}" for value in macs.values()) + " |"]
    for precision in ("float32", "bf16"):
        values = [rates[f"{precision} step {step}"] for step in macs]
        lines.append(f"| whole-file inference, {precision}, frame step {steps} (× real time) | "
                     f"{' / '.join(f'{value:.0f}' for value in values)} (step 3: "
                     f"{rates[f'{precision} step 3'] / rates[f'{precision} step 1']:.2f}× step 1) |")
    return lines


def frame_steps_table(result: dict) -> str:
    """The packaged model on its example at each frame step: frame error, AUROC; against step 1
    the largest and mean probability change and the share of decisions changed."""
    lines = [f"Packaged model (sha256 {result['model_sha256']}) at all its decision settings (frame "
             "error of its final segments); changes against frame step 1.", "",
             "| frame step | frame error | AUROC | largest / mean change of probability | "
             "frames decided differently |", "|---|---|---|---|---|"]
    lines += [f"| {step} | {100 * row['error']:.1f} % | {row['auroc']:.3f} | {row['max_abs_dp']:.2f} / "
              f"{row['mean_abs_dp']:.3f} | {100 * row['decisions_changed']:.1f} % |"
              for step, row in result["steps"].items()]
    return "\n".join(lines)


def detector_table(result: dict) -> str:
    inf, memory = result.get("inference"), result.get("memory")
    lines = ["| measure | value |", "|---|---|"]
    if inf:
        lines += [
            f"| whole-file inference, {inf['minutes']:g} min, mel (× real time) | "
            f"{inf['real_time_factor']:.0f} |",
            f"| CNN per frame, dense vs excerpt-wise (µs) | {inf['dense_us_per_frame']:.1f} vs "
            f"{inf['excerpt_us_per_frame']:.1f} ({inf['dense_speedup']:.0f}× faster) |",
            f"| excerpt-wise inference (× real time, CNN only) | {inf['excerpt_real_time_factor']:.0f} |"]
        if "matmul_bound_real_time_factor" in inf:
            lines.append(f"| dense CNN arithmetic, {inf['cnn_macs_per_frame'] / 1e6:.1f} M multiply-adds "
                         f"per frame (GFLOP/s; float32 matrix product here) | {inf['cnn_gflops']:.0f} "
                         f"({inf['matmul_gflops']:.0f}: at that rate the CNN alone would run "
                         f"{inf['matmul_bound_real_time_factor']:.0f}× real time) |")
        if "real_time_factor_bf16" in inf:
            lines.append(f"| whole-file inference, CNN under bf16 autocast (`bf16=True`; × real "
                         f"time) | {inf['real_time_factor_bf16']:.0f} |")
        if "step_real_time_factors" in inf:
            lines += frame_step_rows(inf)
    if memory:
        lines.append(f"| peak memory, {memory['minutes']:g} min file (MB; signal alone "
                     f"{memory['signal_mb']:.0f}) | {memory['peak_mb']:.0f} |")
    return "\n".join(lines)


def training_table(result: dict) -> str:
    rates = result["labelled_frames_per_second"]
    return "\n".join([
        "| measure | value |", "|---|---|",
        f"| training, labelled frames/s: dense vs excerpt | {rates['dense']:.0f} vs "
        f"{rates['excerpt']:.0f} ({result['dense_over_excerpt']:.0f}×) |",
        f"| training, labelled frames/s: dense bf16 autocast (`train.bf16`) | "
        f"{rates['dense bf16']:.0f} ({result['bf16_over_float32']:.2f}× float32) |",
        *prefetch_rows(result.get("prefetch")), *worker_rows(result.get("workers"))])


def worker_rows(result: dict | None) -> list[str]:
    """The row of a batch of examples made by one thread and by several (none before it was measured)."""
    if result is None:
        return []
    seconds, workers = result["seconds_per_batch"], result["workers"]
    return [f"| training, s to make {result['batch_size']} examples (`train.sampling = \"global\"`): 1 vs "
            f"{workers} threads (`train.example_workers`) | "
            f"{seconds['1']:.2f} vs {seconds[str(workers)]:.2f} ({result['workers_speedup']:.2f}×) |"]


def prefetch_rows(result: dict | None) -> list[str]:
    """The row of whole updates with the examples made in place and ahead (none before it was measured)."""
    if result is None:
        return []
    seconds = result["seconds_per_update"]
    return [f"| training, s per update of the default model with its example making: made in place vs "
            f"ahead (`PrefetchingSampler`) | {seconds['in place']:.2f} vs {seconds['ahead']:.2f} "
            f"({result['ahead_speedup']:.2f}×) |"]


SECTIONS = {"extraction": ("Extraction", extraction_table),
            "batch": ("Training batch (32 × 1.64 s, forward + backward)", batch_table),
            "stages": ("Filter bank stages (`fb`)", stages_table),
            "detector": ("Detector", detector_table),
            "frame_steps": ("What `--frame-step` changes on the packaged example", frame_steps_table),
            "training": ("Training throughput (one Adam update)", training_table)}


def markdown(results: dict) -> str:
    parts = ["Made with `python -m benchmarks`; every ratio is between two numbers of the same run."]
    for key, (title, table) in SECTIONS.items():
        if key in results:
            section = results[key]
            where = section.get("machine") or "an unrecorded machine"
            parts += ["", f"**{title}** (measured {section.get('when')} on {where})", "",
                      table(section)]
    return "\n".join(parts)


def previous_results(path: Path) -> dict:
    """The sections of an earlier run (JSON at ``path``), each stamped with its time; {} if none."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text(encoding="utf-8"))
    return {key: {"when": old.get("when"), "machine": old.get("machine"), **old[key]}
            for key in SECTIONS if key in old}


def update_readme(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(r"(<!-- bench:start -->\n).*?(<!-- bench:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no <!-- bench:start --> ... <!-- bench:end --> block")
    write_text_atomic(path, pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=600, help="audio for extraction (s)")
    parser.add_argument("--leaf-seconds", type=int, default=30)
    parser.add_argument("--memory-minutes", type=float, default=60)
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks.json"))
    parser.add_argument("--readme", type=Path, help="update this README's benchmark block")
    args = parser.parse_args()
    results: dict = {"machine": machine(), **previous_results(args.json)}
    if "extraction" in args.only:
        results["extraction"] = peers.extraction(args.seconds, args.leaf_seconds, args.repeats)
        results["extraction"].update(when=detector.timestamp(), machine=results["machine"])
        print(extraction_table(results["extraction"]), flush=True)
    if "batch" in args.only:
        results["batch"] = peers.training_batch(args.repeats)
        results["batch"].update(when=detector.timestamp(), machine=results["machine"])
        print(batch_table(results["batch"]), flush=True)
    if "stages" in args.only:
        results["stages"] = stages.breakdown(args.seconds, args.repeats)
        results["stages"].update(when=detector.timestamp(), machine=results["machine"])
        print(stages_table(results["stages"]), flush=True)
    if "detector" in args.only:
        results["detector"] = {
            "inference": detector.inference(args.seconds / 60, max(2, args.repeats // 2)),
            "memory": detector.peak_memory(args.memory_minutes),
            "when": detector.timestamp(),
            "machine": results["machine"],
        }
        print(detector_table(results["detector"]), flush=True)
    if "frame_steps" in args.only:
        results["frame_steps"] = detector.frame_step_accuracy()
        results["frame_steps"].update(when=detector.timestamp(), machine=results["machine"])
        print(frame_steps_table(results["frame_steps"]), flush=True)
    if "training" in args.only:
        results["training"] = training.throughput(max(2, args.repeats // 2))
        results["training"]["prefetch"] = training.prefetch_speedup(max(2, args.repeats // 2))
        results["training"]["workers"] = training.worker_speedup(args.repeats)
        results["training"].update(when=detector.timestamp(), machine=results["machine"])
        print(training_table(results["training"]), flush=True)
    write_text_atomic(args.json, json.dumps(results, indent=2))
    if args.readme:
        update_readme(args.readme, markdown(results))


if __name__ == "__main__":
    main()
