"""Training examples: random stretches of the training clips, remixed and augmented as waveforms.

Everything happens on the waveform, before any front-end, so every front-end sees the same audio.
An example is a stretch of ``layout.frames`` frames of audio (``layout.num_samples`` samples on
the detector's grid): ``margin`` frames, ``context // 2`` frames of left context, ``labelled``
frames whose labels are the targets (1 in excerpt mode: the centre frame), ``context // 2``
frames of right context and ``margin`` frames again.

Sampling: a clip is drawn with probability proportional to ``frames + labelled - 1`` and the
first labelled frame uniformly in ``[-(labelled - 1), frames - 1]``, so that every frame of the
training set is equally likely to be labelled. With ``source_weights`` (clip source → weight),
a source is drawn first with those weights, then a clip of it as above. Stretches reaching
beyond a clip (near its ends, or because the clip is shorter than an example) are zero-padded;
those frames are marked as outside the clip (:attr:`Batch.inside` is False), and the trainer
sets their normalised features to 0 - the per-band training mean, the padding whole-file
inference uses (:func:`vocalfront.model.pad_context`) - and excludes their labels from the loss.

With augmentation, a longer piece is cut (enough for the fastest speed change), its remix mode
drawn, its voice stem processed like a produced vocal unless that mode mutes it
(``voice_effects``, :func:`vocalfront.data.production.process_voice`: a third of the examples
hold no voice, and the pitch shift is most of an example's cost), remixed (solo voices with
``solo_remix``, over an all-zero accompaniment), augmented
(:func:`vocalfront.data.augment.augment`, which re-maps the labels) and its middle
``layout.frames`` frames kept. Labels of frames outside the clip travel through the
augmentation as the code -1, so the outside region is exact after a speed change too. All
randomness of an example comes from one :class:`numpy.random.Generator`:
:class:`ExampleSampler` makes every example with the same generator, whose state is its
position; :class:`ShardedSampler` (training on several processes with
``train.sampling = "global"``) gives every example of the run a generator of its own, seeded
with the example's index, so that processes can make disjoint shares of one batch.
:func:`make_sampler` builds a run's sampler from its configuration, on the detector's frame grid.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from ..data.augment import AugmentConfig, augment
from ..data.production import ImpulseResponses, VoiceEffectsConfig, process_voice
from ..data.readers import ClipDataset, Mir1kDataset
from ..data.remix import InstrumentalPool, RemixConfig, remix
from ..errors import VocalfrontError
from ..grid import FrameGrid
from ..model import Detector
from .config import Config
from .distributed import SINGLE, DistributedEnv
from .sources import Source

OUTSIDE = -1.0
"""Label code of frames outside the clip while an example is being made."""
SAMPLER_STREAM, GLOBAL_SAMPLER_STREAM = 1, 3
"""Sub-streams of ``train.seed`` for example sampling with ``train.sampling = "rank"`` and
``"global"``."""


@dataclass(frozen=True)
class TrainingClip:
    """A training clip in memory.

    ``audio``: float32 ``(stems, samples)`` at the grid's rate, either ``(voice, accompaniment)``
    (for remixing) or ``(mixture,)`` - a solo voice (``solo``) when there is no accompaniment;
    ``labels``: float32 0/1 ``(frames,)`` on the grid; ``source``: the corpus it comes from.
    """

    name: str
    audio: np.ndarray
    labels: np.ndarray
    source: str = ""
    solo: bool = False

    @property
    def num_frames(self) -> int:
        return len(self.labels)


class Batch(NamedTuple):
    """Training examples: ``audio`` float32 ``(batch, samples)``; ``labels`` float32 0/1 and
    ``inside`` bool ``(batch, frames)``, one per frame of the example (labels are 0 outside)."""

    audio: np.ndarray
    labels: np.ndarray
    inside: np.ndarray


@dataclass(frozen=True)
class ExampleLayout:
    """Frame layout of an example: ``context`` (CNN input), ``labelled`` and ``margin`` frames."""

    context: int
    labelled: int = 1
    margin: int = 0

    @property
    def frames(self) -> int:
        """Frames per example: ``context + labelled - 1 + 2 * margin``."""
        return self.context + self.labelled - 1 + 2 * self.margin

    @property
    def first_labelled(self) -> int:
        """Index of the first labelled frame within an example."""
        return self.margin + self.context // 2

    @property
    def labelled_slice(self) -> slice:
        """The labelled frames within an example."""
        return slice(self.first_labelled, self.first_labelled + self.labelled)

    @property
    def network_slice(self) -> slice:
        """The frames the CNN sees (the margins dropped)."""
        return slice(self.margin, self.frames - self.margin)


def load_clips(dataset: ClipDataset, stems: bool, progress: bool = False, source: str = "",
               solo: bool = False) -> tuple[list[TrainingClip], list[str]]:
    """Load every clip of ``dataset`` into memory: ``(clips, problems)``.

    ``stems=True`` keeps voice and accompaniment apart (needs a :class:`Mir1kDataset`, or
    ``solo=True``: the dataset's audio is a voice alone). A clip that cannot be loaded is
    skipped with a warning and its one-line message listed in ``problems`` when the dataset's
    ``on_error`` is ``"skip"``; otherwise the error propagates. ``source`` names the clips' corpus.
    """
    if stems and not (solo or isinstance(dataset, Mir1kDataset)):
        raise VocalfrontError("remixing needs separate stems: a MIR-1K dataset or solo voices")
    clips, problems = [], []
    for clip in tqdm(dataset.clips, desc="loading clips", unit="clip", disable=not progress,
                     leave=False):
        try:
            if isinstance(dataset, Mir1kDataset) and stems:
                voice, accompaniment, labels = dataset.load_stems(clip)
                audio = np.stack([voice, accompaniment])
            else:
                item = dataset.load(clip)
                audio, labels = item.audio[None, :], item.labels
        except VocalfrontError as error:
            if dataset.on_error == "raise":
                raise
            warnings.warn(f"skipping clip {clip.name}: {error}", stacklevel=2)
            problems.append(str(error))
            continue
        clips.append(TrainingClip(clip.name, np.ascontiguousarray(audio, np.float32),
                                  np.asarray(labels, np.float32), source, solo))
    if not clips:
        raise VocalfrontError(f"{dataset.root}: no usable clips")
    return clips, problems


def training_clips(sources: Sequence[Source], stems: bool,
                   progress: bool = False) -> tuple[list[TrainingClip], list[str]]:
    """The ``train`` clips of every source (:func:`load_clips`): ``(clips, problems)``."""
    clips: list[TrainingClip] = []
    problems: list[str] = []
    for source in sources:
        loaded, failed = load_clips(source.train, stems, progress, source.name, source.solo)
        clips += loaded
        problems += failed
    return clips, problems


class _ExampleMaker:
    """Makes training examples (see the module docstring) with a generator it is given.

    ``remix_config`` (needs two-stem or solo clips) and ``augment_config`` switch those on;
    ``solo_remix`` is the remix of solo clips (default ``remix_config``); ``pool`` supplies the
    music of remix modes ``external`` and ``instrumental``; ``voice_effects`` (with plate
    impulse responses ``plates``) processes voice stems before remixing; ``source_weights``
    (source → weight) draws sources with these weights (sources not named are never drawn).
    """

    def __init__(self, clips: Sequence[TrainingClip], grid: FrameGrid, layout: ExampleLayout,
                 remix_config: RemixConfig | None = None, pool: InstrumentalPool | None = None,
                 augment_config: AugmentConfig | None = None, *,
                 solo_remix: RemixConfig | None = None,
                 voice_effects: VoiceEffectsConfig | None = None,
                 plates: ImpulseResponses | None = None,
                 source_weights: dict[str, float] | None = None):
        if not clips:
            raise VocalfrontError("no training clips")
        if remix_config is not None and any(clip.audio.shape[0] != 2 and not clip.solo for clip in clips):
            raise VocalfrontError("remixing needs (voice, accompaniment) stems or a solo voice for "
                                  "every clip")
        for clip in clips:
            if clip.num_frames != grid.num_frames(clip.audio.shape[1]):
                raise VocalfrontError(
                    f"clip {clip.name}: {clip.num_frames} labels for {clip.audio.shape[1]} samples, "
                    f"which make {grid.num_frames(clip.audio.shape[1])} frames of {grid.hop} samples: "
                    "read the clips on the detector's frame grid")
        self.clips, self.grid, self.layout = list(clips), grid, layout
        self.remix_config, self.pool, self.augment_config = remix_config, pool, augment_config
        self.solo_remix = solo_remix or remix_config
        self.voice_effects = voice_effects if voice_effects is not None and voice_effects.enabled else None
        self.plates = plates
        self._weights = _clip_weights(self.clips, layout.labelled, source_weights)
        fastest = 1.0
        if augment_config is not None and augment_config.speed_probability > 0:
            fastest = max(1.0, augment_config.speed_range[1])
        # a speed change by r turns n input frames into about n / r: cut enough, plus a guard
        self.piece_frames = layout.frames if fastest == 1.0 else math.ceil(fastest * layout.frames) + 4

    @property
    def num_samples(self) -> int:
        """Samples per example."""
        return self.grid.num_samples(self.layout.frames)

    def close(self) -> None:
        """Release what the sampler holds while it makes examples (nothing, unless it has
        worker threads)."""

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One example made with ``rng``: audio ``(num_samples,)``, labels and inside flags
        ``(layout.frames,)``."""
        clip = self.clips[rng.choice(len(self.clips), p=self._weights)]
        start = int(rng.integers(-(self.layout.labelled - 1), clip.num_frames))
        first = start - self.layout.first_labelled - (self.piece_frames - self.layout.frames) // 2
        audio, codes = self._piece(clip, first, rng)
        if self.augment_config is not None:
            audio, codes = augment(audio, codes, rng, self.augment_config, self.grid)
        offset = (len(codes) - self.layout.frames) // 2
        audio = audio[offset * self.grid.hop : offset * self.grid.hop + self.num_samples]
        codes = codes[offset : offset + self.layout.frames]
        return audio, np.maximum(codes, 0.0), codes != OUTSIDE

    def _piece(self, clip: TrainingClip, first: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Mixture (remixed if configured) and label codes of ``piece_frames`` frames from frame
        ``first`` of ``clip``; everything outside the clip is silence with code :data:`OUTSIDE`."""
        hop, length = self.grid.hop, self.grid.num_samples(self.piece_frames)
        begin, end = first * hop, first * hop + length
        stems = np.zeros((clip.audio.shape[0], length), np.float32)
        lo, hi = max(begin, 0), min(end, clip.audio.shape[1])
        stems[:, lo - begin : hi - begin] = clip.audio[:, lo:hi]
        frames = first + np.arange(self.piece_frames)
        inside = (frames >= 0) & (frames < clip.num_frames)
        labels = np.where(inside, clip.labels[np.clip(frames, 0, clip.num_frames - 1)], 0.0)
        labels = labels.astype(np.float32)
        if self.remix_config is None:
            audio = stems.sum(axis=0)
        else:
            if clip.solo:
                stems = np.concatenate([stems, np.zeros_like(stems)])
            config = self.solo_remix if clip.solo else self.remix_config
            drawn = config.draw(rng)
            if self.voice_effects is not None and drawn[0].keeps_voice:
                stems[0] = process_voice(stems[0], rng, self.voice_effects, self.plates,
                                         self.grid.sample_rate)
            mixed = remix(stems[0], stems[1], labels, rng, config, self.pool, self.grid, drawn)
            audio, labels = mixed.audio, mixed.labels
            audio[: max(lo - begin, 0)] = 0.0  # silence outside the clip, whatever the remix added
            audio[max(hi - begin, 0) :] = 0.0
        return audio, np.where(inside, labels, np.float32(OUTSIDE)).astype(np.float32)


def _clip_weights(clips: Sequence[TrainingClip], labelled: int,
                  source_weights: dict[str, float] | None) -> np.ndarray:
    """Probability of drawing each clip (see the module docstring), ``(clips,)``."""
    sizes = np.array([clip.num_frames + labelled - 1 for clip in clips], dtype=float)
    if not source_weights:
        return sizes / sizes.sum()
    sources = np.array([clip.source for clip in clips])
    weights = np.zeros(len(clips))
    for source, weight in source_weights.items():
        if weight < 0:
            raise VocalfrontError(f"source weight of {source!r} must be >= 0, got {weight}")
        mine = sources == source
        if weight > 0 and not mine.any():
            raise VocalfrontError(f"source {source!r} has weight {weight} but no training clips")
        if mine.any():
            weights[mine] = weight * sizes[mine] / sizes[mine].sum()
    if weights.sum() <= 0:
        raise VocalfrontError("source weights select no training clips")
    return weights / weights.sum()


def _stack(examples: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Batch:
    return Batch(*(np.stack(parts) for parts in zip(*examples, strict=True)))


class ExampleSampler(_ExampleMaker):
    """Draws :class:`Batch` es of training examples from one generator ``rng``, whose state (with
    the number of examples drawn) is the sampler's position. Other arguments as
    :class:`_ExampleMaker`."""

    def __init__(self, clips: Sequence[TrainingClip], grid: FrameGrid, layout: ExampleLayout,
                 rng: np.random.Generator, remix_config: RemixConfig | None = None,
                 pool: InstrumentalPool | None = None, augment_config: AugmentConfig | None = None,
                 **options: Any):
        super().__init__(clips, grid, layout, remix_config, pool, augment_config, **options)
        self.rng = rng
        self.examples_drawn = 0

    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` new examples, stacked."""
        return _stack([self.example() for _ in range(batch_size)])

    def example(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next example (see :meth:`draw`)."""
        example = self.draw(self.rng)
        self.examples_drawn += 1
        return example

    def state_dict(self) -> dict[str, Any]:
        """Position of the sampler: its generator's state and the number of examples drawn."""
        return {"rng": self.rng.bit_generator.state, "examples_drawn": self.examples_drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.rng.bit_generator.state = state["rng"]
        self.examples_drawn = int(state["examples_drawn"])


class ShardedSampler(_ExampleMaker):
    """One process's share of global batches that do not depend on the number of processes.

    Example ``k`` of the run (counted over all processes) is made with its own generator,
    ``numpy.random.default_rng((*key, k))``. A global batch of ``world_size * batch_size``
    examples holds examples ``n, n + 1, ...`` (``n``: examples drawn so far by all processes);
    process ``rank`` makes every ``world_size``-th of them, starting at ``n + rank``. So the
    processes together train on exactly the examples one process would with the global batch
    size, and the position (``examples_drawn``, counted over all processes) is the same in
    every process. ``workers`` > 1 threads make the examples of a batch side by side (the same
    examples: each has its own generator; :meth:`close` stops them). Other arguments as
    :class:`_ExampleMaker`.
    """

    def __init__(self, clips: Sequence[TrainingClip], grid: FrameGrid, layout: ExampleLayout,
                 key: Sequence[int], rank: int = 0, world_size: int = 1,
                 remix_config: RemixConfig | None = None, pool: InstrumentalPool | None = None,
                 augment_config: AugmentConfig | None = None, workers: int = 1, **options: Any):
        if not 0 <= rank < world_size:
            raise VocalfrontError(f"rank {rank} is not in [0, {world_size})")
        super().__init__(clips, grid, layout, remix_config, pool, augment_config, **options)
        self.key, self.rank, self.world_size = tuple(int(part) for part in key), rank, world_size
        self.examples_drawn = 0
        self._workers = (ThreadPoolExecutor(workers, thread_name_prefix="vocalfront-example")
                         if workers > 1 else None)

    def sample(self, batch_size: int) -> Batch:
        """This process's ``batch_size`` examples of the next global batch, stacked."""
        first = self.examples_drawn + self.rank
        indices = range(first, first + batch_size * self.world_size, self.world_size)
        mapping = map if self._workers is None else self._workers.map
        batch = _stack(list(mapping(self.example_at, indices)))
        self.examples_drawn += batch_size * self.world_size
        return batch

    def example_at(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Example ``index`` of the run (see :meth:`draw`), made with its own generator."""
        return self.draw(np.random.default_rng((*self.key, index)))

    def close(self) -> None:
        """Stop the worker threads, if any."""
        if self._workers is not None:
            self._workers.shutdown()

    def state_dict(self) -> dict[str, Any]:
        """Position: the number of examples drawn by all processes together."""
        return {"examples_drawn": self.examples_drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (of any process of the run)."""
        self.examples_drawn = int(state["examples_drawn"])


def make_sampler(clips: list[TrainingClip], detector: Detector, config: Config,
                 pool: InstrumentalPool | None, env: DistributedEnv = SINGLE,
                 restart: int | None = None,
                 plates: ImpulseResponses | None = None,
                 source_weights: dict[str, float] | None = None) -> ExampleSampler | ShardedSampler:
    """Process ``env.rank``'s example sampler on ``detector``'s frame grid and context, seeded
    from ``train.seed`` (see ``train.sampling``). ``source_weights``: the share of examples per
    source (default ``data.source_weights``; a run passes those of the sources it opened,
    :func:`~vocalfront.training.sources.opened_weights`).

    ``rank`` sampling: a generator seeded by ``(seed, stream)`` in process 0 (as in a single
    process) and ``(seed, stream, rank)`` in process ``rank``; ``restart`` (an update count)
    gives a process that joins a resumed run a stream distinct from all earlier ones.
    """
    data, train_config = config.data, config.train
    remix_config = _without_music(data.remix, pool) if data.remix_enabled else None
    layout = ExampleLayout(detector.context, train_config.labelled_frames, train_config.margin_frames)
    augment_config = data.augment if data.augment_enabled else None
    options = {"solo_remix": _without_music(data.solo_remix, pool), "voice_effects": data.voice_effects,
               "plates": plates,
               "source_weights": (data.source_weights if source_weights is None else source_weights) or None}
    if train_config.sampling == "global":
        return ShardedSampler(clips, detector.grid, layout, (train_config.seed, GLOBAL_SAMPLER_STREAM),
                              env.rank, env.world_size, remix_config, pool, augment_config,
                              workers=train_config.example_workers, **options)
    key = [train_config.seed, SAMPLER_STREAM] + ([env.rank] if env.rank else [])
    key += [] if restart is None else [restart]
    return ExampleSampler(clips, detector.grid, layout, np.random.default_rng(key), remix_config,
                          pool, augment_config, **options)


def _without_music(config: RemixConfig, pool: InstrumentalPool | None) -> RemixConfig:
    """``config``, with the modes that need music off (and a warning) when there is no pool."""
    if pool is not None or not config.needs_music:
        return config
    warnings.warn("data.instrumental is not set: remix modes 'external' and 'instrumental' are off",
                  stacklevel=3)
    return dataclasses.replace(config, external=0.0, instrumental=0.0)
