"""The `ci` profile of experiments/paper.toml end to end on a generated MIR-1K folder with test
singers: training, the test split per file, claims with verdicts, controls, learning curves."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import torch
from test_heldout_sets import make_music
from test_training import keep_thread_count, make_tiny_mir1k  # noqa: F401 (autouse fixture)

from vocalfront.cli import main
from vocalfront.experiment import load_experiment
from vocalfront.experiment.compare import VERDICTS
from vocalfront.experiment.controls import PERTURBED_OPTIONS
from vocalfront.training import validation as validation_module

PAPER = Path(__file__).parents[1] / "experiments" / "paper.toml"
TEST_CLIPS = {"Kenshin_1_01": "abjones_1_01", "Kenshin_1_02": "abjones_1_02", "amy_2_01": "jmzen_2_01",
              "davidson_3_01": "jmzen_5_01", "yifen_4_01": "abjones_3_01"}
"""Clips of a second generated folder renamed to the test singers (3 songs of abjones, 2 of jmzen)."""


def make_mir1k_with_test_singers(root: Path) -> Path:
    """The tests' tiny MIR-1K folder plus five clips of the test singers abjones and jmzen."""
    data = make_tiny_mir1k(root / "mir1k")
    other = make_tiny_mir1k(root / "other", seed=5)
    for old, new in TEST_CLIPS.items():
        for folder, suffix in (("Wavfile", ".wav"), ("vocal-nonvocalLabel", ".vocal")):
            (other / folder / f"{old}{suffix}").rename(data / folder / f"{new}{suffix}")
    return data


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory) -> dict:
    """The `ci` profile on MIR-1K-like clips and held-out music (3 excerpts of 2 s alone in the
    validation and test sets)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ci")
    data = make_mir1k_with_test_singers(root)
    music = make_music(root / "music")
    started = time.process_time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(validation_module, "HELDOUT_MUSIC", (3, 2.0))
        status = main(["experiment", "--config", str(PAPER), "--profile", "ci", "--data", str(data),
                       "--out", str(root / "out"), "--no-progress", f"data.instrumental={music}",
                       'data.instrumental_valid=["held-valid"]', 'data.instrumental_test=["held-test"]'])
    return {"out": root / "out", "data": data, "status": status, "cpu_seconds": time.process_time() - started}


def test_ci_profile_runs_every_arm_end_to_end_quickly(ci_run):
    assert ci_run["status"] == 0
    assert ci_run["cpu_seconds"] < 120  # about 30 s of one core here
    with (ci_run["out"] / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["frontend"], row["seed"]) for row in rows] == [
        (name, str(seed)) for name in ("mel", "fb", "fb-learn-cf", "fb-random-cf") for seed in (0, 1)]
    assert all(0.0 <= float(row["test_auroc"]) <= 1.0 and row["test-mir1k_auroc"] for row in rows)
    assert all(row["test-instrumental_auroc"] == "" and row["test-instrumental_error"] for row in rows)


def test_test_split_is_scored_per_file_with_songs_and_the_models_own_settings(ci_run):
    evaluation = json.loads((ci_run["out"] / "runs" / "fb-seed1" / "evaluation.json").read_text())
    test = evaluation["test"]
    assert test["model"] == "model.pt" and test["clips"] == 5 + 3
    stored = torch.load(ci_run["out"] / "runs" / "fb-seed1" / "model.pt", weights_only=False)["extra"]
    assert test["settings"]["threshold"] == pytest.approx(stored["threshold"])
    assert {record["song"] for record in test["files"]} == {
        "mir1k/abjones_1", "mir1k/abjones_3", "mir1k/jmzen_2", "mir1k/jmzen_5",
        *(f"instrumental/instrumental-{index:03d}" for index in range(3))}
    with (ci_run["out"] / "files.csv").open() as handle:
        files = list(csv.DictReader(handle))
    assert len(files) == 8 * (5 + 3)
    assert {row["file"] for row in files if row["source"] == "mir1k"} == set(TEST_CLIPS.values())


def test_report_states_claims_with_verdicts_controls_and_learning_curves(ci_run):
    markdown = (ci_run["out"] / "results.md").read_text()
    assert "## Claims on the test split" in markdown
    claim = "| fb-learn-cf − fb-random-cf | {} |"
    claims = [line for line in markdown.splitlines() if line.startswith((claim.format("auroc"),
                                                                         claim.format("error")))
              and line.count("|") == 11]  # the claims table's rows (the seed-level tables have 9 columns)
    assert len(claims) == 2
    for line in claims:  # 2 seeds: no verdict yet, but what the p-values would say
        assert "| undecided (2 seeds, 10 needed; else: " in line
        assert line.rpartition("else: ")[2].removesuffix(") |").split(",")[0] in VERDICTS
    assert "auroc 0.0050, error 0.30" in markdown  # the margins of the experiment file
    assert "## Test split per source" in markdown and "## Learning curves" in markdown
    movement = next(line for line in markdown.splitlines() if line.startswith("| fb-random-cf |")
                    and "/" in line and "±" not in line)
    assert movement.split("|")[3].strip().startswith("1.4 / ")  # centre: median moved 1.4 spacings


def test_a_random_control_is_a_frozen_bank_moved_differently_per_seed():
    experiment = load_experiment(PAPER, "ci")
    first, second = (experiment.training_config("fb-random-cf", seed) for seed in (0, 1))
    assert first.model.frontend == "fb" and set(PERTURBED_OPTIONS) <= set(first.model.frontend_options)
    assert first.model.frontend_options["centres_mel"] != second.model.frontend_options["centres_mel"]
    assert experiment.training_config("fb-random-cf", 0) == first  # the same for a resumed run
