"""Training on several processes (data parallelism), as launched by ``torchrun``.

``torchrun`` starts the same command once per process and tells each its place through
environment variables: ``WORLD_SIZE`` (processes in all), ``RANK`` (this one's number,
``0 .. WORLD_SIZE - 1``), ``LOCAL_RANK`` (its number on its machine) and ``MASTER_ADDR`` /
``MASTER_PORT`` (where process 0 listens). :func:`environment` reads them; without them, or with
``WORLD_SIZE=1``, training is the plain single-process loop and nothing here does anything.

With several processes every process holds a replica of the detector, draws its own share of
each batch, and :class:`~torch.nn.parallel.DistributedDataParallel` averages the gradients, so
all replicas make the same updates (:func:`parameter_digest` checks that at every checkpoint).
Process 0 alone writes the run folder - configuration, logs, checkpoints, validation, models;
:func:`run_on_main` runs such a step there and hands its result (or its error) to all.

The process group uses gloo on the CPU and NCCL on CUDA devices, with a :data:`TIMEOUT` long
enough for process 0's validation, during which the others wait.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .. import __version__
from ..errors import VocalfrontError

TIMEOUT = timedelta(hours=1)
"""How long a process waits for the others in a collective operation before giving up."""
RANK_STREAM = 4
"""Sub-stream of ``train.seed`` for the generators of processes other than 0."""

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedEnv:
    """This process's place: ``rank`` among ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        """Whether there are several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is process 0, the one that writes the run folder."""
        return self.rank == 0


SINGLE = DistributedEnv()
"""The environment of a single process."""


def environment(environ: Mapping[str, str] | None = None) -> DistributedEnv:
    """This process's place from ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (default: ``os.environ``).

    No ``WORLD_SIZE`` means one process; with ``WORLD_SIZE`` > 1, ``RANK`` must be set too
    (``LOCAL_RANK`` defaults to 0). Malformed values are a one-line :class:`VocalfrontError`.
    """
    environ = os.environ if environ is None else environ
    world_size = _int_variable(environ, "WORLD_SIZE", 1)
    if world_size < 1:
        raise VocalfrontError(f"environment variable WORLD_SIZE must be >= 1, got {world_size}")
    if world_size > 1 and "RANK" not in environ:
        raise VocalfrontError("WORLD_SIZE is set but RANK is not; start training with torchrun")
    rank, local_rank = _int_variable(environ, "RANK", 0), _int_variable(environ, "LOCAL_RANK", 0)
    if not (0 <= rank < world_size and local_rank >= 0):
        raise VocalfrontError(f"environment variables RANK={rank}, LOCAL_RANK={local_rank} do not "
                              f"fit WORLD_SIZE={world_size}")
    return DistributedEnv(rank, local_rank, world_size)


def _int_variable(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "")
    if not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise VocalfrontError(f"environment variable {name}={text!r} is not an integer") from None


def training_device(name: str, env: DistributedEnv = SINGLE) -> torch.device:
    """The device of ``train.device`` for this process: ``cpu``; ``cuda`` is GPU ``LOCAL_RANK``
    (GPU 0 for a single process); ``cuda:N`` (single process only) GPU ``N``."""
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and env.enabled:
        raise VocalfrontError(f"train.device={name} puts every process on one GPU; use "
                              "train.device=cuda (each process takes GPU LOCAL_RANK)")
    if not torch.cuda.is_available():
        raise VocalfrontError(f"train.device={name}: no CUDA GPU available to this torch "
                              f"({torch.__version__})")
    device = torch.device("cuda", env.local_rank) if name == "cuda" else torch.device(name)
    if device.index >= torch.cuda.device_count():
        raise VocalfrontError(f"train.device={name}: GPU {device.index} requested, "
                              f"{torch.cuda.device_count()} visible")
    return device


@contextlib.contextmanager
def process_group(env: DistributedEnv, device: torch.device) -> Iterator[None]:
    """Join the process group of ``env`` for the block (gloo on the CPU, NCCL on CUDA), then
    leave it. Nothing happens for a single process or when a group exists already."""
    if not env.enabled or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=env.rank,
                            world_size=env.world_size, timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int, *extra: int) -> int:
    """Seed of process ``rank``'s generators: ``seed`` itself for process 0 (as in a
    single-process run), else one derived from ``(seed, rank, *extra)``."""
    if rank == 0 and not extra:
        return seed
    return int(np.random.SeedSequence((seed, RANK_STREAM, rank, *extra)).generate_state(1)[0])


def data_parallel(module: nn.Module, env: DistributedEnv, device: torch.device) -> nn.Module:
    """``module`` wrapped in :class:`DistributedDataParallel` (unchanged for one process).

    Buffers (batch-norm running statistics) are not broadcast: each process keeps its own, and
    process 0's are the ones validated and saved, as they would be with broadcasting.
    """
    if not env.enabled:
        return module
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)


def global_mean(total: torch.Tensor, weight: torch.Tensor,
                env: DistributedEnv) -> tuple[torch.Tensor, float]:
    """The mean ``Σ total / Σ weight`` over all processes: this process's term to back-propagate,
    and the mean's value.

    :class:`DistributedDataParallel` averages gradients over the ``W`` processes, so process
    ``r`` back-propagates ``W * total_r / Σ weight``, which gives every process the gradient of
    the global mean - whatever the processes' shares of ``weight``.
    """
    if not env.enabled:
        loss = total / weight.clamp_min(1.0)
        return loss, float(loss.detach())
    sums = torch.stack([total.detach(), weight.to(total.dtype)])
    dist.all_reduce(sums)
    denominator = sums[1].clamp_min(1.0)
    return total * (env.world_size / denominator), float(sums[0] / denominator)


def broadcast_tensors(tensors: Sequence[torch.Tensor], env: DistributedEnv) -> None:
    """Overwrite ``tensors`` in every process with process 0's."""
    if env.enabled:
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def run_on_main(function: Callable[[], T], env: DistributedEnv) -> T:
    """``function()`` in process 0 only; every process returns its result.

    A :class:`VocalfrontError` or :class:`OSError` there is raised in process 0 and, as a
    :class:`VocalfrontError` with the same message, in every other process, so that all stop.
    """
    if not env.enabled:
        return function()
    outcome: list[Any] = [None]
    failure: Exception | None = None
    if env.is_main:
        try:
            outcome[0] = (True, function())
        except (VocalfrontError, OSError) as error:
            failure, outcome[0] = error, (False, str(error))
    dist.broadcast_object_list(outcome, src=0)
    if failure is not None:
        raise failure
    succeeded, value = outcome[0]
    if not succeeded:
        raise VocalfrontError(f"process 0 failed: {value}")
    return value


def gather_to_main(value: T, env: DistributedEnv) -> list[T]:
    """Every process's ``value``, in rank order, in process 0; an empty list in the others."""
    if not env.enabled:
        return [value]
    gathered: list[Any] = [None] * env.world_size if env.is_main else []
    dist.gather_object(value, gathered if env.is_main else None, dst=0)
    return gathered


def parameter_digest(module: nn.Module) -> str:
    """SHA-256 of ``module``'s parameter names and values (bytes): equal exactly when the
    parameters are bitwise equal. Buffers are left out."""
    digest = hashlib.sha256()
    for name, parameter in module.named_parameters():
        digest.update(name.encode())
        digest.update(parameter.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def training_environment(device: torch.device) -> dict[str, Any]:
    """Where a sitting of a run trains: ``device`` (``cpu``, ``cuda:N``), ``device_name`` (the
    GPU's name, or the CPU's architecture and core count), torch ``threads`` and the ``torch``
    and ``vocalfront`` versions."""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()} CPU, {os.cpu_count()} cores")
    return {"device": str(device), "device_name": name, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "vocalfront": __version__}
