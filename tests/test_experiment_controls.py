"""Arms of an experiment file: the random-perturbation control (moved by the stated amounts, as
the report measures the learned variants; frozen; one bank per seed), the learning-rate control,
margins; and the test clips' songs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vocalfront.errors import VocalfrontError
from vocalfront.experiment import load_experiment, parse_extra_test
from vocalfront.experiment.controls import control_movement, perturbed_options
from vocalfront.experiment.testset import song_of
from vocalfront.frontends import build_frontend
from vocalfront.training.sampler import TrainingClip

PAPER = Path(__file__).parents[1] / "experiments" / "paper.toml"
OPTIONS = {"n_bands": 40, "block_frames": 256}


def test_perturbed_bank_moved_by_the_stated_median_amounts_and_is_frozen():
    amounts = {"centre": 1.4, "bandwidth": 0.31, "averaging": 0.4}
    options = perturbed_options("fb", OPTIONS, amounts, seed=3)
    moved = control_movement("fb", options)
    for quantity, amount in amounts.items():
        assert moved[f"{quantity}_median"] == pytest.approx(amount, rel=1e-3)
    bank = build_frontend("fb", **options)
    assert bank.learn == () and not any(p.requires_grad for p in bank.parameters())
    centres = np.asarray(options["centres_mel"])
    assert np.all(np.diff(centres) >= 0)


def test_an_unmoved_quantity_stays_as_designed_and_seeds_give_different_banks():
    designed = build_frontend("fb", **OPTIONS)
    first = perturbed_options("fb", OPTIONS, {"averaging": 0.4}, seed=0)
    np.testing.assert_allclose(first["centres_mel"], designed.centres_mel().numpy(), rtol=1e-8)
    np.testing.assert_allclose(first["half_widths_mel"], designed.half_widths_mel().numpy(), rtol=1e-8)
    second = perturbed_options("fb", OPTIONS, {"averaging": 0.4}, seed=1)
    assert first["averaging_sizes"] != second["averaging_sizes"]
    assert perturbed_options("fb", OPTIONS, {"averaging": 0.4}, seed=0) == first


def test_a_perturbation_of_a_learnable_bank_is_refused():
    with pytest.raises(VocalfrontError, match="fixed filter bank with averaging, not 'fb-learn-cf'"):
        perturbed_options("fb-learn-cf", OPTIONS, {"centre": 1.0}, seed=0)


def test_runs_without_a_perturbation_report_no_control_movement():
    assert control_movement("fb", OPTIONS) == {}


def test_learning_rate_control_changes_only_the_frontend_learning_rate():
    paper = load_experiment(PAPER, "paper")
    control, learned = paper.training_config("fb-learn-cf-lr1", 4), paper.training_config("fb-learn-cf", 4)
    assert (control.train.frontend_lr_multiplier, learned.train.frontend_lr_multiplier) == (1.0, 10.0)
    assert control.model == learned.model and control.data == learned.data
    assert len(paper.seeds) >= 10 and paper.training_config("mel", 0).train.updates == 5000


def write_experiment(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text('[experiment]\nfrontends = ["mel", "fb"]\n' + text + "\n[profile.p]\n")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('[experiment.arms.x]\nperturb = { centre = 1.0 }', "arm 'x' needs frontend"),
    ('[experiment.arms.x]\nfrontend = "fb"\nperturb = { width = 1.0 }', "perturb takes centre"),
    ('[experiment.arms.x]\nfrontend = "fb"\nperturb = { centre = -1 }', "perturb takes centre"),
    ('[experiment.arms.x]\nfrontend = "fb"\nlearning = 1', "unknown key 'learning' in arm 'x'"),
    ('[experiment.arms.x]\nfrontend = "cqt"', r"unknown or no front-ends \['cqt'\]"),
    ('[experiment.arms.fb]\nfrontend = "fb"', "arm 'fb' has the name of a registered front-end"),
    ("[experiment.margins]\nauroc = 0.5\nloss = 0.1", r"margins\] takes .* got loss = 0.1"),
    ("[experiment.margins]\nerror = 0", r"margins\] takes .* got error = 0"),
])
def test_malformed_arms_and_margins_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(VocalfrontError, match=message):
        load_experiment(write_experiment(tmp_path, text), "p")


def test_an_arm_is_listed_like_a_front_end_and_keeps_its_name():
    path = Path(__file__).parents[1] / "experiments" / "paper.toml"
    experiment = load_experiment(path, "full", frontends=["mel", "fb-random-cf"])
    assert experiment.frontends == ("mel", "fb-random-cf")
    assert experiment.training_config("fb-random-cf", 0).model.frontend == "fb"


def test_the_test_splits_names_are_reserved_for_it():
    with pytest.raises(VocalfrontError, match="own test split"):
        parse_extra_test("test-mir1k=/data")


@pytest.mark.parametrize(("source", "name", "song"), [
    ("mir1k", "abjones_1_07", "mir1k/abjones_1"),
    ("gtsinger", "fr01_Breathy-C9tU", "gtsinger/fr01"),
    ("gtsinger_speech", "fr01_Speech-x1Yz", "gtsinger/fr01"),
    ("ssvd", "test/1003", "ssvd/test/1003"),
    ("instrumental", "instrumental-004", "instrumental/instrumental-004"),
])
def test_test_clips_are_clustered_by_song(source, name, song):
    clip = TrainingClip(name, np.zeros((1, 10), np.float32), np.zeros(1, np.float32), source)
    assert song_of(clip) == song
