"""The benchmark report names the machine of every section (ratios move between CPUs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import cpu_flags, machine, markdown, previous_results
from benchmarks.detector import macs_per_frame
from benchmarks.stages import OTHER, stage_shares
from benchmarks.training import prefetch_speedup, throughput, worker_speedup
from vocalfront.frontends import build_frontend
from vocalfront.frontends.multirate import STAGES
from vocalfront.model import SchlueterCNN


def _detector_section(when: str, where: str | None) -> dict:
    section = {"when": when, "memory": {"minutes": 60, "signal_mb": 303.0, "peak_mb": 900.0}}
    return section if where is None else {**section, "machine": where}


def test_machine_names_the_cpu_and_its_vector_instructions() -> None:
    name, flags = cpu_flags()
    line = machine()
    assert name in line and flags in line and "torch kernels" in line


def test_each_section_names_the_machine_it_was_measured_on() -> None:
    results = {"machine": "this machine",
               "detector": _detector_section("2026-01-01 00:00:00", "an AVX2 laptop")}
    text = markdown(results)
    assert "measured 2026-01-01 00:00:00 on an AVX2 laptop" in text
    assert "this machine" not in text


def test_sections_kept_from_an_earlier_run_keep_that_run_s_machine(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps({"machine": "old machine", "when": "then",
                                "detector": _detector_section("then", None)}), encoding="utf-8")
    kept = previous_results(path)["detector"]
    assert kept["machine"] == "old machine" and kept["when"] == "then"
    assert "on old machine" in markdown({"machine": "new machine", **{"detector": kept}})


def test_every_filter_bank_stage_is_timed_and_the_shares_add_up_to_the_whole() -> None:
    bank = build_frontend("fb-learn-cf")
    waveform = torch.randn(2, 36225)

    def step() -> None:
        bank(waveform.clone().requires_grad_()).sum().backward()

    shares = stage_shares(step, repeats=1)
    assert set(shares) == {*STAGES.values(), OTHER}
    assert all(share > 0 for share in shares.values())
    assert sum(shares.values()) == pytest.approx(1.0)


def test_the_cnn_multiply_adds_are_counted_layer_by_layer() -> None:
    # conv 1→64 on 78 bands, 64→32 on 76, pool to 25; 32→128 on 23, 128→64 on 21, pool to 7;
    # dense 64·7·11→256, 256→64, 64→1 (a 115-frame context is 11 frames after two 3× pools)
    before_pool, between_pools = 9 * 64 * 78 + 9 * 64 * 32 * 76, 9 * 32 * 128 * 23 + 9 * 128 * 64 * 21
    dense = 64 * 7 * 11 * 256 + 256 * 64 + 64
    assert macs_per_frame(SchlueterCNN()) == before_pool + between_pools + dense == 5_119_936
    # a frame step of 3 strides the first pooling (later layers on every 3rd frame), 9 both
    assert macs_per_frame(SchlueterCNN(), 3) == pytest.approx(before_pool + (between_pools + dense) / 3)
    assert macs_per_frame(SchlueterCNN(), 9) == pytest.approx(before_pool + between_pools / 3 + dense / 9)


def test_the_detector_table_gives_every_frame_step_and_the_step_3_speed_ratio() -> None:
    inference = {"minutes": 10, "real_time_factor": 200.0, "dense_us_per_frame": 60.0,
                 "excerpt_us_per_frame": 5000.0, "dense_speedup": 83.0, "excerpt_real_time_factor": 3.0,
                 "step_cnn_macs_per_frame": {"1": 5.12e6, "3": 2.67e6, "9": 2.39e6},
                 "step_real_time_factors": {"float32 step 1": 200.0, "float32 step 3": 350.0,
                                            "float32 step 9": 380.0, "bf16 step 1": 300.0,
                                            "bf16 step 3": 540.0, "bf16 step 9": 600.0}}
    text = markdown({"machine": "m", "detector": {"when": "now", "inference": inference}})
    assert "| CNN multiply-adds per frame at frame step 1 / 3 / 9 (`--frame-step`; M) | " \
           "5.12 / 2.67 / 2.39 |" in text
    assert "| whole-file inference, float32, frame step 1 / 3 / 9 (× real time) | 200 / 350 / 380 " \
           "(step 3: 1.75× step 1) |" in text
    assert "| 300 / 540 / 600 (step 3: 1.80× step 1) |" in text


def test_the_frame_step_table_names_the_model_it_measured() -> None:
    steps = {"1": {"error": 0.328, "auroc": 0.987, "max_abs_dp": 0.0, "mean_abs_dp": 0.0,
                   "decisions_changed": 0.0},
             "3": {"error": 0.326, "auroc": 0.988, "max_abs_dp": 0.25, "mean_abs_dp": 0.012,
                   "decisions_changed": 0.009}}
    text = markdown({"machine": "m", "frame_steps": {"when": "now", "model_sha256": "0123456789ab",
                                                     "steps": steps}})
    assert "**What `--frame-step` changes on the packaged example** (measured now" in text
    assert "Packaged model (sha256 0123456789ab)" in text
    assert "| 3 | 32.6 % | 0.988 | 0.25 / 0.012 | 0.9 % |" in text


def test_the_detector_table_states_the_bound_the_matrix_product_sets() -> None:
    inference = {"minutes": 10, "real_time_factor": 210.0, "dense_us_per_frame": 60.0,
                 "excerpt_us_per_frame": 5000.0, "dense_speedup": 83.0, "excerpt_real_time_factor": 3.0,
                 "cnn_macs_per_frame": 5_119_936, "cnn_gflops": 150.0, "matmul_gflops": 180.0,
                 "matmul_bound_real_time_factor": 251.0}
    text = markdown({"machine": "m", "detector": {"when": "now", "inference": inference}})
    assert "5.1 M multiply-adds per frame" in text and "| 150 (180: " in text
    assert "would run 251× real time" in text


def test_training_throughput_is_a_section_of_its_own_measured_per_mode() -> None:
    result = throughput(1, batch=2, dense_batch=1, dense_frames=8)
    rates = result["labelled_frames_per_second"]
    assert set(rates) == {"excerpt", "dense", "dense bf16"} and all(rate > 0 for rate in rates.values())
    assert result["dense_over_excerpt"] == pytest.approx(rates["dense"] / rates["excerpt"])
    text = markdown({"machine": "m", "training": {"when": "now", "machine": "m", **result}})
    assert "**Training throughput (one Adam update)** (measured now on m)" in text
    assert f"| training, labelled frames/s: dense vs excerpt | {rates['dense']:.0f} vs " in text


def training_section_text(**measured: dict) -> str:
    """The report of a tiny training section with the given extra measurements in it."""
    section = {"when": "now", "machine": "m", **throughput(1, batch=2, dense_batch=1, dense_frames=8),
               **measured}
    return markdown({"machine": "m", "training": section})


def test_updates_with_examples_made_ahead_are_timed_against_made_in_place() -> None:
    result = prefetch_speedup(1, updates=2, batch_size=1)
    seconds = result["seconds_per_update"]
    assert set(seconds) == {"in place", "ahead"} and all(value > 0 for value in seconds.values())
    assert result["ahead_speedup"] == pytest.approx(seconds["in place"] / seconds["ahead"])
    text = training_section_text(prefetch=result)
    assert f"({result['ahead_speedup']:.2f}×) |" in text and "made in place vs ahead" in text


def test_a_batch_of_examples_is_timed_made_by_one_thread_and_by_several() -> None:
    result = worker_speedup(1, workers=2, batch_size=2)
    seconds = result["seconds_per_batch"]
    assert set(seconds) == {"1", "2"} and all(value > 0 for value in seconds.values())
    assert result["workers_speedup"] == pytest.approx(seconds["1"] / seconds["2"])
    text = training_section_text(workers=result)
    assert "2 examples (`train.sampling = \"global\"`): 1 vs 2 threads" in text
    assert f"({result['workers_speedup']:.2f}×) |" in text
