"""Training throughput in labelled frames per second: excerpt mode vs dense mode.

Random audio, the default detector (mel front-end, Schlüter & Grill's CNN with batch
normalisation, 115-frame context, 8 margin frames), one Adam update per step (forward, backward,
step) in the same process; example sampling is not included. Excerpt mode labels one frame per
115-frame excerpt, dense mode ``--dense-frames`` frames per segment of ``115 + dense_frames - 1``::

    python benchmarks/bench_training.py --threads 1
"""

from __future__ import annotations

import argparse
import time

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


def random_batch(layout: ExampleLayout, batch_size: int, samples: int, seed: int) -> Batch:
    """Noise at about -20 dBFS with random 0/1 labels, every frame inside its clip."""
    rng = np.random.default_rng(seed)
    audio = (0.1 * rng.standard_normal((batch_size, samples))).astype(np.float32)
    labels = rng.integers(0, 2, (batch_size, layout.frames)).astype(np.float32)
    return Batch(audio, labels, np.ones_like(labels, dtype=bool))


def frames_per_second(layout: ExampleLayout, batch_size: int, dense: bool, steps: int) -> float:
    """Labelled frames per second of ``steps`` timed updates (after one warm-up update)."""
    torch.manual_seed(0)
    detector = build_model(ModelConfig()).train()
    optimizer = make_optimizer(detector, TrainConfig())
    batch = random_batch(layout, batch_size, detector.grid.num_samples(layout.frames), 0)
    for step in range(steps + 1):
        if step == 1:
            started = time.perf_counter()
        loss = training_loss(detector, batch, layout, (0.02, 0.98), dense)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch_size * layout.labelled / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed updates per mode (default 3)")
    parser.add_argument("--batch", type=int, default=32, help="excerpts per update (default 32)")
    parser.add_argument("--dense-batch", type=int, default=4, help="segments per update (default 4)")
    parser.add_argument("--dense-frames", type=int, default=400,
                        help="labelled frames per segment (default 400)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    context, margin = ModelConfig().context, TrainConfig().margin_frames
    excerpt = frames_per_second(ExampleLayout(context, 1, margin), args.batch, False, args.steps)
    dense = frames_per_second(ExampleLayout(context, args.dense_frames, margin), args.dense_batch,
                              True, args.steps)
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"excerpt mode: batch {args.batch} x 1 labelled frame:   {excerpt:9.1f} labelled frames/s")
    print(f"dense mode:   batch {args.dense_batch} x {args.dense_frames} labelled frames: "
          f"{dense:9.1f} labelled frames/s")
    print(f"dense / excerpt: {dense / excerpt:.1f}x")


if __name__ == "__main__":
    main()
