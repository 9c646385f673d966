"""Training throughput in labelled frames per second: excerpt mode vs dense mode.

Random audio, the default detector (mel front-end, Schlüter & Grill's CNN with batch
normalisation, 115-frame context, 8 margin frames); a step is one Adam update (forward, backward,
step); example sampling is not included. Excerpt mode labels one frame per 115-frame excerpt,
dense mode ``--dense-frames`` frames per segment of ``115 + dense_frames - 1``. Steps of both
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


def training_step(layout: ExampleLayout, batch_size: int, dense: bool) -> Callable[[], None]:
    """One Adam update of a fresh default detector on a fixed random batch, as a function."""
    torch.manual_seed(0)
    detector = build_model(ModelConfig()).train()
    optimizer = make_optimizer(detector, TrainConfig())
    batch = random_batch(layout, batch_size, detector.grid.num_samples(layout.frames), 0)

    def step() -> None:
        loss = training_loss(detector, batch, layout, (0.02, 0.98), dense)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


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
    context, margin = ModelConfig().context, TrainConfig().margin_frames
    modes = {"excerpt": (ExampleLayout(context, 1, margin), args.batch, False),
             "dense": (ExampleLayout(context, args.dense_frames, margin), args.dense_batch, True)}
    seconds = median_seconds({name: training_step(*mode) for name, mode in modes.items()},
                             repeats=args.repeats)
    rates = {name: batch * layout.labelled / seconds[name]
             for name, (layout, batch, _) in modes.items()}
    print(f"torch threads: {torch.get_num_threads()}, median of {args.repeats} steps each")
    for name, (layout, batch, _) in modes.items():
        print(f"{name:8s} batch {batch:3d} x {layout.labelled:3d} labelled frames: "
              f"{seconds[name]:6.2f} s/step, {rates[name]:8.1f} labelled frames/s")
    print(f"dense / excerpt: {rates['dense'] / rates['excerpt']:.1f}x labelled frames per second")


if __name__ == "__main__":
    main()
