"""Training the singing-voice detector: configuration, example sampling, the training loop, resume.

``vocalfront train --config configs/default.toml --out runs/x`` runs :func:`train` on a
:class:`Config` read by :func:`load_config`; see :mod:`.trainer` for the loop (and where each
of its jobs lives), :mod:`.runfolder` for the run folder and :mod:`.distributed` for training on
several processes (``torchrun``).
"""

from .checkpoint import load_latest_state, save_state
from .config import (
    Config,
    DataConfig,
    EvalConfig,
    ModelConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    resolve_config,
    separate_overrides,
)
from .objective import make_optimizer, training_loss
from .parameters import learnable_parameters
from .runfolder import prepare_run
from .sampler import Batch, ExampleLayout, ExampleSampler, ShardedSampler, TrainingClip, load_clips
from .trainer import TrainResult, build_model, train
from .validation import validate

__all__ = [
    "Batch",
    "Config",
    "DataConfig",
    "EvalConfig",
    "ExampleLayout",
    "ExampleSampler",
    "ModelConfig",
    "ShardedSampler",
    "TrainConfig",
    "TrainResult",
    "TrainingClip",
    "build_model",
    "config_from_dict",
    "config_to_dict",
    "learnable_parameters",
    "load_clips",
    "load_config",
    "load_latest_state",
    "make_optimizer",
    "prepare_run",
    "resolve_config",
    "save_state",
    "separate_overrides",
    "train",
    "training_loss",
    "validate",
]
