"""Training throughput in labelled frames per second: excerpt mode vs dense mode, float32 and bf16.

Random audio, the default detector (mel front-end, Schlüter & Grill's CNN with batch
normalisation, 115-frame context, 8 margin frames); a step is one Adam update (forward, backward,
step); example sampling is not included. Excerpt mode labels one frame per 115-frame excerpt,
dense mode ``--dense-frames`` frames per segment of ``115 + dense_frames - 1``; dense bf16 is
dense mode with the forward pass under bfloat16 autocast (``train.bf16``). Steps of all
modes are interleaved (:func:`benchmarks.timing.median_seconds`) so machine noise is shared.
Run from the repository root::

    python -m benchmarks.bench_training --threads 1
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per mode (default 3)")
    parser.add_argument("--batch", type=int, default=32, help="excerpts per update (default 32)")
    parser.add_argument("--dense-batch", type=int, default=4, help="segments per update (default 4)")
    parser.add_argument("--dense-frames", type=int, default=400,
                        help="labelled frames per segment (default 400)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = training_modes(args.batch, args.dense_batch, args.dense_frames)
    seconds, rates = labelled_rates(modes, args.repeats)
    print(f"torch threads: {torch.get_num_threads()}, median of {args.repeats} steps each")
    for name, (layout, batch, _, _) in modes.items():
        print(f"{name:10s} batch {batch:3d} x {layout.labelled:3d} labelled frames: "
              f"{seconds[name]:6.2f} s/step, {rates[name]:8.1f} labelled frames/s")
    print(f"dense / excerpt: {rates['dense'] / rates['excerpt']:.1f}x labelled frames per second; "
          f"dense bf16 / dense: {rates['dense bf16'] / rates['dense']:.2f}x")


if __name__ == "__main__":
    main()
