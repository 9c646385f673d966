"""The training loop: a :class:`~vocalfront.model.Detector` trained in a run folder.

:func:`train` locks and prepares the run folder (:mod:`.runfolder`: its layout, logs, resume
checks) and runs a :class:`Trainer`, the loop that ties the jobs together:

- the detector built from ``[model]`` (:func:`build_model`) before any audio is decoded, so a
  bad model configuration fails at once; its frame grid is the grid of everything else;
- the corpora opened on that grid (:mod:`.sources`), training clips loaded and the example
  sampler built (:mod:`.sampler`), each batch made in a background thread while the one before
  it trains (:mod:`.prefetch`), the normalisation fitted (:mod:`.norm`);
- the loss, Adam and the learning-rate schedule (:mod:`.objective`);
- validation at each epoch's end (:mod:`.validation`) and the learnable front-end parameters
  it logs (:mod:`.parameters`); the final model's decision settings chosen on validation.

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

Detector files carry ``extra`` entries ``threshold`` (chosen on the validation set, applied to
median-smoothed probabilities), ``median_filter`` (frames), ``update``, ``epoch``, ``valid``
(pooled validation metrics) and ``config`` (the training configuration).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..data.production import ImpulseResponses
from ..detector_file import load_detector_file
from ..errors import VocalfrontError
from ..model import Detector, build_detector
from . import distributed, runfolder
from .checkpoint import restore_rng_states, rng_states, save_state
from .config import Config, ModelConfig, config_to_dict
from .distributed import SINGLE, DistributedEnv
from .norm import fit_norm
from .objective import TrainingObjective, apply_lr_schedule, make_optimizer
from .parameters import filterbank_parameters, frontend_report
from .prefetch import PrefetchingSampler
from .sampler import ExampleSampler, ShardedSampler, TrainingClip, make_sampler, training_clips
from .sources import instrumental_pool, open_sources, opened_weights
from .validation import calibrate_clips, check_heldout_music, heldout_clips, predict_clips, score_clips

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

    Its front-end's frame grid (``sample_rate``, ``hop``, ``window`` among
    ``model.frontend_options``) is the grid of the whole run: readers, labels, sampler and
    validation are built on ``detector.grid``.
    """
    return build_detector({
        "frontend": {"name": config.frontend, **config.frontend_options},
        "compression": {"name": config.compression, **config.compression_options},
        "cnn": {"context": config.context, "batch_norm": config.batch_norm, "dropout": config.dropout}})


def initial_weights(path: str, detector: Detector) -> dict[str, torch.Tensor] | None:
    """The weights of the detector file ``path`` (``train.init_from``; ``None`` for ``""``) for
    ``detector``: refused, with a one-line error, unless the file's detector is ``detector``'s
    but for its dropout (which has no weights)."""
    if not path:
        return None
    source = load_detector_file(path).detector
    theirs, mine = source.get_config(), detector.get_config()
    for config in (theirs, mine):
        config["cnn"] = {key: value for key, value in config["cnn"].items() if key != "dropout"}
    different = [part for part in mine if theirs.get(part) != mine[part]]
    if different:
        raise VocalfrontError(f"train.init_from={path}: its detector differs from the [model] section "
                              f"in {', '.join(different)} ({theirs[different[0]]} there)")
    return source.state_dict()


class Trainer:
    """One training run in ``run_dir`` (see the module docstring). Use :func:`train`.

    ``state`` (a loaded training state) resumes; ``None`` starts afresh. ``callback(update)`` is
    called after every update (after any validation and checkpoint of that update). ``env``:
    this process's place among several (inside their process group); ``device``: where the
    model trains; ``initial_weights``: what a fresh run starts from instead of a random
    initialisation (:func:`initial_weights` of ``train.init_from``; unused when resuming).
    """

    def __init__(self, config: Config, run_dir: Path, state: dict[str, Any] | None,
                 progress: bool = True, callback: Callback | None = None,
                 env: DistributedEnv = SINGLE, device: torch.device | None = None,
                 initial_weights: dict[str, torch.Tensor] | None = None):
        self.config, self.run_dir, self.progress, self.callback = config, run_dir, progress, callback
        self.env, self.device = env, device or torch.device("cpu")
        torch.manual_seed(config.train.seed)
        self.detector = build_model(config.model)  # before any audio: a bad model config fails now
        self.initial_weights = initial_weights if state is None else None
        grid = self.detector.grid
        sources = open_sources(config.data, grid)
        self.source_weights = opened_weights(config.data, sources)
        if env.is_main:
            check_heldout_music(config.data, sources, "valid")
        irs = config.data.impulse_responses
        # small: a bad folder fails at once
        self.plates = ImpulseResponses(irs, grid.sample_rate) if irs else None
        self.pool = instrumental_pool(config.data, "train", grid)
        self.train_clips, self.problems = training_clips(sources, config.data.remix_enabled, progress)
        self.valid_clips: list[TrainingClip] = []
        if env.is_main:  # only process 0 validates
            self.valid_clips, valid_problems = heldout_clips(config.data, sources, "valid",
                                                             config.train.seed, grid, progress)
            self.problems += valid_problems
        self.sampler = PrefetchingSampler(self._make_sampler())
        self.optimizer = make_optimizer(self.detector, config.train, env.world_size)
        self.update, self.elapsed, self.epoch_loss = 0, 0.0, [0.0, 0]
        self.best: dict[str, Any] = {"error": math.inf, "update": 0}
        self.best_probabilities: list[np.ndarray] | None = None
        """Validation probabilities of the best epoch seen by this process (for the end)."""
        if state is None:
            self._start()
        else:
            self._restore(state)
        objective = TrainingObjective(self.detector, self.sampler.layout, config.train.targets,
                                      config.train.mode == "dense")
        self.objective = distributed.data_parallel(objective, env, self.device)
        self.logs = (runfolder.RunLogs(run_dir, None if state is None else state["logs"])
                     if env.is_main else None)

    def _start(self) -> None:
        """Fresh run: seed the global generators, load ``train.init_from``'s weights or fit the
        normalisation (in process 0, on the CPU), note the initial front-end, move the detector
        to its device and give every process process 0's normalisation."""
        self._seed_generators()
        if self.initial_weights is not None:
            self.detector.load_state_dict(self.initial_weights)
            self.initial_weights = None
        elif self.env.is_main:
            fit_norm(self.detector, self.train_clips, self.config.data.norm_clips, self.config.train.seed)
        self.initial_frontend = filterbank_parameters(self.detector)
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
        if isinstance(self.sampler.sampler, ShardedSampler):
            self.sampler.load_state_dict(main_sampler)
        else:
            self.sampler.close()
            self.sampler = PrefetchingSampler(self._make_sampler(restart=update))

    def _make_sampler(self, restart: int | None = None) -> ExampleSampler | ShardedSampler:
        """This process's sampler over the training clips (:func:`make_sampler`; ``restart``: the
        update after which a process joins a resumed run)."""
        return make_sampler(self.train_clips, self.detector, self.config, self.pool, self.env,
                            restart=restart, plates=self.plates, source_weights=self.source_weights)

    def _state(self, ranks: list[dict[str, Any]], logs: runfolder.RunLogs) -> dict[str, Any]:
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
        with self.logs or contextlib.nullcontext(), contextlib.closing(self.sampler), tqdm(
                total=train_config.updates, initial=self.update, unit="update",
                disable=not self.progress, dynamic_ncols=True) as bar:
            if self.logs is not None:
                self.logs.record({"event": "start", "update": self.update, "world_size": self.env.world_size,
                                  **distributed.training_environment(self.device)})
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
        apply_lr_schedule(self.optimizer, train_config, self.update)
        batch = self.sampler.sample(train_config.batch_size,
                                    draw_next=self.update + 1 < train_config.updates)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=train_config.bf16):
            total, weight = self.objective(*(torch.from_numpy(part).to(self.device) for part in batch))
        loss, value = distributed.global_mean(total, weight, self.env)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.epoch_loss = [self.epoch_loss[0] + value, self.epoch_loss[1] + 1]
        return value

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
        save_state(self.run_dir, self.update, self._state(ranks, self.logs),
                   keep_every=self.config.train.keep_states_every)
        return dict(self.best)

    def _validate(self, train_loss: float) -> None:
        """Validation metrics → logs, ``last.pt``, and ``best.pt`` if the error improved
        (``train_loss``: the epoch's mean training loss, for the logs)."""
        assert self.logs is not None  # process 0 keeps the logs
        started = time.perf_counter()
        detector = self._host_detector()
        probabilities = predict_clips(detector, self.valid_clips)
        metrics = score_clips(probabilities, self.valid_clips, self.config.eval.median_filter,
                              grid=detector.grid)
        self.elapsed += time.perf_counter() - started
        epoch = math.ceil(self.update / self.config.train.updates_per_epoch)
        improved = metrics["error"] < self.best["error"]
        if improved:
            self.best = {"error": metrics["error"], "update": self.update}
            self.best_probabilities = probabilities
        self.logs.validation(epoch, self.update, train_loss, metrics, self.elapsed,
                             {"best": improved, "world_size": self.env.world_size,
                              **frontend_report(detector, self.initial_frontend)})
        extra = {"threshold": metrics["threshold"], "median_filter": self.config.eval.median_filter,
                 "update": self.update, "epoch": epoch, "valid": metrics,
                 "config": config_to_dict(self.config)}
        runfolder.save_epoch_detectors(self.run_dir, detector, extra, improved)

    def _host_detector(self) -> Detector:
        """The detector on the CPU (a copy when it trains elsewhere): what is validated and saved."""
        return self.detector if self.device.type == "cpu" else copy.deepcopy(self.detector).cpu()

    def _finish(self) -> TrainResult:
        """Write ``model.pt``: the best epoch's detector, with its decision settings (threshold,
        median filter, shortest segment and gap) chosen on the validation clips
        (:func:`~.validation.calibrate_clips`) from its validation probabilities, which are
        predicted again only when the best epoch came before a resume."""
        detector, extra = runfolder.load_run_detector(self.run_dir, runfolder.BEST_DETECTOR)
        probabilities = self.best_probabilities
        if probabilities is None:
            probabilities = predict_clips(detector, self.valid_clips)
        settings = calibrate_clips(probabilities, self.valid_clips, self.config.eval.median_filter,
                                   detector.grid)
        model_path = runfolder.save_final_model(self.run_dir, detector, {**extra, **settings})
        return TrainResult(self.run_dir, model_path, self.update, int(self.best["update"]),
                           float(self.best["error"]), tuple(self.problems))


def train(config: Config, run_dir: str | Path, resume: bool | None = None, progress: bool = True,
          callback: Callback | None = None) -> TrainResult:
    """Train ``config`` (with ``data.root`` resolved, see :func:`~.config.resolve_config`) in
    ``run_dir``, resuming an interrupted run there (see :func:`.runfolder.prepare_run`).

    The run folder is locked (:data:`.runfolder.LOCK_FILE`) for the whole training: a second
    training in the same folder stops with an error before touching it. ``train.num_threads`` > 0 sets
    torch's thread count. ``callback(update)`` runs after every update (tests interrupt runs
    with it).

    Started by ``torchrun`` (``WORLD_SIZE`` > 1, see :mod:`.distributed`), every process calls
    this: they join a process group for the run, process 0 locks and prepares the run folder
    and hands the state to resume to the others, and only process 0 shows progress and writes
    files; all return the same result.
    """
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    # a bad [model] section or train.init_from fails before the run folder is touched
    start = initial_weights(config.train.init_from, build_model(config.model))
    run_dir = Path(run_dir)
    env = distributed.environment()
    device = distributed.training_device(config.train.device, env)
    with distributed.process_group(env, device), contextlib.ExitStack() as lock:
        def prepare() -> dict[str, Any] | None:
            runfolder.lock_run(run_dir, lock)
            return runfolder.prepare_run(config, run_dir, resume)

        state = distributed.run_on_main(prepare, env)
        return Trainer(config, run_dir, state, progress and env.is_main, callback, env,
                       device, start).run()
