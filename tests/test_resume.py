"""Exact resume: an interrupted or killed training run, rerun, ends with the same weights."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_training import TINY, keep_thread_count, make_tiny_mir1k, tiny_config  # noqa: F401 (autouse)

from vocalfront.training import train
from vocalfront.training.checkpoint import StateFileError, list_states, read_state

UPDATES = ("train.updates=16",)
"""The runs of this file: 16 updates, validation every 4, a checkpoint every 2 (tiny.toml)."""


class Interrupted(Exception):
    """Raised from a callback to stop a run, as a crash would."""


def stop_at(update: int):
    def callback(done: int) -> None:
        if done == update:
            raise Interrupted
    return callback


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_mir1k(tmp_path_factory.mktemp("mir1k"))


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> Path:
    """An uninterrupted run."""
    run = tmp_path_factory.mktemp("reference")
    threads = torch.get_num_threads()
    train(tiny_config(tiny_data, *UPDATES), run, progress=False)
    torch.set_num_threads(threads)
    return run


def assert_same_training(run: Path, reference: Path) -> None:
    """Same final weights, optimiser state, sampler position and logs (up to wall-clock times and
    the record of each sitting: two here, the second from where the first stopped)."""
    final, expected = read_state(list_states(run)[0]), read_state(list_states(reference)[0])
    assert final["update"] == expected["update"] == 16
    for name, tensor in expected["model"].items():
        assert torch.equal(final["model"][name], tensor), name
    for index, slots in expected["optimizer"]["state"].items():
        for key, value in slots.items():
            assert torch.equal(final["optimizer"]["state"][index][key], value), (index, key)
    assert final["sampler"] == expected["sampler"]
    model, model_expected = (torch.load(path / "model.pt", weights_only=True) for path in (run, reference))
    for name, tensor in model_expected["state_dict"].items():
        assert torch.equal(model["state_dict"][name], tensor), name
    settings = ("threshold", "median_filter", "min_duration", "min_gap", "peak_threshold",
                "valid_final_error", "update")
    assert ({key: model["extra"][key] for key in settings}
            == {key: model_expected["extra"][key] for key in settings})  # however it resumed

    def records(path: Path) -> list[dict]:
        lines = (path / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]

    def sittings(path: Path) -> list[int]:
        return [record["update"] for record in records(path) if record["event"] == "start"]

    def training(path: Path) -> list[dict]:
        return [record for record in records(path) if record["event"] != "start"]

    assert training(run) == training(reference)
    assert sittings(reference) == [0] and len(sittings(run)) == 2 and 0 == sittings(run)[0] < sittings(run)[1]
    csv_rows = [[line.split(",")[:-1] for line in (path / "metrics.csv").read_text().splitlines()]
                for path in (run, reference)]
    assert csv_rows[0] == csv_rows[1]


def test_a_run_stopped_by_an_exception_resumes_to_the_same_weights(tiny_data, reference, tmp_path):
    config = tiny_config(tiny_data, *UPDATES)
    with pytest.raises(Interrupted):
        train(config, tmp_path, progress=False, callback=stop_at(7))
    assert [p.name for p in list_states(tmp_path)] == ["state-00000006.pt", "state-00000004.pt"]
    result = train(config, tmp_path, progress=False)
    assert result.updates == 16
    assert_same_training(tmp_path, reference)


OLD_LAYOUT = {".lock", "config.json", "metrics.jsonl", "metrics.csv", "best.pt", "last.pt",
              "state-00000004.pt", "state-00000006.pt"}
"""An interrupted run folder as vocalfront 0.3.0 wrote it (before :mod:`vocalfront.training.runfolder`),
spelled out here so that a change of layout fails this file's test."""
OLD_CSV_HEADER = "epoch,update,train_loss,valid_error,valid_f_measure,valid_auroc,threshold,time"


def test_a_run_folder_in_the_earlier_layout_resumes_to_the_same_weights(tiny_data, reference, tmp_path):
    config = tiny_config(tiny_data, *UPDATES)
    with pytest.raises(Interrupted):
        train(config, tmp_path, progress=False, callback=stop_at(7))
    assert {path.name for path in tmp_path.iterdir()} == OLD_LAYOUT
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == OLD_CSV_HEADER
    # written by a version without train.scale_lr (a key added later, with its default value)
    stored = json.loads((tmp_path / "config.json").read_text())
    del stored["train"]["scale_lr"]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    for path in list_states(tmp_path):
        state = read_state(path)
        del state["config"]["train"]["scale_lr"]
        torch.save(state, path)
    train(config, tmp_path, progress=False)
    assert_same_training(tmp_path, reference)


def test_a_damaged_latest_checkpoint_is_skipped_with_a_warning(tiny_data, reference, tmp_path):
    config = tiny_config(tiny_data, *UPDATES)
    with pytest.raises(Interrupted):
        train(config, tmp_path, progress=False, callback=stop_at(11))
    newest = list_states(tmp_path)[0]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(UserWarning, match=r"state-00000010.pt: damaged training state.*previous"):
        train(config, tmp_path, progress=False)
    assert_same_training(tmp_path, reference)


def test_no_readable_checkpoint_is_an_error_not_a_silent_restart(tiny_data, tmp_path):
    config = tiny_config(tiny_data, *UPDATES)
    with pytest.raises(Interrupted):
        train(config, tmp_path, progress=False, callback=stop_at(5))
    for path in list_states(tmp_path):
        path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning), pytest.raises(StateFileError, match=r"state-00000004\.pt"):
        train(config, tmp_path, progress=False)


def test_a_finished_run_continues_when_given_more_updates(tiny_data, reference, tmp_path):
    train(tiny_config(tiny_data, "train.updates=8"), tmp_path, progress=False)
    train(tiny_config(tiny_data, *UPDATES), tmp_path, progress=False)
    assert_same_training(tmp_path, reference)


def test_a_run_may_resume_in_another_precision(tiny_data, reference, tmp_path):
    train(tiny_config(tiny_data, "train.updates=8"), tmp_path, progress=False)
    result = train(tiny_config(tiny_data, *UPDATES, "train.bf16=true"), tmp_path, progress=False)
    assert result.updates == 16
    assert json.loads((tmp_path / "config.json").read_text())["train"]["bf16"] is True
    final, float32 = (read_state(list_states(path)[0])["model"] for path in (tmp_path, reference))
    differ = [name for name, tensor in float32.items() if not torch.equal(final[name], tensor)]
    assert differ  # the last 8 updates did run in bf16


def test_a_killed_training_process_resumes_to_the_same_weights(tiny_data, reference, tmp_path):
    command = [sys.executable, "-m", "vocalfront", "train", "--config", str(TINY), "--out",
               str(tmp_path), f"data.root={tiny_data}", *UPDATES, "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 120
    while not list_states(tmp_path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.3))  # a random moment after the first checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    process.stderr.close()
    train(tiny_config(tiny_data, *UPDATES), tmp_path, progress=False)
    assert_same_training(tmp_path, reference)


def test_example_worker_threads_train_as_one_and_may_change_on_resume(tiny_data, tmp_path):
    one_thread, threads = tmp_path / "one", tmp_path / "threads"
    train(tiny_config(tiny_data, *UPDATES, "train.sampling=global"), one_thread, progress=False)
    with pytest.raises(Interrupted):
        train(tiny_config(tiny_data, *UPDATES, "train.sampling=global", "train.example_workers=3"),
              threads, progress=False, callback=stop_at(7))
    train(tiny_config(tiny_data, *UPDATES, "train.sampling=global", "train.example_workers=2"), threads,
          progress=False)
    assert_same_training(threads, one_thread)
