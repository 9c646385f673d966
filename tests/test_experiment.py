"""The front-end comparison end to end on tiny synthetic MIR-1K data (profile ``tiny`` of
experiments/paper.toml): training, resume, skipping, evaluation, report, command line."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_process_lock import hold_in_another_process
from test_training import keep_thread_count, make_tiny_mir1k  # noqa: F401 (autouse fixture)

import vocalfront
from vocalfront.cli import main
from vocalfront.data.split import mir1k_split
from vocalfront.detect import load_model
from vocalfront.errors import VocalfrontError
from vocalfront.evaluation import choose_threshold, evaluate_files, median_smooth
from vocalfront.experiment import ExtraTest, load_experiment, parse_extra_test, run_experiment, run_one
from vocalfront.experiment.report import trained_on
from vocalfront.scoring import predict
from vocalfront.training import resolve_config, train
from vocalfront.training.runfolder import LOCK_FILE, read_metrics

PAPER = Path(__file__).parents[1] / "experiments" / "paper.toml"
FRONTENDS = ("mel", "fb-learn-cf")
INTERRUPTED = ("fb-learn-cf", 1)


class Interrupted(Exception):
    pass


def tiny_experiment(data: Path, *overrides: str):
    return load_experiment(PAPER, "tiny", [f"data.root={data}", *overrides], seeds=2, frontends=FRONTENDS)


def run_dir(out: Path, frontend: str, seed: int) -> Path:
    return out / "runs" / f"{frontend}-seed{seed}"


def update_entries(path: Path) -> list[dict]:
    return [entry for entry in read_metrics(path) if entry["event"] == "update"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict:
    """One tiny experiment (2 front-ends x 2 seeds), one of its runs interrupted at update 3 before
    the command ran; returns the paths and what the interrupted run had logged."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("experiment")
    data = make_tiny_mir1k(root / "mir1k")
    out = root / "out"
    config = resolve_config(tiny_experiment(data).training_config(*INTERRUPTED))

    def stop(update: int) -> None:
        if update == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(config, run_dir(out, *INTERRUPTED), progress=False, callback=stop)
    before = update_entries(run_dir(out, *INTERRUPTED))
    status = main(["experiment", "--config", str(PAPER), "--data", str(data), "--out", str(out),
                   "--profile", "tiny", "--seeds", "2", "--frontends", ",".join(FRONTENDS), "--no-progress"])
    return {"data": data, "out": out, "status": status, "before": before}


def test_every_run_is_trained_evaluated_and_reported(finished):
    out = finished["out"]
    assert finished["status"] == 0
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["frontend"], row["seed"]) for row in rows] == [
        ("mel", "0"), ("mel", "1"), ("fb-learn-cf", "0"), ("fb-learn-cf", "1")]
    assert all(row["updates"] == "8" and 0.0 <= float(row["auroc"]) <= 1.0 for row in rows)
    assert all(row["version"] == vocalfront.__version__ for row in rows)
    assert all(row["moved_centre_max"] == "" for row in rows if row["frontend"] == "mel")
    assert all(float(row["moved_centre_max"]) > 0 for row in rows if row["frontend"] == "fb-learn-cf")
    markdown = (out / "results.md").read_text()
    assert "Paired differences to `mel`" in markdown
    assert "| fb-learn-cf | AUROC | 2 |" in markdown
    assert "How far the learnable front-ends (and the random controls) moved" in markdown
    assert "--profile tiny --seeds 2 --frontends mel,fb-learn-cf" in markdown
    assert f"evaluated with vocalfront {vocalfront.__version__} (4 runs)" in markdown
    trained_on = {row["trained_on"] for row in rows}
    assert trained_on == {f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"}
    assert f"- Trained on: {trained_on.pop()} (4 runs)" in markdown
    for name in ("metrics", "curves", "filters-fb-learn-cf", "averaging"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"figures/{name}.png" in markdown


def test_interrupted_run_resumes_from_its_checkpoint(finished):
    updates = update_entries(run_dir(finished["out"], *INTERRUPTED))
    assert [entry["update"] for entry in updates] == list(range(1, 9))
    # the updates saved before the interruption (state after update 2) were kept, not redone
    assert updates[:2] == finished["before"][:2]


def test_rerun_skips_finished_runs(finished):
    out = finished["out"]
    stamps = {path: path.stat().st_mtime_ns for path in (out / "runs").glob("*/*.pt")}
    started = time.perf_counter()
    outcomes = run_experiment(tiny_experiment(finished["data"]), out, progress=False, log=lambda _: None)
    assert time.perf_counter() - started < 5
    assert [outcome.status for outcome in outcomes] == ["skipped"] * 4
    assert stamps == {path: path.stat().st_mtime_ns for path in (out / "runs").glob("*/*.pt")}


def test_progress_shows_the_runs_done_of_all(finished, capsys):
    run_experiment(tiny_experiment(finished["data"]), finished["out"], progress=True, log=lambda _: None)
    err = capsys.readouterr().err
    assert "runs: 100%" in err and "4/4" in err


def test_a_run_in_progress_in_another_process_is_left_to_it(finished):
    out = finished["out"]
    holder = hold_in_another_process(run_dir(out, "mel", 1) / LOCK_FILE)  # as another command would
    try:
        outcomes = run_experiment(tiny_experiment(finished["data"]), out, progress=False, log=lambda _: None)
    finally:
        holder.kill()
        holder.communicate()
    assert [(o.frontend, o.seed, o.status) for o in outcomes] == [
        ("mel", 0, "skipped"), ("fb-learn-cf", 0, "skipped"),
        ("mel", 1, "busy"), ("fb-learn-cf", 1, "skipped")]
    assert outcomes[2].message == f"in progress in process {holder.pid} on {os.uname().nodename}"
    status, _ = run_one(tiny_experiment(finished["data"]), "mel", 1, out, progress=False)
    assert status == "skipped"  # released


def test_command_reports_runs_in_progress_elsewhere_and_succeeds(finished, capsys):
    out = finished["out"]
    holder = hold_in_another_process(run_dir(out, "fb-learn-cf", 0) / LOCK_FILE)
    try:
        status = main(["experiment", "--config", str(PAPER), "--data", str(finished["data"]),
                       "--out", str(out), "--profile", "tiny", "--seeds", "2",
                       "--frontends", ",".join(FRONTENDS), "--no-progress"])
    finally:
        holder.kill()
        holder.communicate()
    assert status == 0
    last_line = capsys.readouterr().out.splitlines()[-1]
    assert last_line.endswith("results.md: 3 runs up to date, 1 in progress in other processes")


def test_parallel_workers_give_the_same_runs_as_one_process(finished, tmp_path):
    out = tmp_path / "parallel"
    status = main(["experiment", "--config", str(PAPER), "--data", str(finished["data"]),
                   "--out", str(out), "--profile", "tiny", "--seeds", "2",
                   "--frontends", ",".join(FRONTENDS), "--workers", "2", "--no-progress"])
    assert status == 0
    for frontend in FRONTENDS:
        for seed in (0, 1):
            alone = json.loads((run_dir(finished["out"], frontend, seed) / "evaluation.json").read_text())
            parallel = json.loads((run_dir(out, frontend, seed) / "evaluation.json").read_text())
            assert parallel["valid"] == pytest.approx(alone["valid"], abs=1e-9)


def test_evaluation_is_the_last_model_with_the_validation_threshold(finished):
    """The stored evaluation equals scoring last.pt with the evaluate command's functions."""
    folder = run_dir(finished["out"], "mel", 0)
    stored = json.loads((folder / "evaluation.json").read_text())
    model = load_model(folder / "last.pt")
    valid = mir1k_split(finished["data"]).valid
    predictions = predict(model, valid, valid.clips, False, "validation")
    threshold = choose_threshold([median_smooth(p, 5) for p in predictions.probabilities], predictions.labels)
    report = evaluate_files(predictions.probabilities, predictions.labels, threshold, smoothing=5)
    assert stored["model"] == "last.pt" and stored["updates"] == 8
    assert stored["valid"]["threshold"] == pytest.approx(threshold, abs=1e-6)
    for metric in ("error", "auroc"):
        assert stored["valid"][metric] == pytest.approx(report.pooled[metric], abs=1e-6)


def test_extra_test_set_is_added_to_finished_runs_without_retraining(finished, tmp_path):
    extra = make_tiny_mir1k(tmp_path / "extra", seed=3)
    for path in sorted(extra.rglob("*_*")):  # clips of a singer outside the split: the test split
        path.rename(path.with_name("zed" + path.name[path.name.index("_"):]))
    experiment = tiny_experiment(finished["data"])
    folder = run_dir(finished["out"], "mel", 1)
    status, _ = run_one(experiment, "mel", 1, finished["out"], [ExtraTest("zed", extra)], progress=False)
    stored = json.loads((folder / "evaluation.json").read_text())["extra"]["zed"]
    assert status == "evaluated"
    assert (stored["split"], stored["clips"], stored["failed"]) == ("test", 6, [])
    assert 0.0 <= stored["pooled"]["auroc"] <= 1.0
    assert np.isclose(stored["pooled"]["error"], 1 - stored["pooled"]["accuracy"])


def test_extra_test_set_without_test_clips_fails_before_training(finished, tmp_path):
    experiment = tiny_experiment(finished["data"])
    with pytest.raises(VocalfrontError, match=r"extra test 'own'.*no test clips"):
        run_experiment(experiment, tmp_path / "never", [ExtraTest("own", finished["data"])], progress=False)
    assert not (tmp_path / "never").exists()


def test_a_broken_run_folder_is_reported_as_a_failed_run_not_raised(finished):
    broken = run_dir(finished["out"], "mel", 2)
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    try:
        experiment = load_experiment(PAPER, "tiny", [f"data.root={finished['data']}"], seeds=3,
                                     frontends=["mel"])
        outcomes = run_experiment(experiment, finished["out"], progress=False, log=lambda _: None)
    finally:
        shutil.rmtree(broken)
    assert [(o.seed, o.status) for o in outcomes] == [(0, "skipped"), (1, "skipped"), (2, "failed")]
    assert outcomes[2].message.startswith(f"{broken / 'config.json'}: unreadable run configuration")


def test_run_folder_written_before_a_config_key_existed_is_the_same_run(finished):
    path = run_dir(finished["out"], "mel", 0) / "config.json"
    original = path.read_text()
    older = json.loads(original)
    del older["train"]["scale_lr"]  # a key added later, with its default value
    path.write_text(json.dumps(older))
    try:
        status, _ = run_one(tiny_experiment(finished["data"]), "mel", 0, finished["out"], progress=False)
    finally:
        path.write_text(original)
    assert status == "skipped"


def test_run_folder_of_another_configuration_is_refused(finished):
    experiment = tiny_experiment(finished["data"], "train.lr=0.01")
    with pytest.raises(VocalfrontError, match=r"different config \(train.lr"):
        run_one(experiment, "mel", 0, finished["out"], progress=False)


def write_run_log(run: Path, device: str, *sittings: tuple[str, str]) -> Path:
    """A run folder with ``config.json`` on ``device`` and one ``start`` entry per sitting
    (device name, torch version), each followed by an update."""
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"train": {"device": device}}))
    entries = []
    for update, (name, version) in enumerate(sittings):
        entries += [{"event": "start", "update": update, "device_name": name, "torch": version},
                    {"event": "update", "update": update + 1, "loss": 0.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return run


def test_where_a_run_trained_names_each_distinct_sitting(tmp_path):
    gpu, cpu = ("NVIDIA H200", "2.11.0+cu130"), ("x86_64 CPU, 2 cores", "2.13.0+cpu")
    assert trained_on(write_run_log(tmp_path / "one", "cuda", gpu, gpu)) == "NVIDIA H200, torch 2.11.0+cu130"
    assert trained_on(write_run_log(tmp_path / "two", "cuda", cpu, gpu)) == (
        "x86_64 CPU, 2 cores, torch 2.13.0+cpu + NVIDIA H200, torch 2.11.0+cu130")


def test_a_run_that_recorded_no_sitting_falls_back_to_its_configured_device(tmp_path):
    assert trained_on(write_run_log(tmp_path / "old", "cuda")) == "cuda, device unrecorded"
    (tmp_path / "bare").mkdir()
    assert trained_on(tmp_path / "bare") == "unknown device, device unrecorded"


def test_extra_test_arguments_parse_name_folder_and_format():
    assert parse_extra_test("jamendo=/data/jamendo:jamendo") == ExtraTest("jamendo", Path("/data/jamendo"),
                                                                         "jamendo")
    assert parse_extra_test("songs=/data/a:b") == ExtraTest("songs", Path("/data/a:b"))
    with pytest.raises(VocalfrontError, match="NAME=DIR"):
        parse_extra_test("/data/jamendo")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"profile": "huge"}, "no profile 'huge'"),
    ({"frontends": ["mel", "cqt"]}, "unknown or no front-ends"),
    ({"seeds": 0}, "number of seeds"),
    ({"seeds": 10**9}, "number of seeds must be a whole number from 1 to 1000, got 1000000000"),
    ({"overrides": ["train.updates=0"]}, "updates must be from 1 to"),
])
def test_experiment_file_problems_are_one_line_errors(arguments, message):
    with pytest.raises(VocalfrontError, match=message):
        load_experiment(PAPER, **arguments)


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe", "invalid TOML"), (b"x = \n", "invalid TOML"), (b"\0" * (2 << 20), "larger than 1024 KiB"),
])
def test_an_unreadable_experiment_file_is_a_one_line_error_naming_it(tmp_path, content, problem):
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(VocalfrontError, match=f"bad.toml: {problem}"):
        load_experiment(path)


def test_an_experiment_file_that_is_a_device_is_refused_without_reading_it():
    with pytest.raises(VocalfrontError, match="/dev/zero: not a regular file"):
        load_experiment("/dev/zero")


def test_zero_workers_is_a_one_line_error(tmp_path, capsys):
    status = main(["experiment", "--config", str(PAPER), "--out", str(tmp_path), "--workers", "0"])
    assert status != 0
    assert "--workers 0: must be a whole number from 1 to " in capsys.readouterr().err


def test_profiles_share_everything_but_the_budget_and_frontend_options_apply_by_pattern():
    quick, full = (load_experiment(PAPER, name) for name in ("quick", "full"))
    assert quick.frontends == full.frontends == (
        "mel", "fb", "fb-noavg", "fb-learn-cf", "fb-learn-avg", "fb-learn-bw", "fb-free")
    assert len(full.seeds) >= 3
    mel, fb = full.training_config("mel", 2), full.training_config("fb-free", 2)
    assert (mel.train.seed, mel.model.frontend_options) == (2, {"convention": "schlueter", "power": 2.0})
    assert fb.model.frontend_options == {"block_frames": 256}
    assert mel.train == fb.train and mel.data == fb.data
    assert quick.training_config("fb", 0).train.updates < full.training_config("fb", 0).train.updates
