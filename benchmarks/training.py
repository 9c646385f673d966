"""Training throughput in labelled frames per second: excerpt mode vs dense mode, float32 and bf16,
and whole updates with their examples made in place or ahead (the ``training`` section of
``python -m benchmarks``; ``--only training`` runs it alone).

Random audio, the default detector (mel front-end, Schlüter & Grill's CNN with batch
normalisation, 115-frame context, 8 margin frames); a step is one Adam update (forward, backward,
step); example sampling is not included. Excerpt mode labels one frame per 115-frame excerpt,
dense mode ``dense_frames`` frames per segment of ``115 + dense_frames - 1``; dense bf16 is
dense mode with the forward pass under bfloat16 autocast (``train.bf16``). Steps of all
modes are interleaved (:func:`benchmarks.timing.median_seconds`) so machine noise is shared.

:func:`prefetch_speedup` times whole updates of the default detector (``configs/default.toml``:
``fb``, dense bf16, 6 segments) with the examples made as the run makes them - its remixing,
voice effects and augmentation, on synthetic voice and accompaniment stems, synthetic music and
synthetic plate responses - once in place before each step and once by
:class:`~vocalfront.training.prefetch.PrefetchingSampler` while the step before trains.
:func:`worker_speedup` times the making of one batch of such examples (``global`` sampling) by
one thread and by several (``train.example_workers``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vocalfront.data.remix import InstrumentalPool
from vocalfront.grid import FrameGrid
from vocalfront.model import Detector
from vocalfront.training import (
    Batch,
    Config,
    ExampleLayout,
    ExampleSampler,
    ModelConfig,
    ShardedSampler,
    TrainConfig,
    TrainingClip,
    build_model,
    load_config,
    make_optimizer,
    training_loss,
)
from vocalfront.training.prefetch import PrefetchingSampler
from vocalfront.training.sampler import make_sampler

from .timing import median_seconds


def random_batch(layout: ExampleLayout, batch_size: int, samples: int, seed: int) -> Batch:
    """Noise at about -20 dBFS with random 0/1 labels, every frame inside its clip."""
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal((batch_size, samples))).astype(np.float32)
    labels = rng.integers(0, 2, (batch_size, layout.frames)).astype(np.float32)
    return Batch(audio, labels, np.ones_like(labels, dtype=bool))


def training_step(layout: ExampleLayout, batch_size: int, dense: bool,
                  bf16: bool = False) -> Callable[[], None]:
    """One Adam update of a fresh default detector on a fixed random batch, as a function;
    ``bf16``: the forward pass under bfloat16 autocast, as the trainer runs it with ``train.bf16``."""
    torch.manual_seed(0)
    detector = build_model(ModelConfig()).train()
    optimizer = make_optimizer(detector, TrainConfig())
    batch = random_batch(layout, batch_size, detector.grid.num_samples(layout.frames), 0)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = training_loss(detector, batch, layout, (0.02, 0.98), dense)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


Mode = tuple[ExampleLayout, int, bool, bool]
"""A training mode: example layout, examples per update, dense, bf16 autocast."""


def training_modes(batch: int, dense_batch: int, dense_frames: int) -> dict[str, Mode]:
    """Excerpt mode (``batch`` excerpts), dense mode and dense bf16 (``dense_batch`` segments of
    ``dense_frames`` labelled frames), each as :func:`training_step` takes it."""
    context, margin = ModelConfig().context, TrainConfig().margin_frames
    dense = ExampleLayout(context, dense_frames, margin)
    return {"excerpt": (ExampleLayout(context, 1, margin), batch, False, False),
            "dense": (dense, dense_batch, True, False),
            "dense bf16": (dense, dense_batch, True, True)}


def labelled_rates(modes: dict[str, Mode], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per update and labelled frames per second of each mode, timed interleaved."""
    seconds = median_seconds({name: training_step(*mode) for name, mode in modes.items()}, repeats)
    rates = {name: size * layout.labelled / seconds[name]
             for name, (layout, size, _, _) in modes.items()}
    return seconds, rates


def throughput(repeats: int, batch: int = 32, dense_batch: int = 4, dense_frames: int = 400) -> dict:
    """Labelled frames per second of one Adam update: excerpt mode (``batch`` excerpts), dense
    float32 and dense bf16 (``dense_batch`` segments of ``dense_frames`` labelled frames)."""
    seconds, rates = labelled_rates(training_modes(batch, dense_batch, dense_frames), repeats)
    return {"seconds_per_step": seconds, "labelled_frames_per_second": rates,
            "dense_over_excerpt": rates["dense"] / rates["excerpt"],
            "bf16_over_float32": rates["dense bf16"] / rates["dense"]}


DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"
"""The packaged model's training configuration: what :func:`prefetch_speedup` and
:func:`worker_speedup` make examples like."""


def synthetic_stems(grid: FrameGrid, clips: int = 8, seconds: float = 20.0,
                    seed: int = 0) -> list[TrainingClip]:
    """Clips of a vibrato tone with harmonics (the voice, sung every other second) over noise (the
    accompaniment), labelled on ``grid``: what remixing and the voice effects work on."""
    rng = np.random.default_rng(seed)
    samples = round(seconds * grid.sample_rate)
    t = np.arange(samples) / grid.sample_rate
    sung = (t.astype(int) % 2 == 1).astype(np.float32)
    labels = sung[np.minimum(np.arange(grid.num_frames(samples)) * grid.hop, samples - 1)]
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)
    result = []
    for index in range(clips):
        phase = 2 * np.pi * np.cumsum(rng.uniform(150, 400) * vibrato) / grid.sample_rate
        voice = sung * sum(np.sin(k * phase) / k for k in range(1, 6))
        accompaniment = 0.3 * rng.standard_normal(samples)
        result.append(TrainingClip(f"synthetic-{index}", np.stack([voice, accompaniment]).astype(np.float32),
                                   labels, "mir1k"))
    return result


@dataclass(frozen=True)
class ExampleMaking:
    """What the default configuration makes its examples from, synthesised: its ``config``
    (``overrides`` applied), a fresh default ``detector``, voice/accompaniment ``clips``, four
    minutes of noise as the ``music`` pool and three synthetic plate responses (``plates``)."""

    config: Config
    detector: Detector
    clips: list[TrainingClip]
    music: InstrumentalPool
    plates: list[np.ndarray]

    @classmethod
    def synthesise(cls, *overrides: str) -> ExampleMaking:
        config = load_config(DEFAULT_CONFIG, ["data.source_weights={}", *overrides])
        torch.manual_seed(0)
        detector = build_model(config.model).train()
        grid, rng = detector.grid, np.random.default_rng(1)
        music = InstrumentalPool([0.3 * rng.standard_normal(60 * grid.sample_rate).astype(np.float32)
                                  for _ in range(4)], sample_rate=grid.sample_rate)
        decay = np.exp(-np.arange(grid.sample_rate) / (0.3 * grid.sample_rate))
        plates = [decay * rng.standard_normal(grid.sample_rate) for _ in range(3)]
        return cls(config, detector, synthetic_stems(grid), music, plates)

    def sampler(self) -> ExampleSampler | ShardedSampler:
        """The run's sampler (:func:`~vocalfront.training.sampler.make_sampler`) over these."""
        return make_sampler(self.clips, self.detector, self.config, self.music, plates=self.plates)


def prefetch_speedup(repeats: int, updates: int = 8, batch_size: int | None = None) -> dict:
    """Seconds per update of ``updates`` consecutive updates (examples made, then one Adam step)
    with the examples made in place and made ahead, interleaved; and their ratio. ``batch_size``:
    segments per update (default: the configuration's)."""
    making = ExampleMaking.synthesise()
    config, detector = making.config, making.detector
    in_place, ahead = making.sampler(), PrefetchingSampler(making.sampler())
    optimizer = make_optimizer(detector, config.train)
    batch_size = batch_size or config.train.batch_size

    def step(batch: Batch) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.train.bf16):
            loss = training_loss(detector, batch, in_place.layout, config.train.targets, True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def made_in_place() -> None:
        for _ in range(updates):
            step(in_place.sample(batch_size))

    def made_ahead() -> None:
        for update in range(updates):
            step(ahead.sample(batch_size, draw_next=update + 1 < updates))

    seconds = median_seconds({"in place": made_in_place, "ahead": made_ahead}, repeats)
    ahead.close()
    per_update = {name: value / updates for name, value in seconds.items()}
    return {"seconds_per_update": per_update, "ahead_speedup": per_update["in place"] / per_update["ahead"]}


def worker_speedup(repeats: int, workers: int | None = None, batch_size: int = 12) -> dict:
    """Seconds to make a batch of ``batch_size`` examples (``global`` sampling) with one thread and
    with ``workers`` threads (default: one per core, at least 2), interleaved; and their ratio."""
    workers = workers or max(2, os.cpu_count() or 1)
    samplers = {count: ExampleMaking.synthesise("train.sampling=global",
                                                f"train.example_workers={count}").sampler()
                for count in (1, workers)}
    seconds = median_seconds({str(count): lambda sampler=sampler: sampler.sample(batch_size)
                              for count, sampler in samplers.items()}, repeats)
    for sampler in samplers.values():
        sampler.close()
    return {"workers": workers, "batch_size": batch_size, "seconds_per_batch": seconds,
            "workers_speedup": seconds["1"] / seconds[str(workers)]}
