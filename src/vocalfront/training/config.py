"""Training configuration: a tree of frozen dataclasses read from TOML, with command-line overrides.

A configuration file has up to four tables, ``[data]``, ``[model]``, ``[train]`` and ``[eval]``
(see :class:`DataConfig`, :class:`ModelConfig`, :class:`TrainConfig`, :class:`EvalConfig`);
anything left out keeps its default. Overrides are ``section.key=value`` strings whose value is
read as a TOML value when it parses as one (``train.updates=2000``, ``train.targets=[0.05, 0.95]``,
``data.augment_enabled=false``) and as a plain string otherwise (``data.root=/data/mir1k``).
Front-end and compression options are free-form tables (``model.frontend_options.averaging=none``).

Every problem (unknown key, wrong type, value out of range) is a one-line
:class:`~vocalfront.errors.VocalfrontError` naming the key, e.g.
``configs/x.toml: unknown config key 'train.lr_decay'``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..data.augment import AugmentConfig
from ..data.production import VoiceEffectsConfig
from ..data.remix import RemixConfig
from ..data.solo import SOLO_READERS
from ..errors import VocalfrontError
from ..evaluation import MAX_SMOOTHING, SMOOTHING_FRAMES
from ..model import MAX_CONTEXT

SOURCES = ("mir1k", *SOLO_READERS)
"""Names of the training sources (``data.source_weights``): MIR-1K, then the solo corpora."""
DATA_FOLDERS = ("valid_root", "ssvd", "gtsinger", "impulse_responses", "instrumental")
"""Data settings besides ``root`` that name a file or folder (checked by :func:`resolve_config`)."""
DATA_ENV = "VOCALFRONT_DATA"
"""Environment variable naming the dataset folder when ``data.root`` is empty."""


@dataclass(frozen=True)
class DataConfig:
    """Where the clips come from and how training examples are made from them.

    Attributes:
        root: dataset folder; empty: ``$VOCALFRONT_DATA``.
        format: ``mir1k`` (fixed singer split, :func:`~vocalfront.data.mir1k_split`),
            ``jamendo`` (the corpus' ``filelists``: ``train`` and ``valid``) or ``folder`` (any
            :class:`~vocalfront.data.LabelledFolder`; needs ``valid_root``).
        valid_root: folder of the validation clips for ``folder`` (and for ``jamendo`` without
            filelists); empty: none.
        cache_dir: decoded-audio cache (:mod:`vocalfront.audio`); empty: ``$VOCALFRONT_CACHE``.
        on_error: ``skip`` bad clips with a warning (listed at the start) or ``raise``.
        remix_enabled: remix voice and accompaniment stems (MIR-1K only) with ``remix``.
        remix: mode weights and gains; modes ``external`` and ``instrumental`` need
            ``instrumental`` and are switched off (with a notice) when that is empty.
        ssvd, gtsinger: folders of the solo-singing corpora SSVD and GTSinger
            (:mod:`vocalfront.data.solo`), trained on as solo voices remixed with ``solo_remix``
            and validated on mixed over held-out music (``instrumental_valid``); empty: unused.
            Format ``mir1k`` only.
        gtsinger_speech: also train and validate on GTSinger's speech recordings (``speech/``
            of ``gtsinger``, the singers reading their lyrics) as voice, the solo source
            ``gtsinger_speech``: songs labelled by lyric timing count rap and spoken words as
            voice. Without ``gtsinger``: no speech (a warning).
        solo_remix: mode weights and gains for the solo voices.
        source_weights: share of training examples per source (``mir1k``, ``ssvd``,
            ``gtsinger``, ``gtsinger_speech``); empty: in proportion to their lengths; a source
            left out of a non-empty table gets none; a source whose folder is not given is
            ignored (a warning), so one recipe trains on whichever corpora a user has.
        voice_effects: production-like processing of voice stems (pitch shift, compression,
            reverb; :mod:`vocalfront.data.production`).
        impulse_responses: folder of plate reverb impulse responses for ``voice_effects``;
            empty: rooms only.
        instrumental: folder of instrumental music for remix modes ``external`` and
            ``instrumental``; empty: none.
        instrumental_valid, instrumental_test: top-level subfolders of ``instrumental`` held
            out of training: the music of the validation and of the test mixtures.
        instrumental_train: the top-level subfolders of ``instrumental`` that training draws
            on, so that a run's music is named by its configuration whatever else lies in the
            folder; empty: every subfolder not held out.
        instrumental_max_seconds: keep only the middle of each instrumental track (0: all).
        augment_enabled: apply the waveform augmentations ``augment`` (speed, EQ, gain).
        augment: augmentation ranges and probabilities.
        norm_clips: training clips (un-augmented, chosen with the seed) whose features fit the
            per-band normalisation; 0: all.
    """

    root: str = ""
    format: Literal["mir1k", "jamendo", "folder"] = "mir1k"
    valid_root: str = ""
    cache_dir: str = ""
    on_error: Literal["skip", "raise"] = "skip"
    remix_enabled: bool = True
    remix: RemixConfig = field(default_factory=RemixConfig)
    ssvd: str = ""
    gtsinger: str = ""
    gtsinger_speech: bool = False
    solo_remix: RemixConfig = field(default_factory=lambda: RemixConfig(
        own=0.0, external=0.8, voice=0.1, accompaniment=0.0, instrumental=0.1))
    source_weights: dict[str, float] = field(default_factory=dict)
    voice_effects: VoiceEffectsConfig = field(default_factory=VoiceEffectsConfig)
    impulse_responses: str = ""
    instrumental: str = ""
    instrumental_valid: tuple[str, ...] = ()
    instrumental_test: tuple[str, ...] = ()
    instrumental_train: tuple[str, ...] = ()
    instrumental_max_seconds: float = 0.0
    augment_enabled: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    norm_clips: int = 100

    def __post_init__(self) -> None:
        _between("instrumental_max_seconds", self.instrumental_max_seconds, 0, 86_400)
        _between("norm_clips", self.norm_clips, 0, 1_000_000)
        _require(not (self.remix_enabled and self.format != "mir1k"),
                 f"remix_enabled needs separate stems (format mir1k), not {self.format!r}; "
                 "set data.remix_enabled=false")
        _require(not ((self.ssvd or self.gtsinger) and not self.remix_enabled),
                 "solo voices (data.ssvd, data.gtsinger) need data.remix_enabled=true")
        unknown = sorted(set(self.source_weights) - set(SOURCES))
        _require(not unknown, f"source_weights: unknown source {unknown[0]!r} "
                              f"(known: {', '.join(SOURCES)})" if unknown else "")
        _require(all(math.isfinite(w) and w >= 0 for w in self.source_weights.values()),
                 "source_weights must be finite and >= 0")
        for first, second in (("valid", "test"), ("train", "valid"), ("train", "test")):
            overlap = (set(getattr(self, f"instrumental_{first}"))
                       & set(getattr(self, f"instrumental_{second}")))
            _require(not overlap,
                     f"instrumental_{first} and instrumental_{second} share {sorted(overlap)}")


@dataclass(frozen=True)
class ModelConfig:
    """The detector: front-end, compression and CNN (:class:`~vocalfront.model.Detector`).

    Attributes:
        frontend: registered front-end name (``mel``, ``fb``, ``fb-noavg``, ``fb-learn-cf``, ...).
        frontend_options: keyword arguments of that front-end.
        compression: ``log`` or ``log1p`` (:func:`~vocalfront.frontends.build_compression`).
        compression_options: its keyword arguments.
        batch_norm: batch normalisation in the CNN (Schlüter's later variant).
        dropout: drop probability before each dense layer.
        context: frames per CNN excerpt (115 ≈ 1.64 s).
    """

    frontend: str = "mel"
    frontend_options: dict[str, Any] = field(default_factory=dict)
    compression: str = "log"
    compression_options: dict[str, Any] = field(default_factory=dict)
    batch_norm: bool = True
    dropout: float = 0.5
    context: int = 115

    def __post_init__(self) -> None:
        _require(0.0 <= self.dropout < 1.0, f"dropout must lie in [0, 1), got {self.dropout!r}")
        _between("context", self.context, 1, MAX_CONTEXT)
        _require(self.context % 2 == 1, f"context must be odd, got {self.context}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, sampling, checkpointing.

    Attributes:
        seed: seeds weight initialisation, example sampling, remixing, augmentation, dropout.
        batch_size: examples per update and process (excerpts, or segments in ``dense`` mode); a run
            on ``W`` processes updates with global batches of ``batch_size * W``.
        updates: total number of parameter updates.
        updates_per_epoch: validation (and a checkpoint) after every this many updates.
        lr: Adam learning rate of the CNN.
        frontend_lr_multiplier: the learnable front-end (and compression) parameters use
            ``lr * frontend_lr_multiplier``.
        targets: smoothed targets ``(non-singing, singing)`` of the binary cross-entropy.
        checkpoint_every: full training state saved every this many updates (the newest two
            are kept).
        keep_states_every: also keep every state whose update is a multiple of this (0: none),
            e.g. for weight averaging afterwards (:mod:`vocalfront.training.averaging`); a
            multiple of ``checkpoint_every``. May change when a run is resumed.
        mode: ``excerpt``: one labelled (centre) frame per ``context``-frame excerpt;
            ``dense``: segments of ``context + dense_frames - 1`` frames, the CNN evaluated
            densely, ``dense_frames`` labelled frames each.
        dense_frames: labelled frames per segment in ``dense`` mode.
        margin_frames: extra frames of audio on each side of every excerpt or segment, dropped
            after the front-end, so that front-ends whose frames see beyond their window (the
            filter banks' filters and averaging) are computed as on a whole file.
        num_threads: torch CPU threads (0: torch's default). Bitwise repeatable runs need the
            same number of threads.
        device: ``cpu``, ``cuda`` (under torchrun: GPU ``LOCAL_RANK`` of each node) or ``cuda:N``
            (one process only). May change when a run is resumed.
        sampling: how the processes of a multi-process run (torchrun, see
            :mod:`.distributed`) draw examples. ``rank``: each has its own example stream,
            seeded by ``(seed, rank)``, rank 0's being that of a single-process run;
            ``global``: every example of the run is drawn from a generator seeded by
            ``(seed, example index)`` and process ``r`` of ``W`` makes examples ``r, r + W, ...``
            of each global batch of ``batch_size * W`` examples, so the examples do not depend
            on ``W`` (a different stream from ``rank`` mode, also for one process).
        example_workers: threads that make a process's examples of a batch side by side
            (``global`` sampling only: each example has its own generator, so the batches are
            the same for any number; the work - pitch shifting, convolution, resampling -
            runs outside Python's GIL). 1: one at a time. May change when a run is resumed.
        scale_lr: multiply ``lr`` by the number of processes (linear scaling for the global
            batch of ``batch_size`` times that number); default: the same ``lr`` for any number.
        lr_schedule: ``constant``, or ``cosine``: linear warm-up over ``warmup_updates``, then
            cosine decay to ``lr * final_lr_fraction`` at ``updates``
            (:func:`vocalfront.training.objective.lr_factor`).
        warmup_updates, final_lr_fraction: see ``lr_schedule``.
        bf16: run the forward pass under bfloat16 autocast (CPU or GPU): faster on CPUs with
            bf16 instructions; the weights and the optimiser stay float32. May change when a
            run is resumed.
        init_from: a detector file (``model.pt`` of a run, or the packaged model) whose weights,
            normalisation included, start a fresh run instead of a random initialisation
            (fine-tuning); its detector must be the ``[model]`` section's but for ``dropout``.
            Empty: none. Made absolute by :func:`resolve_config`.
    """

    seed: int = 0
    batch_size: int = 32
    updates: int = 20000
    updates_per_epoch: int = 1000
    lr: float = 1e-3
    frontend_lr_multiplier: float = 1.0
    targets: tuple[float, float] = (0.02, 0.98)
    checkpoint_every: int = 200
    keep_states_every: int = 0
    mode: Literal["excerpt", "dense"] = "excerpt"
    dense_frames: int = 400
    margin_frames: int = 8
    num_threads: int = 0
    device: str = "cpu"
    sampling: Literal["rank", "global"] = "rank"
    example_workers: int = 1
    scale_lr: bool = False
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_updates: int = 0
    final_lr_fraction: float = 0.05
    bf16: bool = False
    init_from: str = ""

    def __post_init__(self) -> None:
        for name, high in (("batch_size", 4096), ("updates", 100_000_000),
                           ("updates_per_epoch", 100_000_000), ("checkpoint_every", 100_000_000),
                           ("dense_frames", 100_000)):
            _between(name, getattr(self, name), 1, high)
        _between("lr", self.lr, 1e-12, 10.0)
        _between("frontend_lr_multiplier", self.frontend_lr_multiplier, 0.0, 1e6)
        _between("margin_frames", self.margin_frames, 0, 10_000)
        _between("num_threads", self.num_threads, 0, 4096)
        _between("example_workers", self.example_workers, 1, 256)
        _require(self.example_workers == 1 or self.sampling == "global",
                 f"example_workers = {self.example_workers} needs sampling = \"global\" (every example "
                 "its own generator); with \"rank\" sampling examples are made one after another")
        _between("warmup_updates", self.warmup_updates, 0, 100_000_000)
        _between("keep_states_every", self.keep_states_every, 0, 100_000_000)
        _require(self.keep_states_every % self.checkpoint_every == 0,
                 f"keep_states_every ({self.keep_states_every}) must be a multiple of "
                 f"checkpoint_every ({self.checkpoint_every}), or 0")
        low, high = self.targets
        _require(0.0 <= low < high <= 1.0, "targets must be (low, high) with 0 <= low < high <= 1")
        _require(self.warmup_updates >= 0 and 0.0 <= self.final_lr_fraction <= 1.0,
                 "warmup_updates must be >= 0 and final_lr_fraction in [0, 1]")
        _require(re.fullmatch(r"cpu|cuda(:\d+)?", self.device) is not None,
                 f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")

    @property
    def labelled_frames(self) -> int:
        """Labelled frames per example: ``dense_frames`` in dense mode, else 1."""
        return self.dense_frames if self.mode == "dense" else 1


@dataclass(frozen=True)
class EvalConfig:
    """Validation. ``median_filter``: smoothing length in frames (56 = 0.8 s) before thresholding."""

    median_filter: int = SMOOTHING_FRAMES

    def __post_init__(self) -> None:
        _between("median_filter", self.median_filter, 1, MAX_SMOOTHING)


@dataclass(frozen=True)
class Config:
    """A whole training configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise VocalfrontError(message)


def _between(name: str, value: float, low: float, high: float) -> None:
    """``value`` must be a finite number from ``low`` to ``high`` (the error states the range)."""
    _require(math.isfinite(value) and low <= value <= high,
             f"{name} must be from {low:g} to {high:g}, got {value!r}")


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a TOML file (``None``: all defaults) and apply ``section.key=value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(Path(path))
    for item in overrides:
        apply_override(raw, item)
    try:
        return config_from_dict(raw)
    except VocalfrontError as error:
        raise VocalfrontError(str(error) if path is None else f"{path}: {error}") from None


MAX_CONFIG_BYTES = 1 << 20
"""Largest configuration file read (1 MiB; real ones are a few kB)."""


def read_toml(path: Path) -> dict[str, Any]:
    """A configuration file's tables (training or experiment); a missing, special, oversized or
    invalid file is a one-line :class:`VocalfrontError` raised before more than
    :data:`MAX_CONFIG_BYTES` are read."""
    try:
        if not path.is_file():
            raise VocalfrontError(f"{path}: not a regular file (a configuration is a TOML file)")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise VocalfrontError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a configuration")
        return tomllib.loads(data.decode("utf-8"))
    except OSError as error:
        raise VocalfrontError(f"{path}: cannot read config ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise VocalfrontError(f"{path}: invalid TOML ({error})") from None
    except RecursionError:
        raise VocalfrontError(f"{path}: invalid TOML (nested too deeply)") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``raw[a][b]... = value`` from ``"a.b...=value"`` (value parsed as TOML if it can be)."""
    key, equals, text = item.partition("=")
    parts = key.strip().split(".")
    if not equals or not all(parts):
        raise VocalfrontError(f"override {item!r} is not of the form section.key=value")
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = text
    table = raw
    for depth, part in enumerate(parts[:-1]):
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise VocalfrontError(f"override {item!r}: '{'.'.join(parts[: depth + 1])}' is not a table")
    table[parts[-1]] = value


OVERRIDE_WORD = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+=")
"""How a ``section.key=value`` override starts (a file path has no dotted key before an '=')."""


def separate_overrides(words: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """``(files, overrides)``: the command-line ``words`` of a many-files option split into file
    paths and the ``section.key=value`` overrides among them, each list in order.

    argparse gives an option with ``nargs="+"`` every word that follows it, so the overrides of
    ``--models a.pt b.pt data.root=/x`` arrive as two more "files"; a script passes such an
    option's words through this function and adds the overrides to its own.
    """
    files: list[Path] = []
    overrides: list[str] = []
    for word in words:
        if OVERRIDE_WORD.match(str(word)):
            overrides.append(str(word))
        else:
            files.append(Path(word))
    return files, overrides


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """Build a :class:`Config` from nested mappings (TOML tables or :func:`config_to_dict` output)."""
    return _build(Config, raw, "")


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dictionary (lists for tuples) that :func:`config_from_dict` reads back."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def resolve_config(config: Config) -> Config:
    """``config`` with its data folders (``data.root``, ``valid_root``, ``ssvd``, ``gtsinger``,
    ``impulse_responses``, ``instrumental``) and ``train.init_from`` made absolute.

    An empty ``data.root`` is taken from ``$VOCALFRONT_DATA``; neither set is an error, and so
    is a folder or file that does not exist (checked here, before a run folder is touched).
    """
    root = config.data.root or os.environ.get(DATA_ENV, "")
    if not root:
        raise VocalfrontError(f"no dataset: set data.root=DIR or ${DATA_ENV}")
    given = {"root": root, **{name: getattr(config.data, name) for name in DATA_FOLDERS}}
    paths = {name: str(Path(value).expanduser().resolve()) if value else ""
             for name, value in given.items()}
    for name, path in paths.items():
        if path and not Path(path).exists():
            raise VocalfrontError(f"data.{name}={given[name]}: no such file or folder")
    init_from = config.train.init_from
    if init_from:
        if not Path(init_from).expanduser().is_file():
            raise VocalfrontError(f"train.init_from={init_from}: no such file")
        init_from = str(Path(init_from).expanduser().resolve())
    return dataclasses.replace(config, data=dataclasses.replace(config.data, **paths),
                               train=dataclasses.replace(config.train, init_from=init_from))


def _build(cls: type, raw: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``raw``; ``prefix`` names it in errors."""
    where = prefix.rstrip(".") or "the top level"
    if not isinstance(raw, Mapping):
        raise VocalfrontError(f"config key '{where}' must be a table")
    hints = typing.get_type_hints(cls)
    names = [item.name for item in dataclasses.fields(cls)]
    unknown = [key for key in raw if key not in names]
    if unknown:
        raise VocalfrontError(f"unknown config key '{prefix}{unknown[0]}' (known in {where}: "
                              f"{', '.join(names)})")
    values = {key: _convert(hints[key], value, f"{prefix}{key}") for key, value in raw.items()}
    try:
        return cls(**values)
    except VocalfrontError as error:
        raise VocalfrontError(f"[{where}] {error}") from None


def _convert(kind: Any, value: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``kind`` and convert (lists → tuples, int → float)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, f"{key}.")
    if origin is Literal:
        if value not in args:
            raise VocalfrontError(f"config key '{key}' must be one of {', '.join(map(repr, args))}, "
                                  f"got {value!r}")
        return value
    if origin is tuple and args[-1:] == (Ellipsis,):
        if not isinstance(value, list | tuple):
            raise VocalfrontError(f"config key '{key}' must be a list")
        return tuple(_convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise VocalfrontError(f"config key '{key}' must be a list of {len(args)} values")
        return tuple(_convert(arg, item, f"{key}[{i}]") for i, (arg, item) in enumerate(zip(args, value,
                                                                                            strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise VocalfrontError(f"config key '{key}' must be a table")
        if args[1:] and args[1] is not Any:
            return {name: _convert(args[1], item, f"{key}.{name}") for name, item in value.items()}
        return copy.deepcopy(dict(value))
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (bool, int, str) and type(value) is kind:
        return value
    expected = kind.__name__ if isinstance(kind, type | types.GenericAlias) else str(kind)
    raise VocalfrontError(f"config key '{key}' must be {expected}, got {value!r}")
