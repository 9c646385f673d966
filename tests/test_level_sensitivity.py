"""scripts/level_sensitivity.py: a detector's decisions at several input levels, on generated
music and the tiny MIR-1K corpus."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from test_training import TINY, make_tiny_mir1k

from vocalfront.detector_file import save_detector
from vocalfront.training import build_model, load_config

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "level_sensitivity.py"


def run_script(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, check=False)


def test_at_gain_scales_by_decibels_and_clips_like_a_limited_master():
    spec = importlib.util.spec_from_file_location("level_sensitivity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    audio = np.array([0.05, -0.2, 0.6], np.float32)
    np.testing.assert_allclose(module.at_gain(audio, -20.0), audio / 10, rtol=1e-6)
    np.testing.assert_allclose(module.at_gain(audio, 20.0), [0.5, -1.0, 1.0], rtol=1e-6)


def test_the_table_has_a_row_per_gain_with_shares_and_dataset_metrics(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    rng = np.random.default_rng(0)
    for index in range(2):
        sf.write(music / f"track{index}.wav", 0.1 * rng.standard_normal(22050 * 3), 22050)
    root = make_tiny_mir1k(tmp_path / "mir1k")
    torch.manual_seed(0)
    save_detector(tmp_path / "model.pt", build_model(load_config(TINY).model), {"update": 1})
    result = run_script("--model", tmp_path / "model.pt", "--music", music, "--mir1k", root,
                        "--split", "all", "--gains", "-6", "0", "6", "--out", tmp_path / "level.md")
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "level.md").read_text().splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == ["-6", "+0", "+6"]
    for row in rows:
        values = [float(cell) for cell in row.split("|")[2:-1]]
        assert len(values) == 4 and all(0.0 <= value <= 100.0 for value in values)


def test_a_missing_music_folder_is_a_one_line_error(tmp_path):
    result = run_script("--music", tmp_path / "nowhere")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nowhere'}: folder not found"


def test_a_gain_out_of_range_is_refused_before_any_work(tmp_path):
    result = run_script("--music", tmp_path, "--gains", "0", "120")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --gains 120: a gain must be from -60 to 40 dB"
