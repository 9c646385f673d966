"""Weight averaging of a run's training states (vocalfront.training.averaging)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from vocalfront.errors import VocalfrontError
from vocalfront.training.averaging import average_run_states, average_states
from vocalfront.training.checkpoint import save_state
from vocalfront.training.config import TrainConfig


def _state(weight: float, tracked: int) -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.full((2, 3), weight), "norm.running_var": torch.full((3,), 2 * weight),
            "norm.num_batches_tracked": torch.tensor(tracked)}


def test_floating_entries_are_averaged_and_integer_entries_come_from_the_newest_state() -> None:
    averaged = average_states([_state(1.0, 10), _state(2.0, 20), _state(6.0, 30)])
    assert torch.equal(averaged["conv.weight"], torch.full((2, 3), 3.0))
    assert torch.equal(averaged["norm.running_var"], torch.full((3,), 6.0))
    assert averaged["norm.num_batches_tracked"].item() == 30
    assert averaged["conv.weight"].dtype == torch.float32


def test_the_average_of_one_state_is_a_copy_of_it() -> None:
    state = _state(1.5, 3)
    averaged = average_states([state])
    assert all(torch.equal(averaged[key], state[key]) for key in state)
    averaged["conv.weight"] += 1
    assert state["conv.weight"][0, 0].item() == 1.5


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.pop("conv.weight"), "other entries"),
    (lambda s: s.update({"conv.weight": torch.zeros(3, 2)}), "conv.weight is torch.float32 (3, 2)"),
    (lambda s: s.update({"conv.weight": torch.zeros(2, 3, dtype=torch.float64)}), "torch.float64"),
])
def test_states_that_do_not_match_are_refused_with_the_entry_named(change, message: str) -> None:
    odd = _state(1.0, 1)
    change(odd)
    with pytest.raises(VocalfrontError, match=message.replace("(", r"\(").replace(")", r"\)")):
        average_states([odd, _state(2.0, 2)])
    with pytest.raises(VocalfrontError, match="no states"):
        average_states([])


def _write(run: Path, update: int, weight: float, model_config: dict) -> Path:
    return save_state(run, update, {"config": {"model": model_config}, "model": _state(weight, update)},
                      keep=10)


def test_states_of_a_run_are_averaged_in_the_order_given(tmp_path: Path) -> None:
    paths = [_write(tmp_path, update, weight, {"frontend": "fb"})
             for update, weight in ((250, 1.0), (500, 3.0))]
    weights, updates = average_run_states(paths)
    assert updates == [250, 500]
    assert torch.equal(weights["conv.weight"], torch.full((2, 3), 2.0))


def test_states_of_several_runs_of_one_network_are_averaged(tmp_path: Path) -> None:
    soup = [_write(tmp_path / run, update, weight, {"frontend": "fb"})
            for run, update, weight in (("a", 2250, 1.0), ("b", 2750, 2.0), ("c", 2250, 6.0))]
    weights, updates = average_run_states(soup)
    assert updates == [2250, 2750, 2250]
    assert torch.equal(weights["conv.weight"], torch.full((2, 3), 3.0))


def test_states_of_differently_configured_runs_are_refused(tmp_path: Path) -> None:
    first = _write(tmp_path / "a", 250, 1.0, {"frontend": "fb"})
    other = _write(tmp_path / "b", 250, 1.0, {"frontend": "mel"})
    with pytest.raises(VocalfrontError, match="another model configuration"):
        average_run_states([first, other])
    with pytest.raises(VocalfrontError, match="no training states"):
        average_run_states([])


def test_states_at_multiples_of_keep_every_outlive_the_newest_two(tmp_path: Path) -> None:
    for update in range(50, 501, 50):
        save_state(tmp_path, update, {"config": {}, "model": {}}, keep_every=200)
    kept = sorted(int(path.stem.split("-")[1]) for path in tmp_path.glob("state-*.pt"))
    assert kept == [200, 400, 450, 500]
    save_state(tmp_path, 550, {"config": {}, "model": {}})  # without keep_every: only the newest two
    assert sorted(int(path.stem.split("-")[1]) for path in tmp_path.glob("state-*.pt")) == [500, 550]


def test_keep_states_every_must_be_a_multiple_of_checkpoint_every() -> None:
    assert TrainConfig(checkpoint_every=50, keep_states_every=250).keep_states_every == 250
    with pytest.raises(VocalfrontError, match=re.escape("keep_states_every (120) must be a multiple "
                                                       "of checkpoint_every (50)")):
        TrainConfig(checkpoint_every=50, keep_states_every=120)
