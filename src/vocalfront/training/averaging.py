"""Weight averaging: one detector from the weights a run passed through late in its training.

Averaging the weights of several checkpoints from the low-learning-rate end of a run (stochastic
weight averaging, Izmailov et al. 2018; the equal-weight form of the exponential moving averages
common in vision training) lands nearer the middle of the flat region the optimiser wanders in
than any single checkpoint, which tends to generalise better, at no cost at inference.

Every floating-point entry of the state dicts is averaged, batch-normalisation running means and
variances included (as weight EMAs do; the checkpoints are close, so their statistics are too);
integer entries (``num_batches_tracked``) are taken from the newest state. Whether the average is
better is for validation to say (``scripts/calibrate_model.py --average`` calibrates it there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..errors import VocalfrontError
from .checkpoint import read_state


def average_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of model state dicts with the same keys, shapes and dtypes.

    Floating-point tensors are summed in float64 and cast back to their dtype; other tensors
    come from the last state. One state gives a copy of it; none, or states that do not match,
    are a :class:`VocalfrontError`.
    """
    if not states:
        raise VocalfrontError("no states to average")
    last = states[-1]
    for index, state in enumerate(states):
        if state.keys() != last.keys():
            differing = sorted(set(state) ^ set(last))[:3]
            raise VocalfrontError(f"state {index} has other entries than the last ({', '.join(differing)})")
        for key, value in state.items():
            if value.shape != last[key].shape or value.dtype != last[key].dtype:
                raise VocalfrontError(f"state {index}: {key} is {value.dtype} {tuple(value.shape)}, "
                                      f"the last state's {last[key].dtype} {tuple(last[key].shape)}")
    averaged = {}
    for key, value in last.items():
        if value.is_floating_point():
            total = sum(state[key].to(torch.float64) for state in states)
            averaged[key] = (total / len(states)).to(value.dtype)
        else:
            averaged[key] = value.clone()
    return averaged


def average_run_states(paths: Sequence[str | Path]) -> tuple[dict[str, torch.Tensor], list[int]]:
    """The averaged detector weights of training-state files (:mod:`.checkpoint`), and their
    updates in the order given; the states may come from several runs (fine-tunes from one start:
    a model soup) but not from differently configured networks, which are refused."""
    if not paths:
        raise VocalfrontError("no training states to average")
    states = [read_state(path) for path in paths]
    for path, state in zip(paths, states, strict=True):
        if state["config"]["model"] != states[0]["config"]["model"]:
            raise VocalfrontError(f"{path}: a state of a run with another model configuration")
    return average_states([state["model"] for state in states]), [int(state["update"]) for state in states]
