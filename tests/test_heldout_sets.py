"""Validation and test sets of a run: held-out clips of every source, solo voices mixed over
held-out music, held-out music alone; validate() per source."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_training import forbid_decoding, make_tiny_mir1k

from vocalfront.cli import main
from vocalfront.data.solo import split_of_key
from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID as GRID
from vocalfront.training import build_model, load_config, resolve_config, train
from vocalfront.training import validation as validation_module
from vocalfront.training.sources import instrumental_pool, open_sources, opened_weights
from vocalfront.training.validation import (
    HELDOUT_LEVEL,
    INSTRUMENTAL_SOURCE,
    heldout_clips,
    heldout_set,
    validate,
)

TINY = Path(__file__).parents[1] / "configs" / "tiny.toml"


def make_ssvd(root: Path, count: int = 24) -> Path:
    """SSVD-layout recordings: a tone during one note per recording (48 kHz Opus)."""
    (root / "test").mkdir(parents=True)
    t = np.arange(48000 * 2) / 48000
    for index in range(count):
        path = root / "test" / f"{1000 + index}.ogg"
        sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t) * (t > 0.5)).astype(np.float32), 48000,
                 format="OGG", subtype="OPUS")
        path.rename(path.with_suffix(".opus"))
        (root / "test" / f"{1000 + index}.txt").write_text("0.5\t1.9\t64.0\n")
    return root


def make_music(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for folder in ("games", "held-valid", "held-test"):
        (root / folder).mkdir(parents=True)
        sf.write(root / folder / f"{folder}.flac", 0.1 * rng.standard_normal(GRID.sample_rate * 3),
                 GRID.sample_rate)
    return root


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setattr(validation_module, "HELDOUT_MUSIC", (3, 2.0))
    config = resolve_config(load_config(TINY, [
        f"data.root={make_tiny_mir1k(tmp_path / 'mir1k')}", f"data.ssvd={make_ssvd(tmp_path / 'ssvd')}",
        f"data.instrumental={make_music(tmp_path / 'music')}", 'data.instrumental_valid=["held-valid"]',
        'data.instrumental_test=["held-test"]']))
    return config, open_sources(config.data, GRID)



def test_training_music_is_the_named_subfolders_when_instrumental_train_is_set(corpus):
    config, _ = corpus
    music = Path(config.data.instrumental)
    (music / "other").mkdir()
    sf.write(music / "other" / "other.flac", np.full(GRID.sample_rate, 0.1, np.float32), GRID.sample_rate)
    everything = instrumental_pool(config.data, "train", GRID)
    named = instrumental_pool(dataclasses.replace(
        config.data, instrumental_train=("games",)), "train", GRID)
    assert everything is not None and named is not None
    assert sorted(everything.names) == ["games/games.flac", "other/other.flac"]
    assert named.names == ("games/games.flac",)


@pytest.mark.parametrize("setting", ["instrumental_train", "instrumental_valid"])
def test_a_mistyped_music_subfolder_is_refused_before_decoding(corpus, monkeypatch, setting):
    config, _ = corpus
    data = dataclasses.replace(config.data, **{setting: ("held-vlaid",)})
    forbid_decoding(monkeypatch, "the subfolders were checked")
    with pytest.raises(VocalfrontError, match="no subfolder 'held-vlaid'"):
        instrumental_pool(data, "train", GRID)

@pytest.mark.parametrize("split", ["valid", "test"])
def test_heldout_sets_hold_each_sources_clips_mixed_and_music_alone(corpus, split):
    config, sources = corpus
    clips, problems = heldout_clips(config.data, sources, split, seed=0, grid=GRID)
    assert not problems
    by_source = {source: [clip for clip in clips if clip.source == source]
                 for source in {clip.source for clip in clips}}
    expected = {f"{1000 + i}" for i in range(24) if split_of_key(f"ssvd/{1000 + i}") == split}
    assert {clip.name.rpartition("/")[2] for clip in by_source["ssvd"]} == expected
    for clip in by_source["ssvd"]:   # the voice is mixed over music: sound where no note is
        assert clip.audio.shape[0] == 1 and clip.labels.any()
        assert np.abs(clip.audio[0, : GRID.sample_rate // 4]).max() > 1e-3
    music = by_source[INSTRUMENTAL_SOURCE]
    assert len(music) == 3 and not any(clip.labels.any() for clip in music)
    if split == "valid":
        assert {clip.name.split("_")[0] for clip in by_source["mir1k"]} == {"davidson", "yifen"}


def test_level_neutral_heldout_clips_all_mix_to_one_level_whatever_they_hold(corpus):
    config, sources = corpus
    remix = dataclasses.replace(config.data.remix, level_neutral=True)
    neutral = dataclasses.replace(config.data, remix=remix)
    clips, _ = heldout_clips(neutral, sources, "valid", seed=0, grid=GRID)
    plain, _ = heldout_clips(config.data, sources, "valid", seed=0, grid=GRID)
    levels = [float(np.sqrt(np.mean(clip.audio.sum(axis=0) ** 2))) for clip in clips]
    assert levels == pytest.approx([HELDOUT_LEVEL] * len(clips), rel=1e-4)
    assert {clip.source for clip in clips} == {"mir1k", "ssvd", INSTRUMENTAL_SOURCE}
    plain_levels = [float(np.sqrt(np.mean(clip.audio.sum(axis=0) ** 2))) for clip in plain]
    assert max(plain_levels) > 1.5 * min(plain_levels)  # without it, the levels differ
    for a, b in zip(clips, plain, strict=True):  # only the level changes
        np.testing.assert_array_equal(a.labels, b.labels)
        assert np.corrcoef(a.audio.ravel(), b.audio.ravel())[0, 1] == pytest.approx(1.0)


def test_heldout_sets_are_fixed_by_the_seed_and_differ_between_splits(corpus):
    config, sources = corpus
    first, _ = heldout_clips(config.data, sources, "valid", seed=0, grid=GRID)
    again, _ = heldout_clips(config.data, sources, "valid", seed=0, grid=GRID)
    test, _ = heldout_clips(config.data, sources, "test", seed=0, grid=GRID)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.audio, b.audio)
    music = [clip.audio for clip in first if clip.source == INSTRUMENTAL_SOURCE]
    test_music = [clip.audio for clip in test if clip.source == INSTRUMENTAL_SOURCE]
    assert not np.allclose(music[0], test_music[0])


def test_a_runs_heldout_set_is_mixed_with_its_training_seed_unless_given_another(corpus):
    config, sources = corpus
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=5))
    built, problems = heldout_set(config, "test", GRID)
    assert not problems
    for seed, same in ((5, True), (6, False)):
        clips, _ = heldout_clips(config.data, sources, "test", seed, GRID)
        assert [clip.name for clip in clips] == [clip.name for clip in built]
        assert all(np.array_equal(a.audio, b.audio) for a, b in zip(clips, built, strict=True)) == same
    other, _ = heldout_set(config, "test", GRID, seed=6)
    assert not np.array_equal(other[-1].audio, built[-1].audio)


def test_validate_reports_pooled_and_per_source_metrics(corpus):
    config, sources = corpus
    clips, _ = heldout_clips(config.data, sources, "valid", seed=0, grid=GRID)
    torch.manual_seed(0)
    detector = build_model(config.model).eval()
    metrics = validate(detector, clips, median_filter=3)
    assert set(metrics["sources"]) == {"mir1k", "ssvd", INSTRUMENTAL_SOURCE}
    assert metrics["frames"] == sum(part["frames"] for part in metrics["sources"].values())
    assert np.isnan(metrics["sources"][INSTRUMENTAL_SOURCE]["auroc"])  # one class only
    assert 0.0 <= metrics["error"] <= 1.0


def test_validate_with_final_settings_reports_the_error_of_the_label_files(corpus):
    from vocalfront.postprocessing import PostProcessing

    config, sources = corpus
    clips, _ = heldout_clips(config.data, sources, "valid", seed=0, grid=GRID)
    torch.manual_seed(0)
    detector = build_model(config.model).eval()
    plain, limited = (validate(detector, clips, median_filter=3, threshold=0.5,
                               final=PostProcessing(0.5, 3, min_duration, 0.0))
                      for min_duration in (0.0, 5.0))
    assert plain["final_error"] == pytest.approx(plain["error"])       # no limits: the same decisions
    assert (plain["final_recall"], plain["final_specificity"]) == pytest.approx(
        (plain["recall"], plain["specificity"]), nan_ok=True)
    music = limited["sources"][INSTRUMENTAL_SOURCE]
    assert music["final_error"] == 0.0 and music["final_specificity"] == 1.0  # 5 s never fits in 2 s
    assert limited["final_recall"] == 0.0


def test_solo_voices_without_heldout_music_fail_before_any_audio_is_decoded(tmp_path, monkeypatch):
    config = resolve_config(load_config(TINY, [
        f"data.root={make_tiny_mir1k(tmp_path / 'mir1k')}", f"data.ssvd={make_ssvd(tmp_path / 'ssvd')}"]))
    forbid_decoding(monkeypatch, "the held-out music was checked")
    with pytest.raises(VocalfrontError, match=r"valid mixtures of solo voices \(ssvd\) need held-out music"):
        train(config, tmp_path / "run", progress=False)


def test_a_recipe_that_weights_corpora_a_user_lacks_trains_on_the_rest_and_says_so(tmp_path, capsys):
    argv = ["train", "--config", str(TINY), "--out", str(tmp_path / "run"), "train.updates=2",
            f"data.root={make_tiny_mir1k(tmp_path / 'mir1k')}", "data.gtsinger_speech=true",
            "data.source_weights={mir1k = 0.35, ssvd = 0.45, gtsinger = 0.2, gtsinger_speech = 0.05}"]
    assert main(argv) == 0 and (tmp_path / "run" / "model.pt").is_file()
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warned == [
        "vocalfront train: warning: data.gtsinger_speech is set but data.gtsinger is not: no speech",
        "vocalfront train: warning: data.source_weights: ssvd, gtsinger, gtsinger_speech not opened "
        "(no folder given): weight ignored",
        "vocalfront train: warning: data.instrumental is not set: remix modes 'external' and "
        "'instrumental' are off"]


def make_gtsinger(root: Path, singers: int = 21) -> Path:
    """GTSinger-layout recordings: per singer a sung and a spoken take, a tone from 0.5 s (the
    21 singers ``fr00``-``fr20`` fall in all three splits)."""
    t = np.arange(48000 * 2) / 48000
    for folder, take in (("singing", "Control"), ("speech", "Speech")):
        (root / folder).mkdir(parents=True)
        for index in range(singers):
            path = root / folder / f"fr{index:02d}_{take}-ab.ogg"
            sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.5)).astype(np.float32), 48000,
                     format="OGG", subtype="OPUS")
            path.rename(path.with_suffix(".opus"))
    return root


def test_gtsinger_speech_is_a_solo_source_of_its_own_only_when_asked_for(corpus, tmp_path):
    config, _ = corpus
    gtsinger = str(make_gtsinger(tmp_path / "gtsinger"))
    singing = dataclasses.replace(config.data, gtsinger=gtsinger)
    both = dataclasses.replace(singing, gtsinger_speech=True)
    assert [s.name for s in open_sources(singing, GRID)] == ["mir1k", "ssvd", "gtsinger"]
    sources = open_sources(both, GRID)
    assert [s.name for s in sources] == ["mir1k", "ssvd", "gtsinger", "gtsinger_speech"]
    speech = sources[-1]
    assert speech.solo and all("Speech" in clip.name for clip in speech.train.clips)
    clips, _ = heldout_clips(both, sources, "valid", seed=0, grid=GRID)
    spoken = [clip for clip in clips if clip.source == "gtsinger_speech"]
    assert [clip.name.rpartition("/")[2] for clip in spoken] == ["fr20_Speech-ab"]
    assert spoken[0].labels.any() and not spoken[0].labels.all()


def test_gtsinger_speech_without_gtsinger_is_off_with_a_warning(corpus):
    config, _ = corpus
    asked = dataclasses.replace(config.data, gtsinger_speech=True)
    with pytest.warns(UserWarning, match=r"data\.gtsinger_speech is set but data\.gtsinger is not"):
        sources = open_sources(asked, GRID)
    assert [s.name for s in sources] == ["mir1k", "ssvd"]


def test_a_weighted_source_without_its_folder_is_left_out_with_a_warning(corpus):
    config, _ = corpus
    weighted = dataclasses.replace(config.data, source_weights={"mir1k": 0.5, "ssvd": 0.3, "gtsinger": 0.2})
    sources = open_sources(weighted, GRID)
    with pytest.warns(UserWarning, match="gtsinger not opened"):
        assert opened_weights(weighted, sources) == {"mir1k": 0.5, "ssvd": 0.3}


def test_source_weights_name_gtsinger_speech(tmp_path):
    config = load_config(TINY, [f"data.root={tmp_path}", "data.source_weights={gtsinger_speech = 0.1}"])
    assert config.data.source_weights == {"gtsinger_speech": 0.1}
