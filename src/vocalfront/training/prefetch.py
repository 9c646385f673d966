"""The next batch of training examples made while the current one trains.

Making a batch (cutting, voice processing, remixing, augmenting: numpy, scipy, soxr and
pedalboard, which release the GIL while they work) is a large share of each update of the
default detector on a CPU, and most of it on an accelerator. :class:`PrefetchingSampler` makes
batch ``n + 1`` in a background thread while batch ``n`` trains (``python -m benchmarks --only
training`` times updates both ways). It hands out exactly the batches of the sampler it wraps,
in the same order, so training is the same bit for bit with or without it, and its position is
that of the first batch not yet handed out: a run resumed from a checkpoint draws that batch
again.
"""

from __future__ import annotations

import contextlib
import copy
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .sampler import Batch, ExampleLayout, ExampleSampler, ShardedSampler


@dataclass(frozen=True)
class _Ahead:
    """A batch being made ahead: its size, the sampler's position before it, the batch."""

    batch_size: int
    position: dict[str, Any]
    batch: Future[Batch]


class PrefetchingSampler:
    """``sampler``'s batches, each made in a background thread while the one before it trains.

    Example::

        >>> examples = PrefetchingSampler(sampler)
        >>> batch = examples.sample(6)                    # made now; the next 6 are started
        >>> last = examples.sample(6, draw_next=False)    # nothing started after the last update
        >>> examples.close()

    ``sample(n)`` returns the batch made ahead when it has ``n`` examples; a batch of another size
    is made in place, from the position the one made ahead started at. An error while making a
    batch is raised by the ``sample`` call that hands it out.
    """

    def __init__(self, sampler: ExampleSampler | ShardedSampler):
        self.sampler = sampler
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vocalfront-examples")
        self._ahead: _Ahead | None = None

    @property
    def layout(self) -> ExampleLayout:
        return self.sampler.layout

    def sample(self, batch_size: int, draw_next: bool = True) -> Batch:
        """The next ``batch_size`` examples, stacked; the batch after them (of the same size) is
        started in the background when ``draw_next``."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.batch_size == batch_size:
            batch = ahead.batch.result()
        else:
            if ahead is not None:
                self._rewind(ahead)
            batch = self.sampler.sample(batch_size)
        if draw_next:
            position = copy.deepcopy(self.sampler.state_dict())
            self._ahead = _Ahead(batch_size, position, self._worker.submit(self.sampler.sample, batch_size))
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The position of the first batch not yet handed out (the wrapped sampler's format)."""
        return copy.deepcopy(self._ahead.position) if self._ahead else self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (a batch made ahead is dropped)."""
        self._drop_ahead()
        self.sampler.load_state_dict(state)

    def close(self) -> None:
        """Drop the batch made ahead, stop the background thread and close the sampler."""
        self._drop_ahead()
        self._worker.shutdown()
        self.sampler.close()

    def _drop_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            self._rewind(ahead)

    def _rewind(self, ahead: _Ahead) -> None:
        """Wait until ``ahead``'s batch is made (its error, if any, is not raised: the batch is
        never handed out), then put the sampler back where it was before that batch."""
        with contextlib.suppress(Exception):
            ahead.batch.result()
        self.sampler.load_state_dict(ahead.position)
