"""Training a :class:`~vocalfront.model.Detector`: sampling, loss, validation, logs, checkpoints.

:func:`train` runs a whole configuration in a run folder::

    config.json        the resolved configuration
    metrics.jsonl      one JSON object per sitting (``event: "start"``: where it trains,
                       :func:`training_environment`), per update (``event: "update"``:
                       update, loss, lr, time) and per epoch (``event: "validation"``: pooled
                       validation metrics, threshold, mean training loss, the learnable
                       front-end parameters and how far they moved from their initial values)
    metrics.csv        one row per epoch: the validation summary
    state-<n>.pt       full training state after ``n`` updates (the newest two are kept)
    best.pt, last.pt   detectors (:func:`~vocalfront.detector_file.save_detector`) of the best epoch by
                       validation error and of the latest one
    model.pt           the final model: the best epoch's detector

Detector files carry ``extra`` entries ``threshold`` (chosen on the validation set, applied to
median-smoothed probabilities), ``median_filter`` (frames), ``update``, ``epoch``, ``valid``
(pooled validation metrics) and ``config`` (the training configuration).

Repeatability: everything random is seeded from ``train.seed``, and the state saved every
``train.checkpoint_every`` updates (and after each validation) holds the model, the optimiser,
the example sampler's generator, Python's, NumPy's and torch's generator states, the counters and
the length of the metric logs. Rerunning an interrupted command resumes from it - truncating
the logs to what that state had written - and ends with the same weights, bit for bit on the
CPU with the same number of threads, as an uninterrupted run.

Several processes (``torchrun``, see :mod:`.distributed` and ``docs/distributed.md``): every
process trains a replica on its share of each global batch of ``batch_size * processes``
examples (``train.sampling``), gradients are averaged, and process 0 alone writes the run
folder and validates. A state file then also holds, under ``rank_states``, the sampler and
generator states of processes 1, 2, ... (gathered by process 0), ``world_size``, and
``parameters``, a digest of each process's parameters (they must agree). All processes resume
from the state process 0 reads; with the same number of processes the run goes on bit for bit
as it would have. Training on a GPU (``train.device``) moves the model and batches there;
validation and the saved detectors use a copy on the CPU.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import json
import math
import os
import platform
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .. import __version__
from ..data.production import ImpulseResponses
from ..data.remix import InstrumentalPool, RemixConfig
from ..detector_file import load_detector_file, save_detector
from ..errors import VocalfrontError
from ..fileio import json_safe, process_lock, write_text_atomic
from ..frontends import BandNorm, FilterBank, inspection
from ..grid import DEFAULT_GRID
from ..inference import compute_features
from ..model import Detector, build_detector
from . import distributed
from .checkpoint import list_states, load_latest_state, restore_rng_states, rng_states, save_state
from .config import Config, ModelConfig, TrainConfig, config_from_dict, config_to_dict
from .distributed import SINGLE, DistributedEnv
from .sampler import Batch, ExampleLayout, ExampleSampler, ShardedSampler, TrainingClip, load_clips
from .sources import instrumental_pool, open_sources
from .validation import calibrated_record, heldout_clips, validate

RESUME_FREE_KEYS = frozenset({"data.cache_dir", "train.device", "train.num_threads", "train.updates"})
"""Settings that may change when a run is resumed (they do not change what was trained so far;
a different thread count only breaks bitwise equality with an uninterrupted run)."""
RUN_FILES = ("config.json", "metrics.jsonl", "metrics.csv", "best.pt", "last.pt", "model.pt")
"""Files of a run besides the state files (removed when a run starts over)."""
LOCK_FILE = ".lock"
"""Held (``flock``, :func:`~vocalfront.fileio.process_lock`) by the process that trains in a run
folder, and by an experiment bringing the run up to date."""
CSV_COLUMNS = ("epoch", "update", "train_loss", "valid_error", "valid_f_measure", "valid_auroc",
               "threshold", "time")
SAMPLER_STREAM, NORM_STREAM, GLOBAL_SAMPLER_STREAM = 1, 2, 3
"""Sub-streams of ``train.seed`` for example sampling (``train.sampling = "rank"``), for picking
the normalisation clips and for ``train.sampling = "global"``."""

Callback = Callable[[int], None]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced: the run folder, the final model and the best validation."""

    run_dir: Path
    model_path: Path
    updates: int
    best_update: int
    best_error: float
    skipped: tuple[str, ...] = ()


def build_model(config: ModelConfig) -> Detector:
    """An untrained detector (BandNorm not fitted) from the ``[model]`` section.

    Its front-end must use the common frame grid (:data:`~vocalfront.grid.DEFAULT_GRID`): the
    readers, labels, sampler and scorers of a run are built on it, so a front-end option that
    moves the grid (``hop``, ``window``, ``sample_rate``) is refused here, before any audio is
    decoded, instead of silently misaligning labels and audio.
    """
    detector = build_detector({
        "frontend": {"name": config.frontend, **config.frontend_options},
        "compression": {"name": config.compression, **config.compression_options},
        "cnn": {"context": config.context, "batch_norm": config.batch_norm, "dropout": config.dropout}})
    if detector.grid != DEFAULT_GRID:
        grid, default = detector.grid, DEFAULT_GRID
        raise VocalfrontError(
            f"model.frontend_options give frames of {grid.window} samples every {grid.hop} at "
            f"{grid.sample_rate} Hz; training reads labels on the common grid ({default.window} "
            f"every {default.hop} at {default.sample_rate} Hz), so only that grid is supported")
    return detector


def lr_factor(config: TrainConfig, update: int) -> float:
    """The learning rate of update ``update`` (counted from 0) as a fraction of ``lr``:
    1 (``constant``), or a linear warm-up over ``warmup_updates`` followed by a cosine decay
    from 1 to ``final_lr_fraction`` at ``updates`` (``cosine``)."""
    if config.lr_schedule == "constant":
        return 1.0
    if update < config.warmup_updates:
        return (update + 1) / config.warmup_updates
    span = max(config.updates - config.warmup_updates, 1)
    progress = min((update - config.warmup_updates) / span, 1.0)
    final = config.final_lr_fraction
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_sampler(clips: list[TrainingClip], detector: Detector, config: Config,
                 pool: InstrumentalPool | None, env: DistributedEnv = SINGLE,
                 restart: int | None = None,
                 plates: ImpulseResponses | None = None) -> ExampleSampler | ShardedSampler:
    """Process ``env.rank``'s example sampler, seeded from ``train.seed`` (see ``train.sampling``).

    ``rank`` sampling: a generator seeded by ``(seed, stream)`` in process 0 (as in a single
    process) and ``(seed, stream, rank)`` in process ``rank``; ``restart`` (an update count)
    gives a process that joins a resumed run a stream distinct from all earlier ones.
    """
    data, train_config = config.data, config.train
    remix_config = _without_music(data.remix, pool) if data.remix_enabled else None
    layout = ExampleLayout(detector.context, train_config.labelled_frames, train_config.margin_frames)
    augment_config = data.augment if data.augment_enabled else None
    options = {"solo_remix": _without_music(data.solo_remix, pool), "voice_effects": data.voice_effects,
               "plates": plates, "source_weights": data.source_weights or None}
    if train_config.sampling == "global":
        return ShardedSampler(clips, detector.grid, layout, (train_config.seed, GLOBAL_SAMPLER_STREAM),
                              env.rank, env.world_size, remix_config, pool, augment_config, **options)
    key = [train_config.seed, SAMPLER_STREAM] + ([env.rank] if env.rank else [])
    key += [] if restart is None else [restart]
    return ExampleSampler(clips, detector.grid, layout, np.random.default_rng(key), remix_config,
                          pool, augment_config, **options)


def _without_music(config: RemixConfig, pool: InstrumentalPool | None) -> RemixConfig:
    """``config``, with the modes that need music off (and a warning) when there is no pool."""
    if pool is not None or not config.needs_music:
        return config
    warnings.warn("data.instrumental is not set: remix modes 'external' and 'instrumental' are off",
                  stacklevel=3)
    return dataclasses.replace(config, external=0.0, instrumental=0.0)


def fit_norm(detector: Detector, clips: list[TrainingClip], max_clips: int, seed: int) -> None:
    """Fit the detector's per-band normalisation on un-augmented training mixtures.

    Uses ``max_clips`` clips drawn with ``seed`` (all when 0 or fewer are available).
    """
    rng = np.random.default_rng((seed, NORM_STREAM))
    chosen = clips if max_clips == 0 or max_clips >= len(clips) else [
        clips[i] for i in sorted(rng.choice(len(clips), max_clips, replace=False))]
    identity = BandNorm(detector.norm.n_bands, detector.norm.eps)  # unfitted: the identity
    unnormalised = Detector(detector.frontend, detector.compression, identity, detector.cnn)
    detector.norm.fit([compute_features(unnormalised, clip.audio.sum(axis=0), source=clip.name)
                       for clip in chosen])


def effective_lr(config: TrainConfig, world_size: int = 1) -> float:
    """The CNN's learning rate: ``lr``, times ``world_size`` when ``scale_lr`` is set."""
    return config.lr * world_size if config.scale_lr else config.lr


def make_optimizer(detector: Detector, config: TrainConfig, world_size: int = 1) -> torch.optim.Adam:
    """Adam: the CNN at :func:`effective_lr`, learnable front-end and compression parameters at
    that times ``frontend_lr_multiplier`` (a second parameter group, only if there are any)."""
    lr = effective_lr(config, world_size)
    front = [p for module in (detector.frontend, detector.compression) for p in module.parameters()
             if p.requires_grad]
    groups = [{"params": list(detector.cnn.parameters()), "lr": lr}]
    if front:
        groups.append({"params": front, "lr": lr * config.frontend_lr_multiplier})
    return torch.optim.Adam(groups)


def loss_terms(detector: Detector, audio: torch.Tensor, labels: torch.Tensor, inside: torch.Tensor,
               layout: ExampleLayout, targets: tuple[float, float],
               dense: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, weight)``: the summed binary cross-entropy of the labelled frames inside their
    clips, and their number, for a batch as tensors (shapes as in :class:`Batch`).

    Features of frames outside their clip are set to 0 (the training mean after
    normalisation, as in whole-file inference). Excerpt mode (``dense=False``, one labelled
    frame) runs :meth:`SchlueterCNN.forward`; dense mode :meth:`SchlueterCNN.dense`, which gives
    ``layout.labelled`` logits per example. Labels 0/1 become ``targets`` (e.g. 0.02/0.98).
    """
    features = detector.features(audio) * inside[:, None, :]
    network_input = features[..., layout.network_slice].unsqueeze(1)
    logits = detector.cnn.dense(network_input) if dense else detector.cnn(network_input)[:, None]
    low, high = targets
    weights = inside[:, layout.labelled_slice].to(logits.dtype)
    losses = F.binary_cross_entropy_with_logits(
        logits, low + (high - low) * labels[:, layout.labelled_slice], reduction="none")
    return (losses * weights).sum(), weights.sum()


def training_loss(detector: Detector, batch: Batch, layout: ExampleLayout,
                  targets: tuple[float, float], dense: bool) -> torch.Tensor:
    """Mean binary cross-entropy of the labelled frames of ``batch`` (frames inside the clips),
    see :func:`loss_terms`."""
    total, weight = loss_terms(detector, *(torch.from_numpy(part) for part in batch), layout,
                               targets, dense)
    return total / weight.clamp_min(1.0)


class TrainingObjective(nn.Module):
    """:func:`loss_terms` as a module: what :class:`~torch.nn.parallel.DistributedDataParallel`
    wraps. ``forward(audio, labels, inside)`` → ``(total, weight)``."""

    def __init__(self, detector: Detector, layout: ExampleLayout, targets: tuple[float, float],
                 dense: bool):
        super().__init__()
        self.detector, self.layout, self.targets, self.dense = detector, layout, targets, dense

    def forward(self, audio: torch.Tensor, labels: torch.Tensor,
                inside: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return loss_terms(self.detector, audio, labels, inside, self.layout, self.targets, self.dense)


def learnable_parameters(detector: Detector) -> dict[str, list[float]]:
    """The learnable front-end and compression parameters, in physical units where known.

    A filter bank with learnable parts gives all its per-band parameters
    (:func:`vocalfront.frontends.inspection.frontend_parameters`: ``centre_hz``, ``bandwidth_hz``,
    averaging size in ms, ``free_correction_max``); other learnable front-end parameters are
    listed as flat lists under their names, learnable compression parameters under
    ``compression.<name>``. Empty for fixed front-ends.
    """
    out = _filterbank_parameters(detector) or {
        name: param.detach().flatten().tolist()
        for name, param in detector.frontend.named_parameters() if param.requires_grad}
    out.update({f"compression.{name}": param.detach().flatten().tolist()
                for name, param in detector.compression.named_parameters() if param.requires_grad})
    return out


def _filterbank_parameters(detector: Detector) -> dict[str, list[float]] | None:
    """Per-band parameters of a learnable filter-bank front-end, else ``None``."""
    frontend = detector.frontend
    if isinstance(frontend, FilterBank) and any(p.requires_grad for p in frontend.parameters()):
        return inspection.frontend_parameters(frontend)
    return None




def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def training_environment(device: torch.device) -> dict[str, Any]:
    """Where a sitting of a run trains: ``device`` (``cpu``, ``cuda:N``), ``device_name`` (the
    GPU's name, or the CPU's architecture and core count), torch ``threads`` and the ``torch``
    and ``vocalfront`` versions."""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()} CPU, {os.cpu_count()} cores")
    return {"device": str(device), "device_name": name, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "vocalfront": __version__}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two config dictionaries (resume-free keys ignored)."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    keys = sorted((set(flat_old) | set(flat_new)) - RESUME_FREE_KEYS)
    return [key for key in keys if flat_old.get(key) != flat_new.get(key)]


class _Logs:
    """``metrics.jsonl`` and ``metrics.csv``, opened for appending at given lengths (bytes)."""

    def __init__(self, run_dir: Path, positions: dict[str, int] | None):
        self.jsonl = self._open(run_dir / "metrics.jsonl", positions and positions["jsonl"])
        self.csv = self._open(run_dir / "metrics.csv", positions and positions["csv"])
        self.writer = csv.writer(self.csv, lineterminator="\n")
        if self.csv.tell() == 0:
            self.writer.writerow(CSV_COLUMNS)

    @staticmethod
    def _open(path: Path, position: int | None) -> TextIO:
        """Open ``path`` for appending, first cut back to ``position`` bytes (``None``: emptied)."""
        with path.open("ab") as handle:
            size = handle.seek(0, io.SEEK_END)
            if position is not None and position > size:
                warnings.warn(f"{path}: shorter than the checkpoint recorded ({size} < {position} "
                              "bytes); earlier entries are missing", stacklevel=3)
            handle.truncate(min(position or 0, size))
        return path.open("a", encoding="utf-8", newline="")

    def record(self, entry: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(json_safe(entry), allow_nan=False) + "\n")

    def row(self, values: dict[str, Any]) -> None:
        self.writer.writerow([values[column] for column in CSV_COLUMNS])

    def positions(self) -> dict[str, int]:
        """Current lengths of both files (after flushing them)."""
        for handle in (self.jsonl, self.csv):
            handle.flush()
        return {"jsonl": self.jsonl.tell(), "csv": self.csv.tell()}

    def __enter__(self) -> _Logs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.jsonl.close()
        self.csv.close()


class Trainer:
    """One training run in ``run_dir`` (see the module docstring). Use :func:`train`.

    ``state`` (a loaded training state) resumes; ``None`` starts afresh. ``callback(update)`` is
    called after every update (after any validation and checkpoint of that update). ``env``:
    this process's place among several (inside their process group); ``device``: where the
    model trains.
    """

    def __init__(self, config: Config, run_dir: Path, state: dict[str, Any] | None,
                 progress: bool = True, callback: Callback | None = None,
                 env: DistributedEnv = SINGLE, device: torch.device | None = None):
        self.config, self.run_dir, self.progress, self.callback = config, run_dir, progress, callback
        self.env, self.device = env, device or torch.device("cpu")
        torch.manual_seed(config.train.seed)
        self.detector = build_model(config.model)  # before any audio: a bad model config fails now
        sources = open_sources(config.data)
        irs = config.data.impulse_responses
        self.plates = ImpulseResponses(irs) if irs else None  # small: a bad folder fails at once
        self.pool = instrumental_pool(config.data)
        self.train_clips: list[TrainingClip] = []
        self.problems: list[str] = []
        for source in sources:
            clips, problems = load_clips(source.train, config.data.remix_enabled, progress, source.name,
                                         source.solo)
            self.train_clips += clips
            self.problems += problems
        self.valid_clips: list[TrainingClip] = []
        if env.is_main:  # only process 0 validates
            self.valid_clips, valid_problems = heldout_clips(config.data, sources, "valid",
                                                             config.train.seed, self.detector.grid,
                                                             progress)
            self.problems += valid_problems
        self.sampler = make_sampler(self.train_clips, self.detector, config, self.pool, env,
                                    plates=self.plates)
        self.optimizer = make_optimizer(self.detector, config.train, env.world_size)
        self.update, self.elapsed, self.epoch_loss = 0, 0.0, [0.0, 0]
        self.best: dict[str, Any] = {"error": math.inf, "update": 0}
        self.initial_frontend = _filterbank_parameters(self.detector)
        if state is None:
            self._start()
        else:
            self._restore(state)
        objective = TrainingObjective(self.detector, self.sampler.layout, config.train.targets,
                                      config.train.mode == "dense")
        self.objective = distributed.data_parallel(objective, env, self.device)
        self.logs = _Logs(run_dir, None if state is None else state["logs"]) if env.is_main else None

    def _start(self) -> None:
        """Fresh run: seed the global generators, fit the normalisation (in process 0, on the CPU),
        move the detector to its device and give every process process 0's normalisation."""
        self._seed_generators()
        if self.env.is_main:
            fit_norm(self.detector, self.train_clips, self.config.data.norm_clips, self.config.train.seed)
        self.detector.to(self.device)
        distributed.broadcast_tensors([self.detector.norm.mean, self.detector.norm.std], self.env)

    def _seed_generators(self, *extra: int) -> None:
        """Seed Python's and NumPy's global generators with :func:`~.distributed.rank_seed`, and
        torch's in processes other than 0 (process 0 goes on with the stream that initialised
        the weights, as a single process does)."""
        seed = distributed.rank_seed(self.config.train.seed, self.env.rank, *extra)
        random.seed(seed)
        np.random.seed(seed)
        if self.env.rank:
            torch.manual_seed(seed)

    def _restore(self, state: dict[str, Any]) -> None:
        """Resume from ``state``: the shared model and optimiser, and this process's sampler and
        generators (new ones for a process that the run did not have, with a warning)."""
        self.detector.to(self.device)
        self.detector.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        saved = [{"sampler": state["sampler"], "rng": state["rng"]}, *state.get("rank_states", [])]
        if len(saved) != self.env.world_size and self.env.is_main:
            warnings.warn(f"{self.run_dir}: resuming a run of {len(saved)} process(es) with "
                          f"{self.env.world_size}; it goes on, but not as it would have",
                          stacklevel=3)
        if self.env.rank < len(saved):
            self.sampler.load_state_dict(saved[self.env.rank]["sampler"])
            restore_rng_states(saved[self.env.rank]["rng"], self.device)
        else:
            self._join(saved[0]["sampler"], state["update"])
        self.update, self.elapsed = state["update"], state["elapsed"]
        self.epoch_loss, self.best = list(state["epoch_loss"]), dict(state["best"])
        self.initial_frontend = state["initial_frontend"]

    def _join(self, main_sampler: dict[str, Any], update: int) -> None:
        """Streams for a process that joins a resumed run after ``update`` updates: new ones,
        distinct from all earlier ones; the shared position in ``global`` sampling."""
        self._seed_generators(update)
        if isinstance(self.sampler, ShardedSampler):
            self.sampler.load_state_dict(main_sampler)
        else:
            self.sampler = make_sampler(self.train_clips, self.detector, self.config, self.pool,
                                        self.env, restart=update)

    def _state(self, ranks: list[dict[str, Any]], logs: _Logs) -> dict[str, Any]:
        """The training state to save, with the per-process states ``ranks`` (process 0's first)."""
        return {"config": config_to_dict(self.config), "model": self.detector.state_dict(),
                "optimizer": self.optimizer.state_dict(), "sampler": ranks[0]["sampler"],
                "rng": ranks[0]["rng"], "elapsed": self.elapsed, "epoch_loss": list(self.epoch_loss),
                "best": dict(self.best), "initial_frontend": self.initial_frontend,
                "logs": logs.positions(), "world_size": len(ranks),
                "rank_states": [{"sampler": rank["sampler"], "rng": rank["rng"]} for rank in ranks[1:]],
                "parameters": [rank["parameters"] for rank in ranks]}

    def run(self) -> TrainResult:
        """Train up to ``train.updates`` updates, then write ``model.pt``."""
        train_config = self.config.train
        with self.logs or contextlib.nullcontext(), tqdm(
                total=train_config.updates, initial=self.update, unit="update",
                disable=not self.progress, dynamic_ncols=True) as bar:
            if self.logs is not None:
                self.logs.record({"event": "start", "update": self.update,
                                  "world_size": self.env.world_size, **training_environment(self.device)})
            while self.update < train_config.updates:
                started = time.perf_counter()
                loss = self._step()
                self.elapsed += time.perf_counter() - started
                self.update += 1
                if self.logs is not None:
                    self.logs.record({"event": "update", "update": self.update, "loss": loss,
                                      "lr": self.optimizer.param_groups[0]["lr"],
                                      "time": round(self.elapsed, 3)})
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update()
                self._after_update()
        return distributed.run_on_main(self._finish, self.env)

    def _step(self) -> float:
        """Draw a batch, one Adam step; the mean loss of the (global) batch."""
        train_config = self.config.train
        self.detector.train()
        self._set_lr()
        batch = self.sampler.sample(train_config.batch_size)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=train_config.bf16):
            total, weight = self.objective(*(torch.from_numpy(part).to(self.device) for part in batch))
        loss, value = distributed.global_mean(total, weight, self.env)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.epoch_loss = [self.epoch_loss[0] + value, self.epoch_loss[1] + 1]
        return value

    def _set_lr(self) -> None:
        """Every parameter group at its base rate times :func:`lr_factor` of this update."""
        factor = lr_factor(self.config.train, self.update)
        for group in self.optimizer.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor

    def _after_update(self) -> None:
        train_config = self.config.train
        epoch_end = (self.update % train_config.updates_per_epoch == 0
                     or self.update == train_config.updates)
        if epoch_end or self.update % train_config.checkpoint_every == 0:
            self._checkpoint(epoch_end)
        if self.callback is not None:
            self.callback(self.update)

    def _checkpoint(self, epoch_end: bool) -> None:
        """Gather every process's sampler and generator states and parameter digest in process 0,
        which validates (at an epoch's end) and writes the state file, while the others wait;
        then every process knows the best validation so far."""
        train_loss: float | None = None
        if epoch_end:
            train_loss = self.epoch_loss[0] / max(self.epoch_loss[1], 1)
            self.epoch_loss = [0.0, 0]
        mine = {"sampler": self.sampler.state_dict(), "rng": rng_states(self.device),
                "parameters": distributed.parameter_digest(self.detector)}
        ranks = distributed.gather_to_main(mine, self.env)
        self.best = distributed.run_on_main(lambda: self._write_checkpoint(ranks, train_loss),
                                            self.env)

    def _write_checkpoint(self, ranks: list[dict[str, Any]], train_loss: float | None) -> dict[str, Any]:
        """In process 0: validation (unless ``train_loss`` is ``None``), then the state file after
        checking that all processes hold the same parameters; the best validation so far."""
        if train_loss is not None:
            self._validate(train_loss)
        differing = [rank for rank, entry in enumerate(ranks)
                     if entry["parameters"] != ranks[0]["parameters"]]
        if differing:
            raise VocalfrontError(f"{self.run_dir}: after update {self.update} the parameters of "
                                  f"process(es) {differing} differ from process 0's")
        assert self.logs is not None  # process 0 keeps the logs
        save_state(self.run_dir, self.update, self._state(ranks, self.logs))
        return dict(self.best)

    def _validate(self, train_loss: float) -> None:
        """Validation metrics → logs, ``last.pt``, and ``best.pt`` if the error improved
        (``train_loss``: the epoch's mean training loss, for the logs)."""
        assert self.logs is not None  # process 0 keeps the logs
        started = time.perf_counter()
        detector = self._host_detector()
        metrics = validate(detector, self.valid_clips, self.config.eval.median_filter)
        self.elapsed += time.perf_counter() - started
        epoch = math.ceil(self.update / self.config.train.updates_per_epoch)
        improved = metrics["error"] < self.best["error"]
        if improved:
            self.best = {"error": metrics["error"], "update": self.update}
        self.logs.record({"event": "validation", "epoch": epoch, "update": self.update,
                          "train_loss": train_loss, "valid": metrics, "best": improved,
                          "world_size": self.env.world_size, **self._frontend_report(detector),
                          "time": round(self.elapsed, 3)})
        self.logs.row({"epoch": epoch, "update": self.update, "train_loss": f"{train_loss:.6f}",
                       "valid_error": f"{metrics['error']:.6f}",
                       "valid_f_measure": f"{metrics['f_measure']:.6f}",
                       "valid_auroc": f"{metrics['auroc']:.6f}",
                       "threshold": f"{metrics['threshold']:.6f}", "time": f"{self.elapsed:.1f}"})
        extra = {"threshold": metrics["threshold"], "median_filter": self.config.eval.median_filter,
                 "update": self.update, "epoch": epoch, "valid": metrics,
                 "config": config_to_dict(self.config)}
        save_detector(self.run_dir / "last.pt", detector, extra)
        if improved:
            save_detector(self.run_dir / "best.pt", detector, extra)

    def _host_detector(self) -> Detector:
        """The detector on the CPU (a copy when it trains elsewhere): what is validated and saved."""
        return self.detector if self.device.type == "cpu" else copy.deepcopy(self.detector).cpu()

    def _frontend_report(self, detector: Detector) -> dict[str, Any]:
        """``frontend``: learnable parameters now; ``frontend_moved``: how far a learnable filter
        bank moved from its initialisation (:func:`vocalfront.frontends.inspection.movement_summary`)."""
        params = learnable_parameters(detector)
        if self.initial_frontend is None:
            return {"frontend": params}
        current = {key: params[key] for key in self.initial_frontend}
        return {"frontend": params,
                "frontend_moved": inspection.movement_summary(self.initial_frontend, current)}

    def _finish(self) -> TrainResult:
        """Write ``model.pt``: the best epoch's detector, with its decision settings (threshold,
        median filter, shortest segment and gap) chosen on the validation clips
        (:func:`~.validation.calibrated_record`)."""
        best = load_detector_file(self.run_dir / "best.pt")
        model_path = self.run_dir / "model.pt"
        save_detector(model_path, best.detector, {**best.record, **calibrated_record(
            best.detector, self.valid_clips, self.config.eval.median_filter)})
        return TrainResult(self.run_dir, model_path, self.update, int(self.best["update"]),
                           float(self.best["error"]), tuple(self.problems))


def read_run_config(run_dir: Path) -> Config:
    """A run's ``config.json``, read back through :class:`Config` (keys added to it since the run
    was made take their defaults); an unreadable one is a :class:`VocalfrontError`."""
    path = run_dir / "config.json"
    try:
        return config_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise VocalfrontError(f"{path}: unreadable run configuration ({error})") from None


def check_run_folder(run_dir: Path) -> None:
    """Refuse ``run_dir`` unless it is free for a run: missing, or without any of
    :data:`RUN_FILES`, or a vocalfront run folder (its ``config.json`` reads as a :class:`Config`).

    Read-only, so it runs before the folder's lock is taken: a folder that is not a run gets
    no file written into it.
    """
    present = [name for name in RUN_FILES if (run_dir / name).exists()]
    if not present:
        return
    if not (run_dir / "config.json").is_file():
        raise VocalfrontError(f"{run_dir}: not a vocalfront run folder (it holds {', '.join(present)} "
                              "but no config.json); use another --out")
    try:
        read_run_config(run_dir)
    except VocalfrontError as error:
        raise VocalfrontError(f"{error}; not a vocalfront run folder, use another --out") from None


def _start_over(run_dir: Path) -> None:
    """Remove a previous run's state files and its other files (:data:`RUN_FILES`) from
    ``run_dir`` (a folder :func:`check_run_folder` accepted); nothing else."""
    for path in [*list_states(run_dir), *(run_dir / name for name in RUN_FILES)]:
        path.unlink(missing_ok=True)


def _refuse_another_run(run_dir: Path, stored: Config, new: dict[str, Any]) -> None:
    changed = config_differences(config_to_dict(stored), new)
    if changed:
        raise VocalfrontError(
            f"{run_dir}: holds a run with a different config ({', '.join(changed[:5])} differ); "
            "use another --out, or --no-resume to start over")


def prepare_run(config: Config, run_dir: str | Path, resume: bool | None = None) -> dict[str, Any] | None:
    """Set up ``run_dir`` for ``config``; the training state to resume from, or ``None``.

    ``resume=None`` resumes when the folder holds a state of the same configuration (up to
    :data:`RESUME_FREE_KEYS`) and refuses a different one, also one that has a ``config.json``
    but no state yet; ``True`` likewise (starting afresh if there is no state); ``False``
    deletes the previous run's files and starts over. A folder that is not a run
    (:func:`check_run_folder`) is refused whatever ``resume`` says. Writes ``config.json``.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir)
    new = config_to_dict(config)
    state = None if resume is False else load_latest_state(run_dir)
    if state is not None:
        # read back with today's defaults for keys added since (an unreadable config fails here)
        _refuse_another_run(run_dir, config_from_dict(state["config"]), new)
    else:
        if resume is not False and (run_dir / "config.json").is_file():
            _refuse_another_run(run_dir, read_run_config(run_dir), new)
        _start_over(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.json", json.dumps(new, indent=2) + "\n")
    return state


def _lock_run(run_dir: Path, stack: contextlib.ExitStack) -> None:
    """Hold ``run_dir``'s :data:`LOCK_FILE` until ``stack`` closes; another holder is an error.

    The folder is checked first (:func:`check_run_folder`), so no lock file lands in a folder
    that is not a run."""
    check_run_folder(run_dir)
    holder = stack.enter_context(process_lock(run_dir / LOCK_FILE))
    if holder is not None:
        raise VocalfrontError(f"{run_dir}: another training is running in this folder ({holder}); "
                              "wait for it to end or use another --out")


def train(config: Config, run_dir: str | Path, resume: bool | None = None, progress: bool = True,
          callback: Callback | None = None) -> TrainResult:
    """Train ``config`` (with ``data.root`` resolved, see :func:`~.config.resolve_config`) in
    ``run_dir``, resuming an interrupted run there (see :func:`prepare_run`).

    The run folder is locked (:data:`LOCK_FILE`) for the whole training: a second training in
    the same folder stops with an error before touching it. ``train.num_threads`` > 0 sets
    torch's thread count. ``callback(update)`` runs after every update (tests interrupt runs
    with it).

    Started by ``torchrun`` (``WORLD_SIZE`` > 1, see :mod:`.distributed`), every process calls
    this: they join a process group for the run, process 0 locks and prepares the run folder
    and hands the state to resume to the others, and only process 0 shows progress and writes
    files; all return the same result.
    """
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    run_dir = Path(run_dir)
    env = distributed.environment()
    device = distributed.training_device(config.train.device, env)
    with distributed.process_group(env, device), contextlib.ExitStack() as lock:
        def prepare() -> dict[str, Any] | None:
            _lock_run(run_dir, lock)
            return prepare_run(config, run_dir, resume)

        state = distributed.run_on_main(prepare, env)
        return Trainer(config, run_dir, state, progress and env.is_main, callback, env,
                       device).run()
