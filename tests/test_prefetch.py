"""The batch made ahead in the background: same batches, same positions, errors where they belong."""

from __future__ import annotations

import numpy as np
import pytest
from test_training import ramp_clip

from vocalfront.data.augment import AugmentConfig
from vocalfront.grid import DEFAULT_GRID as GRID
from vocalfront.training import ExampleLayout, ExampleSampler, ShardedSampler
from vocalfront.training.prefetch import PrefetchingSampler


def example_sampler(seed: int = 3) -> ExampleSampler:
    return ExampleSampler([ramp_clip()], GRID, ExampleLayout(25), np.random.default_rng(seed),
                          augment_config=AugmentConfig())


def assert_same_batches(got, expected) -> None:
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        for part, other in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(part, other)


@pytest.mark.parametrize("make", [example_sampler, lambda: ShardedSampler(
    [ramp_clip()], GRID, ExampleLayout(25), key=(0, 3), augment_config=AugmentConfig())],
    ids=["one generator", "a generator per example"])
def test_prefetched_batches_are_the_samplers_own_in_its_order(make):
    plain = make()
    expected = [plain.sample(size) for size in (3, 3, 2, 2, 4)]
    prefetching = PrefetchingSampler(make())
    got = [prefetching.sample(size) for size in (3, 3, 2, 2, 4)]
    prefetching.close()
    assert_same_batches(got, expected)


def test_the_position_is_that_of_the_first_batch_not_yet_handed_out():
    prefetching = PrefetchingSampler(example_sampler())
    prefetching.sample(3)
    position = prefetching.state_dict()     # batch 2 is being made ahead: not counted
    assert position["examples_drawn"] == 3
    expected = prefetching.sample(3)
    prefetching.close()
    resumed = PrefetchingSampler(example_sampler(seed=99))
    resumed.load_state_dict(position)
    assert_same_batches([resumed.sample(3)], [expected])
    resumed.close()


def test_loading_a_position_drops_the_batch_made_ahead():
    prefetching = PrefetchingSampler(example_sampler())
    start = prefetching.state_dict()
    first = prefetching.sample(2)
    prefetching.load_state_dict(start)
    assert_same_batches([prefetching.sample(2)], [first])
    prefetching.close()


def test_nothing_is_made_ahead_after_the_last_batch():
    sampler = example_sampler()
    prefetching = PrefetchingSampler(sampler)
    prefetching.sample(2, draw_next=False)
    assert sampler.examples_drawn == 2 and prefetching.state_dict()["examples_drawn"] == 2
    prefetching.close()


class FailingOnSecondBatch(ExampleSampler):
    def sample(self, batch_size: int):
        if self.examples_drawn:
            raise RuntimeError("clip 7 is broken")
        return super().sample(batch_size)


def test_an_error_making_a_batch_is_raised_when_that_batch_is_handed_out():
    prefetching = PrefetchingSampler(FailingOnSecondBatch(
        [ramp_clip()], GRID, ExampleLayout(25), np.random.default_rng(0)))
    prefetching.sample(2)                   # the second batch fails in the background
    with pytest.raises(RuntimeError, match="clip 7 is broken"):
        prefetching.sample(2)
    prefetching.close()


def test_a_batch_that_failed_but_is_never_handed_out_raises_nothing():
    prefetching = PrefetchingSampler(FailingOnSecondBatch(
        [ramp_clip()], GRID, ExampleLayout(25), np.random.default_rng(0)))
    start = prefetching.sample(2)
    prefetching.close()
    assert len(start.audio) == 2
