"""The benchmark report names the machine of every section (ratios move between CPUs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.__main__ import cpu_flags, machine, markdown, previous_results
from benchmarks.stages import OTHER, stage_shares
from vocalfront.frontends import build_frontend
from vocalfront.frontends.multirate import STAGES


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
