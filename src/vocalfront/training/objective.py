"""What training minimises and how it steps: the loss of a batch, Adam and the learning-rate
schedule.

The loss is the binary cross-entropy of the labelled frames inside their clips
(:func:`loss_terms`; labels 0/1 become ``train.targets``); :class:`TrainingObjective` is the
module that :class:`~torch.nn.parallel.DistributedDataParallel` wraps. The CNN learns at
:func:`effective_lr`, learnable front-end and compression parameters at that times
``train.frontend_lr_multiplier`` (:func:`make_optimizer`), both scaled per update by
:func:`lr_factor` (:func:`apply_lr_schedule`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..model import Detector
from .config import TrainConfig
from .sampler import Batch, ExampleLayout


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


def apply_lr_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, update: int) -> None:
    """Every parameter group at its base rate times :func:`lr_factor` of ``update`` (the base
    rate is kept in the group as ``initial_lr``)."""
    factor = lr_factor(config, update)
    for group in optimizer.param_groups:
        group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor


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
