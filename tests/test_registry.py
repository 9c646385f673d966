"""Front-ends built directly name themselves: their config rebuilds them through the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalfront.errors import VocalfrontError
from vocalfront.frontends import FilterBank, MelSpectrogram, available_frontends, build_frontend

DIRECT = {
    "mel": lambda: MelSpectrogram(),
    "fb": lambda: FilterBank(),
    "fb-noavg": lambda: FilterBank(averaging="none"),
    "fb-gauss": lambda: FilterBank(averaging="gaussian-formula"),
    "fb-learn-cf": lambda: FilterBank(learn=("cf",)),
    "fb-learn-avg": lambda: FilterBank(learn=["avg"]),
    "fb-learn-bw": lambda: FilterBank(learn=("bw",)),
    "fb-free": lambda: FilterBank(learn=("free",)),
}


def test_every_registered_front_end_has_a_direct_construction_here():
    assert sorted(DIRECT) == available_frontends()


@pytest.mark.parametrize("name", DIRECT)
def test_a_front_end_built_directly_rebuilds_from_its_config_with_the_same_output(name):
    frontend = DIRECT[name]()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in frontend.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))  # as if trained
    config = frontend.get_config()
    assert config["name"] == name
    rebuilt = build_frontend(**config)
    rebuilt.load_state_dict(frontend.state_dict())
    assert type(rebuilt) is type(frontend) and rebuilt.get_config() == config
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 22050)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(rebuilt(x), frontend(x))


def test_a_combination_without_a_name_of_its_own_rebuilds_from_the_class_name():
    frontend = FilterBank(n_bands=40, learn=("cf", "bw"), averaging="gaussian")
    config = frontend.get_config()
    assert config["name"] == "fb"
    rebuilt = build_frontend(**config)
    assert rebuilt.learn == ("bw", "cf") and rebuilt.averaging == "gaussian" and rebuilt.n_bands == 40


def test_the_name_a_front_end_was_built_under_is_kept():
    assert build_frontend("fb", learn=("cf",)).get_config()["name"] == "fb"
    assert build_frontend("fb-learn-cf").get_config()["name"] == "fb-learn-cf"


def test_an_unregistered_front_end_class_cannot_save_a_config():
    class Unregistered(FilterBank):
        pass

    with pytest.raises(VocalfrontError, match="Unregistered is not registered"):
        Unregistered(n_bands=10).get_config()
