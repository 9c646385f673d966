"""scripts/calibrate_model.py and scripts/evaluate_heldout.py on a run's validation set, run as
commands: the settings chosen there, the table of a model at them, unreadable clips skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_training import TINY, make_tiny_mir1k

from vocalfront.detect import load_model
from vocalfront.detector_file import save_detector
from vocalfront.errors import VocalfrontError
from vocalfront.segments import Segment, format_json
from vocalfront.training import build_model, load_config

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
BROKEN = "davidson_3_01"
"""A validation clip whose audio is not a WAV file: skipped, and said so."""


def run_script(name: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A tiny untrained detector calibrated on the tiny corpus' validation clips, one of them
    broken: ``(data root, calibrated model, the command's result)``."""
    folder = tmp_path_factory.mktemp("heldout")
    root = make_tiny_mir1k(folder / "mir1k")
    (root / "Wavfile" / f"{BROKEN}.wav").write_bytes(b"not audio")
    torch.manual_seed(0)
    save_detector(folder / "best.pt", build_model(load_config(TINY).model), {"update": 8})
    result = run_script("calibrate_model.py", "--config", TINY, "--model", folder / "best.pt",
                        "--out", folder / "model.pt", f"data.root={root}")
    return root, folder / "model.pt", result


def test_calibrate_model_stores_the_settings_chosen_on_the_validation_set(calibrated):
    _, model, result = calibrated
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert 0.0 <= record["valid_final_error"] <= 1.0
    assert load_model(model).threshold == pytest.approx(record["threshold"])


def test_calibrate_model_tries_hysteresis_only_when_asked(calibrated, tmp_path):
    root, model, plain = calibrated
    assert json.loads(plain.stdout)["peak_threshold"] == 0.0
    result = run_script("calibrate_model.py", "--config", TINY, "--model", model, "--out",
                        tmp_path / "hysteresis.pt", "--hysteresis", f"data.root={root}")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    stored = load_model(tmp_path / "hysteresis.pt").postprocessing
    assert stored.peak_threshold == record["peak_threshold"] and record["valid_final_error"] <= (
        json.loads(plain.stdout)["valid_final_error"] + 1e-9)


def test_calibrate_model_names_each_skipped_validation_clip(calibrated):
    _, _, result = calibrated
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 1 and BROKEN in skipped[0]


def test_evaluate_heldout_scores_a_model_at_its_stored_threshold(calibrated, tmp_path):
    root, model, _ = calibrated
    table = tmp_path / "results.md"
    result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "valid", "--models", model,
                        "--seed", "3", "--out", table, f"data.root={root}")
    assert result.returncode == 0, result.stderr
    assert "Held-out split `valid` (mixing seed 3)" in result.stdout
    threshold = load_model(model).threshold
    assert f"| model.pt | {threshold:.3f} | all |" in table.read_text(encoding="utf-8")
    assert any(line.startswith("skipped: ") and BROKEN in line for line in result.stderr.splitlines())


def test_evaluate_heldout_tells_where_the_final_decisions_err(calibrated, tmp_path):
    root, model, _ = calibrated
    result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "valid", "--models", model,
                        "--boundaries", "--json", tmp_path / "all.json", f"data.root={root}")
    assert result.returncode == 0, result.stderr
    scored = json.loads((tmp_path / "all.json").read_text())[str(model)]
    rows, frames = scored["boundaries"]["all"], scored["frames"]
    assert rows[-1]["to"] is None  # the open band: no Infinity in the JSON
    assert sum(row["negatives"] + row["positives"] for row in rows) == frames
    assert sum(row["error_share"] for row in rows) == pytest.approx(1.0)
    assert "| model.pt | all | 0-0.1 |" in result.stdout and "| model.pt | all | 0.8+ |" in result.stdout


def test_evaluate_heldout_tells_models_of_the_same_file_name_apart(calibrated, tmp_path):
    root, model, _ = calibrated
    for run in ("ft13", "ft14"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "model.pt").write_bytes(model.read_bytes())
    table = tmp_path / "results.md"
    result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "valid", "--models",
                        tmp_path / "ft13" / "model.pt", tmp_path / "ft14" / "model.pt", "--out", table,
                        f"data.root={root}")
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ")[0] for line in table.read_text(encoding="utf-8").splitlines()
            if " | all | " in line]
    assert rows == ["| ft13/model.pt", "| ft14/model.pt"]


def test_evaluate_heldout_takes_settings_written_after_the_models(calibrated, tmp_path):
    root, model, _ = calibrated
    result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "valid", "--models", model,
                        f"data.root={root}", "--json", tmp_path / "scores.json")
    assert result.returncode == 0, result.stderr
    assert list(json.loads((tmp_path / "scores.json").read_text())) == [str(model)]


def test_evaluate_heldout_scores_at_the_inference_settings_asked_for_and_says_which(calibrated, tmp_path):
    root, model, _ = calibrated
    tables = {}
    for name, options in {"exact": [], "fast": ["--frame-step", "3", "--bf16"]}.items():
        result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "valid", "--models", model,
                            "--json", tmp_path / f"{name}.json", *options, f"data.root={root}")
        assert result.returncode == 0, result.stderr
        tables[name] = (result.stdout, json.loads((tmp_path / f"{name}.json").read_text()))
    assert "(mixing seed 0); each model" in tables["exact"][0]
    assert "(mixing seed 0; CNN in bf16; CNN every 3rd frame)" in tables["fast"][0]
    exact, fast = (tables[name][1][str(model)] for name in ("exact", "fast"))
    assert exact["frames"] == fast["frames"]
    assert exact["auroc"] != fast["auroc"]  # other probabilities: the options reached the CNN


def test_evaluate_heldout_scores_a_seeded_sample_of_the_training_clips(calibrated, tmp_path):
    root, model, _ = calibrated
    frames = {}
    sample = ["--per-source", "2"]
    for name, options in {"all": [], "two": sample, "two again": sample}.items():
        result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "train", "--models", model,
                            "--json", tmp_path / "out.json", *options, f"data.root={root}")
        assert result.returncode == 0, result.stderr
        assert "Training clips (un-augmented) `train`" in result.stdout
        frames[name] = json.loads((tmp_path / "out.json").read_text())[str(model)]["frames"]
    assert 0 < frames["two"] == frames["two again"] < frames["all"]


def test_evaluate_heldout_refuses_an_empty_sample(calibrated):
    root, model, _ = calibrated
    result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "train", "--models", model,
                        "--per-source", "0", f"data.root={root}")
    assert result.returncode == 2 and result.stderr.strip() == "error: --per-source 0: must be at least 1"


def test_evaluate_heldout_gives_each_mir1k_singer_a_row_that_adds_up(calibrated, tmp_path):
    _, model, _ = calibrated
    root = make_tiny_mir1k(tmp_path / "mir1k")  # both validation singers readable (davidson, yifen)
    result = run_script("evaluate_heldout.py", "--config", TINY, "--split", "valid", "--models", model,
                        "--singers", f"data.root={root}", "--json", tmp_path / "scores.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "scores.json").read_text())[str(model)]
    singers = metrics["singers"]
    assert list(singers) == ["mir1k davidson", "mir1k yifen"]
    assert sum(row["frames"] for row in singers.values()) == metrics["frames"]  # only MIR-1K clips here
    assert all(row["threshold"] == pytest.approx(metrics["threshold"]) for row in singers.values())
    for name, row in singers.items():
        assert f"| {name} | {row['frames']} | {100 * row['error']:.1f} |" in result.stdout


def test_crossvalidate_calibration_scores_each_way_on_parts_it_did_not_choose_on(calibrated, tmp_path):
    _, model, _ = calibrated
    root = make_tiny_mir1k(tmp_path / "mir1k")              # two validation songs, both readable
    table = tmp_path / "cv.md"
    result = run_script("crossvalidate_calibration.py", "--config", TINY, "--model", model, "--out", table,
                        f"data.root={root}")
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ") for line in table.read_text(encoding="utf-8").splitlines()
            if line.startswith(("| one threshold |", "| hysteresis |"))]
    assert [(row[0], row[1]) for row in rows] == [("| one threshold", part) for part in ("0", "1", "all")] + [
        ("| hysteresis", part) for part in ("0", "1", "all")]
    assert all(0.0 <= float(row[7]) <= 100.0 for row in rows)
    assert rows[0][3] == "–"                                 # one threshold: no peak threshold


def test_crossvalidation_deals_the_song_groups_of_each_source_in_turn():
    import numpy as np

    sys.path.insert(0, str(SCRIPTS))
    from crossvalidate_calibration import fold_of

    from vocalfront.training.sampler import TrainingClip

    def clip(name: str, source: str) -> TrainingClip:
        return TrainingClip(name, np.zeros((1, 10), np.float32), np.zeros(1, np.float32), source)

    clips = [clip("abjones_1_01", "mir1k"), clip("abjones_1_02", "mir1k"), clip("amy_2_01", "mir1k"),
             clip("instrumental-000", "instrumental"), clip("instrumental-001", "instrumental")]
    assert fold_of(clips, 2) == [0, 0, 1, 0, 1]             # a song's clips stay together
    with pytest.raises(VocalfrontError, match="4 song group\\(s\\): too few for --folds 5"):
        fold_of(clips, 5)


def test_crossvalidate_calibration_refuses_more_parts_than_song_groups(calibrated):
    root, model, _ = calibrated
    result = run_script("crossvalidate_calibration.py", "--config", TINY, "--model", model, "--folds", "3",
                        f"data.root={root}")
    assert result.returncode == 2 and "too few for --folds 3" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("folds", ["1", "0", "-2"])
def test_crossvalidate_calibration_refuses_fewer_than_two_folds_before_reading_anything(folds, tmp_path):
    result = run_script("crossvalidate_calibration.py", "--config", tmp_path / "absent.toml",
                        "--model", tmp_path / "absent.pt", "--folds", folds)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: --folds {folds}: must be at least 2"


def write_detect_output(path: Path, duration: float, sung: list[tuple[float, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_json([Segment(start, end) for start, end in sung], duration,
                                source=path.with_suffix(".ogg")))


def test_singing_fraction_pools_each_folder_and_ranks_the_files(tmp_path):
    write_detect_output(tmp_path / "guitars" / "a.json", 100.0, [(0.0, 10.0), (50.0, 60.0)])
    write_detect_output(tmp_path / "guitars" / "b.json", 100.0, [])
    write_detect_output(tmp_path / "midi" / "c.json", 50.0, [(0.0, 25.0)])
    result = run_script("singing_fraction.py", tmp_path / "guitars", tmp_path / "midi", "--top", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2:4] == ["| midi | 0.8 | 50.0 % |", "| guitars | 3.3 | 10.0 % |"]
    assert lines[-2:] == ["| midi/c.ogg | 25.0 | 50 % |", "| guitars/a.ogg | 20.0 | 20 % |"]


def test_singing_fraction_skips_json_that_is_no_detect_output_and_names_a_missing_folder(tmp_path):
    write_detect_output(tmp_path / "music" / "a.json", 10.0, [(0.0, 5.0)])
    (tmp_path / "music" / "metrics.json").write_text('{"loss": 1.0}')
    (tmp_path / "music" / "broken.json").write_bytes(b"\xff{")
    result = run_script("singing_fraction.py", tmp_path / "music")
    assert result.returncode == 0 and "| music | 0.2 | 50.0 % |" in result.stdout
    skipped = result.stderr.splitlines()
    assert len(skipped) == 2 and all(line.startswith("skipped ") and "not a detect JSON output" in line
                                     for line in skipped)
    missing = run_script("singing_fraction.py", tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nowhere: no such folder")


def test_plot_training_curves_draws_a_run_and_names_a_missing_or_empty_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    entries = [{"event": "update", "update": u, "loss": 1.0 / u, "lr": 1e-3} for u in range(1, 9)]
    entries.append({"event": "validation", "update": 8, "valid": {"error": 0.2, "auroc": 0.9,
                                                                 "sources": {"mir1k": {"error": 0.3}}}})
    (run / "metrics.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    drawn = run_script("plot_training_curves.py", run, tmp_path / "curves.png")
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    missing = run_script("plot_training_curves.py", tmp_path / "nowhere", tmp_path / "x.png")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'nowhere'}: no such run folder"
    (run / "metrics.jsonl").write_text("")
    empty = run_script("plot_training_curves.py", run, tmp_path / "y.png")
    assert empty.returncode == 2 and "no updates or validations" in empty.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()
