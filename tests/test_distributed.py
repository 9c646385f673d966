"""Training on several processes: environment, sharded sampling, and real 2-process CPU runs.

The runs start two processes as torchrun would (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT`` on loopback), each running ``vocalfront train``; they come from
a fork server that has imported torch once, and are killed after :data:`TIMEOUT` seconds, so a
hung process group fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_resume import assert_same_training
from test_training import TINY, keep_thread_count, make_tiny_mir1k, ramp_clip, tiny_config  # noqa: F401

from vocalfront.cli import main
from vocalfront.data.augment import AugmentConfig
from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID as GRID
from vocalfront.training import (
    ExampleLayout,
    TrainConfig,
    build_model,
    load_config,
    make_optimizer,
    prepare_run,
    train,
)
from vocalfront.training.checkpoint import list_states, read_state, save_state
from vocalfront.training.distributed import (
    SINGLE,
    DistributedEnv,
    environment,
    rank_seed,
    training_device,
)
from vocalfront.training.sampler import ShardedSampler, make_sampler

TIMEOUT = 120.0
"""Seconds a 2-process run may take before its processes are killed."""
LEARNABLE = ("model.dropout=0", "model.batch_norm=false", "data.augment_enabled=false",
             "data.remix_enabled=false", "train.sampling=global", "train.updates=30",
             "train.updates_per_epoch=15", "train.checkpoint_every=15")
"""A run whose result does not depend on how a global batch is split: no dropout, no batch norm
(statistics per process), global sampling; without remixing and augmentation the tiny task is
learnt within 30 updates."""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_mir1k(tmp_path_factory.mktemp("mir1k"))


# ----------------------------------------------------------------------------- launching
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _process(rank: int, world_size: int, port: int, argv: list[str], log: str) -> None:
    """One process of a run, as torchrun starts it: the environment, then ``vocalfront ...``."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    with open(log, "w") as handle, contextlib.redirect_stdout(handle), \
            contextlib.redirect_stderr(handle):
        try:
            code = main(argv)
        except BaseException as error:  # reported through the log and the exit code
            print(f"{type(error).__name__}: {error}", file=sys.stderr)
            code = 1
    sys.exit(code)


def launch(argv: list[str], logs: Path, world_size: int = 2) -> list[int]:
    """Run ``vocalfront argv`` in ``world_size`` processes; their exit codes (logs in ``logs``)."""
    context = multiprocessing.get_context("forkserver")
    # torch._dynamo: imported by the first optimiser, seconds per process otherwise
    context.set_forkserver_preload(["torch._dynamo", "vocalfront.training", "test_distributed"])
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    processes = [context.Process(target=_process, args=(rank, world_size, port, argv,
                                                        str(logs / f"rank{rank}.log")), daemon=True)
                 for rank in range(world_size)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + TIMEOUT
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0.0))
    hung = [process for process in processes if process.is_alive()]
    for process in hung:
        process.kill()
        process.join()
    assert not hung, f"processes hung:\n{read_logs(logs)}"
    return [process.exitcode for process in processes]


def read_logs(logs: Path) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()}" for path in sorted(logs.glob("*.log")))


def train_on_two(data: Path, out: Path, *overrides: str) -> None:
    """``vocalfront train`` of ``configs/tiny.toml`` on two processes; both must succeed."""
    argv = ["train", "--config", str(TINY), "--out", str(out), f"data.root={data}", *overrides,
            "--threads", "1"]
    codes = launch(argv, out.parent / f"{out.name}-logs")
    assert codes == [0, 0], read_logs(out.parent / f"{out.name}-logs")


def update_losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [record["loss"] for record in records if record["event"] == "update"]


# ----------------------------------------------------------------------------- two-process runs
def test_two_processes_train_as_one_process_with_their_global_batch(tiny_data, tmp_path):
    train_on_two(tiny_data, tmp_path / "two", *LEARNABLE, "train.batch_size=4")
    train(tiny_config(tiny_data, *LEARNABLE, "train.batch_size=8"), tmp_path / "one", progress=False)
    two, one = (read_state(list_states(tmp_path / name)[0]) for name in ("two", "one"))
    assert two["update"] == one["update"] == 30 and two["world_size"] == 2
    assert two["parameters"][0] == two["parameters"][1]  # both replicas bitwise equal
    assert two["sampler"] == two["rank_states"][0]["sampler"] == one["sampler"] == {"examples_drawn": 240}
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    losses = update_losses(tmp_path / "two")  # the mean over both processes' examples
    np.testing.assert_allclose(losses, update_losses(tmp_path / "one"), rtol=1e-5)
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])  # it learns


@pytest.fixture(scope="module")
def two_process_run(tiny_data, tmp_path_factory) -> Path:
    """An uninterrupted 2-process run of tiny.toml (dropout, batch norm, per-process streams)."""
    run = tmp_path_factory.mktemp("distributed") / "run"
    train_on_two(tiny_data, run, "train.updates=16")
    return run


def test_a_resumed_two_process_run_ends_as_an_uninterrupted_one(tiny_data, two_process_run, tmp_path):
    train_on_two(tiny_data, tmp_path / "run", "train.updates=8")
    train_on_two(tiny_data, tmp_path / "run", "train.updates=16")
    assert_same_training(tmp_path / "run", two_process_run)  # 16 updates
    final, expected = (read_state(list_states(path)[0]) for path in (tmp_path / "run", two_process_run))
    assert final["rank_states"][0]["sampler"] == expected["rank_states"][0]["sampler"]
    assert final["rank_states"][0]["sampler"] != final["sampler"]  # disjoint example streams
    assert final["parameters"] == expected["parameters"]


def test_a_single_process_run_goes_on_with_two_processes_with_a_warning(tiny_data, tmp_path):
    train(tiny_config(tiny_data, "train.updates=8"), tmp_path / "run", progress=False)
    train_on_two(tiny_data, tmp_path / "run", "train.updates=16")
    assert "resuming a run of 1 process(es) with 2" in (tmp_path / "run-logs" / "rank0.log").read_text()
    final = read_state(list_states(tmp_path / "run")[0])
    assert final["world_size"] == 2 and final["parameters"][0] == final["parameters"][1]
    assert final["rank_states"][0]["sampler"]["examples_drawn"] == 8 * 4  # joined after update 8
    assert [record["update"] for record in map(json.loads, (tmp_path / "run" / "metrics.jsonl").open())
            if record["event"] == "update"] == list(range(1, 17))


def test_all_processes_stop_with_one_line_when_the_run_folder_holds_another_config(
        tiny_data, two_process_run, tmp_path):
    argv = ["train", "--config", str(TINY), "--out", str(two_process_run), f"data.root={tiny_data}",
            "train.updates=16", "train.lr=0.01"]
    assert launch(argv, tmp_path / "logs") == [2, 2]
    main_log, other_log = ((tmp_path / "logs" / f"rank{rank}.log").read_text() for rank in (0, 1))
    assert "different config (train.lr differ)" in main_log and main_log.count("\n") == 1
    assert "process 0 failed" in other_log and "train.lr differ" in other_log


# ----------------------------------------------------------------------------- environment
def test_the_environment_gives_rank_and_world_size_and_defaults_to_one_process():
    assert environment({}) == SINGLE and not SINGLE.enabled and SINGLE.is_main
    assert environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == DistributedEnv(3, 1, 4)
    assert environment({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) == SINGLE


@pytest.mark.parametrize(("variables", "message"), [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not an integer"),
    ({"WORLD_SIZE": "2"}, "RANK is not"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK=2, LOCAL_RANK=0 do not fit WORLD_SIZE=2"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE must be >= 1"),
])
def test_a_malformed_environment_is_a_one_line_error(variables, message):
    with pytest.raises(VocalfrontError, match=message):
        environment(variables)


def test_devices_are_checked_before_training():
    assert training_device("cpu", DistributedEnv(1, 1, 2)) == torch.device("cpu")
    with pytest.raises(VocalfrontError, match=r"use train\.device=cuda"):
        training_device("cuda:0", DistributedEnv(1, 1, 2))
    if not torch.cuda.is_available():
        with pytest.raises(VocalfrontError, match="no CUDA GPU available"):
            training_device("cuda")
    with pytest.raises(VocalfrontError, match="device must be 'cpu', 'cuda' or 'cuda:N'"):
        load_config(TINY, ["train.device=gpu"])


def test_process_seeds_are_the_single_process_seed_for_process_0_and_distinct_otherwise():
    assert rank_seed(7, 0) == 7
    seeds = {rank_seed(7, rank) for rank in range(1, 5)} | {rank_seed(7, 1, 100), rank_seed(8, 1)}
    assert len(seeds) == 6 and 7 not in seeds


# ----------------------------------------------------------------------------- sampling
def test_worker_threads_make_the_same_examples_as_one_thread():
    clips = [ramp_clip(2.0, "a"), ramp_clip(0.6, "b")]
    layout = ExampleLayout(context=25, labelled=3, margin=2)
    augment = AugmentConfig(speed_range=(0.8, 1.2))
    one, three = (ShardedSampler(clips, GRID, layout, (5, 3), augment_config=augment, workers=workers)
                  for workers in (1, 3))
    makers: set[str] = set()
    draw = three.draw
    three.draw = lambda rng: (makers.add(threading.current_thread().name), draw(rng))[1]
    for size in (5, 2):
        for mine, theirs in zip(three.sample(size), one.sample(size), strict=True):
            np.testing.assert_array_equal(mine, theirs)
    assert three.state_dict() == one.state_dict() == {"examples_drawn": 7}
    assert makers and all(name.startswith("vocalfront-example") for name in makers)
    three.close()


def test_sharded_samplers_together_make_the_single_process_global_batches():
    clips = [ramp_clip(2.0, "a"), ramp_clip(0.6, "b")]
    layout = ExampleLayout(context=25, labelled=3, margin=2)
    augment = AugmentConfig(speed_range=(0.8, 1.2))

    def sampler(rank: int, world_size: int) -> ShardedSampler:
        return ShardedSampler(clips, GRID, layout, (5, 3), rank, world_size, augment_config=augment)

    single, shards = sampler(0, 1), [sampler(rank, 3) for rank in range(3)]
    for _ in range(2):
        whole = single.sample(6)
        parts = [shard.sample(2) for shard in shards]
        for field, part_fields in zip(whole, zip(*parts, strict=True), strict=True):
            interleaved = np.stack(part_fields, axis=1).reshape(field.shape)  # rank r: r, r + 3
            np.testing.assert_array_equal(interleaved, field)
    assert {shard.state_dict()["examples_drawn"] for shard in shards} == {12}
    restored = sampler(1, 3)
    restored.load_state_dict(shards[0].state_dict())
    np.testing.assert_array_equal(restored.sample(2).audio, shards[1].sample(2).audio)


def test_per_process_streams_keep_process_0_on_the_single_process_stream(tiny_data):
    config = tiny_config(tiny_data, "data.remix_enabled=false")
    clips = [ramp_clip(2.0, "a"), ramp_clip(1.0, "b")]
    detector = build_model(config.model)
    single = make_sampler(clips, detector, config, None).sample(3)
    first = make_sampler(clips, detector, config, None, DistributedEnv(0, 0, 2)).sample(3)
    second = make_sampler(clips, detector, config, None, DistributedEnv(1, 1, 2)).sample(3)
    np.testing.assert_array_equal(first.audio, single.audio)
    assert not np.array_equal(second.audio, single.audio)


# ----------------------------------------------------------------------------- configuration
def test_the_learning_rate_is_scaled_only_when_asked():
    detector = build_model(load_config(TINY).model)
    assert make_optimizer(detector, TrainConfig(lr=1e-3), 4).param_groups[0]["lr"] == 1e-3
    scaled = make_optimizer(detector, TrainConfig(lr=1e-3, scale_lr=True), 4)
    assert scaled.param_groups[0]["lr"] == pytest.approx(4e-3)


def test_a_checkpoint_from_before_the_distributed_settings_still_resumes(tiny_data, tmp_path):
    config = tiny_config(tiny_data, "train.updates=2")
    train(config, tmp_path, progress=False)
    path = list_states(tmp_path)[0]
    state = read_state(path)
    for key in ("device", "sampling", "scale_lr"):
        del state["config"]["train"][key]
    path.unlink()
    save_state(tmp_path, state.pop("update"), {k: v for k, v in state.items()
                                               if k not in ("format", "version")})
    assert prepare_run(config, tmp_path)["update"] == 2
    assert prepare_run(tiny_config(tiny_data, "train.updates=2", "train.device=cuda"), tmp_path)
    with pytest.raises(VocalfrontError, match=r"train\.sampling differ"):
        prepare_run(tiny_config(tiny_data, "train.updates=2", "train.sampling=global"), tmp_path)
