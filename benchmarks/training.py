"""Training throughput in labelled frames per second: excerpt mode vs dense mode, float32 and bf16
(the ``training`` section of ``python -m benchmarks``; ``--only training`` runs it alone).

Random audio, the default detector (mel front-end, Schlüter & Grill's CNN with batch
normalisation, 115-frame context, 8 margin frames); a step is one Adam update (forward, backward,
step); example sampling is not included. Excerpt mode labels one frame per 115-frame excerpt,
dense mode ``dense_frames`` frames per segment of ``115 + dense_frames - 1``; dense bf16 is
dense mode with the forward pass under bfloat16 autocast (``train.bf16``). Steps of all
modes are interleaved (:func:`benchmarks.timing.median_seconds`) so machine noise is shared.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from vocalfront.training import (
    Batch,
    ExampleLayout,
    ModelConfig,
    TrainConfig,
    build_model,
    make_optimizer,
    training_loss,
)

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
