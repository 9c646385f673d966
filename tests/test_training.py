"""Training: configuration, example sampling, the loss in excerpt and dense mode, a tiny run, the CLI."""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import vocalfront
from vocalfront.cli import main
from vocalfront.data.augment import AugmentConfig
from vocalfront.data.remix import InstrumentalPool, RemixConfig
from vocalfront.detector_file import load_detector_file, save_detector
from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID as GRID
from vocalfront.grid import FrameGrid
from vocalfront.inference import predict_waveform
from vocalfront.training import (
    Batch,
    ExampleLayout,
    ExampleSampler,
    ModelConfig,
    TrainConfig,
    TrainingClip,
    build_model,
    config_from_dict,
    config_to_dict,
    learnable_parameters,
    load_config,
    make_optimizer,
    resolve_config,
    separate_overrides,
    train,
    training_loss,
)
from vocalfront.training import trainer as trainer_module
from vocalfront.training.sources import open_sources
from vocalfront.training.validation import heldout_clips

TINY = Path(__file__).parents[1] / "configs" / "tiny.toml"
DEFAULT = Path(__file__).parents[1] / "configs" / "default.toml"
MIR1K_RATE = 16000
TINY_CLIPS = {"Kenshin_1_01": 2.0, "Kenshin_1_02": 1.5, "amy_2_01": 2.5, "amy_2_02": 0.8,
              "davidson_3_01": 2.0, "yifen_4_01": 1.6}
"""Clip name → seconds. Kenshin/amy are training singers, davidson/yifen validation singers;
amy_2_02 is shorter than a 25-frame excerpt (0.38 s)."""


def make_tiny_mir1k(root: Path, seed: int = 0) -> Path:
    """A MIR-1K-layout folder: 16 kHz stereo clips, a tone 'voice' (right) while the 20 ms
    labels say singing, noise 'accompaniment' (left)."""
    rng = np.random.default_rng(seed)
    (root / "Wavfile").mkdir(parents=True)
    (root / "vocal-nonvocalLabel").mkdir()
    for name, seconds in TINY_CLIPS.items():
        n_labels = round((seconds - 0.02) / 0.02)
        labels = (np.arange(n_labels) // 25 + rng.integers(0, 2)) % 2
        times = np.arange(round(seconds * MIR1K_RATE)) / MIR1K_RATE
        sung = labels[np.clip(np.rint((times - 0.02) / 0.02).astype(int), 0, n_labels - 1)]
        voice = 0.3 * np.sin(2 * np.pi * (300 + 200 * rng.random()) * times) * sung
        accompaniment = 0.05 * rng.standard_normal(len(times))
        sf.write(root / "Wavfile" / f"{name}.wav", np.stack([accompaniment, voice], 1), MIR1K_RATE)
        (root / "vocal-nonvocalLabel" / f"{name}.vocal").write_text("".join(f"{v}\n" for v in labels))
    return root


def tiny_config(data_root: Path, *overrides: str):
    """The resolved ``configs/tiny.toml`` on the tiny dataset."""
    return resolve_config(load_config(TINY, [f"data.root={data_root}", *overrides]))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_mir1k(tmp_path_factory.mktemp("mir1k"))


@pytest.fixture(autouse=True)
def keep_thread_count():
    """Training sets torch's thread count for the process (tiny.toml: 1); restore it afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- configuration
def _keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        free_form = ("frontend_options", "compression_options", "source_weights")
        if isinstance(value, dict) and key not in free_form:
            keys |= _keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_default_config_file_lists_every_key_of_the_built_in_defaults():
    with open(DEFAULT, "rb") as handle:
        written = tomllib.load(handle)
    assert _keys(written) == _keys(config_to_dict(load_config(None)))


def test_overrides_are_parsed_as_toml_values_or_else_strings(tmp_path):
    config = load_config(TINY, ["train.updates=3", "train.targets=[0.1, 0.9]", "data.root=/x/y",
                                "model.frontend_options.averaging=none", "data.augment_enabled=false",
                                "train.lr=2e-4"])
    assert config.train.updates == 3 and config.train.targets == (0.1, 0.9)
    assert config.data.root == "/x/y" and not config.data.augment_enabled
    assert config.model.frontend_options == {"n_bands": 25, "averaging": "none"}
    assert config.train.lr == 2e-4 and config.train.batch_size == 4  # untouched keys from the file


def test_config_round_trips_through_a_plain_dictionary():
    config = load_config(TINY, ["train.mode=dense"])
    assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


@pytest.mark.parametrize(("override", "message"), [
    ("train.lr_decay=0.5", "unknown config key 'train.lr_decay'"),
    ("data.augment.speed=2", "unknown config key 'data.augment.speed'"),
    ("trian.updates=2", "unknown config key 'trian'"),
    ("train.updates=many", "config key 'train.updates' must be int"),
    ("train.mode=fast", "config key 'train.mode' must be one of 'excerpt', 'dense'"),
    ("train.batch_size=0", "[train] batch_size must be from 1 to 4096, got 0"),
    ("train.example_workers=0", "[train] example_workers must be from 1 to 256, got 0"),
    ("train.example_workers=4", 'example_workers = 4 needs sampling = "global"'),
    ("data.augment.eq_max_db=-1", "[data.augment] augmentation eq_max_db"),
    ("train.targets=[0.9, 0.1]", "[train] targets must be (low, high)"),
    ('data.instrumental_train=["games", "held"]', "instrumental_train and instrumental_valid share ['held']"),
])
def test_bad_settings_are_one_line_errors_naming_the_key(override, message):
    with pytest.raises(VocalfrontError) as error:
        load_config(TINY, ['data.instrumental_valid=["held"]', override])
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(str(TINY))


def test_overrides_given_among_file_arguments_are_separated_from_the_files():
    files, overrides = separate_overrides(["runs/a/model.pt", "data.root=/x=y", "b.pt",
                                           "data.remix.level_neutral=true", "odd=name.pt"])
    assert files == [Path("runs/a/model.pt"), Path("b.pt"), Path("odd=name.pt")]
    assert overrides == ["data.root=/x=y", "data.remix.level_neutral=true"]


def test_a_malformed_override_is_rejected():
    with pytest.raises(VocalfrontError, match=r"override 'updates' is not of the form section.key=value"):
        load_config(TINY, ["updates"])


def test_unknown_key_in_the_file_is_reported_with_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model]\nfrontnd = 'fb'\n")
    with pytest.raises(VocalfrontError, match=r"bad.toml: unknown config key 'model.frontnd'"):
        load_config(path)


def test_data_root_comes_from_the_environment_when_not_given(monkeypatch, tmp_path):
    monkeypatch.setenv("VOCALFRONT_DATA", str(tmp_path))
    assert resolve_config(load_config(TINY)).data.root == str(tmp_path.resolve())
    monkeypatch.delenv("VOCALFRONT_DATA")
    with pytest.raises(VocalfrontError, match="VOCALFRONT_DATA"):
        resolve_config(load_config(TINY))


@pytest.mark.parametrize("key", ["root", "ssvd", "instrumental"])
def test_a_mistyped_data_folder_is_an_error_before_the_run_folder_is_touched(tiny_data, tmp_path, key,
                                                                             capsys):
    out = tmp_path / "run"
    folders = {"root": tiny_data, "ssvd": "", "instrumental": ""} | {key: tmp_path / "tpyo"}
    settings = [f"data.{name}={value}" for name, value in folders.items() if value]
    assert main(["train", "--config", str(TINY), "--out", str(out), *settings]) == 2
    assert capsys.readouterr().err.strip().endswith(f"data.{key}={tmp_path / 'tpyo'}: no such file or folder")
    assert not out.exists()


def test_remixing_needs_the_mir1k_format():
    with pytest.raises(VocalfrontError, match="remix_enabled needs separate stems"):
        load_config(TINY, ["data.format=folder"])


# ----------------------------------------------------------------------------- sampling
def ramp_clip(seconds: float = 3.0, name: str = "ramp") -> TrainingClip:
    """A mixture whose frames are told apart by level, with labels 1 on odd frames."""
    samples = round(seconds * GRID.sample_rate)
    audio = np.linspace(0.01, 1.0, samples, dtype=np.float32)[None, :]
    labels = (np.arange(GRID.num_frames(samples)) % 2).astype(np.float32)
    return TrainingClip(name, audio, labels)


def test_examples_without_augmentation_are_exact_stretches_of_the_clip():
    clip = ramp_clip()
    layout = ExampleLayout(context=25, labelled=5, margin=2)
    sampler = ExampleSampler([clip], GRID, layout, np.random.default_rng(0))
    for _ in range(30):
        audio, labels, inside = sampler.example()
        assert audio.shape == (GRID.num_samples(layout.frames),) and labels.shape == (layout.frames,)
        assert inside[layout.labelled_slice].any()  # some labelled frame lies in the clip
        # the ramp's level tells which clip sample the first inside frame starts at
        j = int(np.argmax(inside))
        first = int(np.searchsorted(clip.audio[0], audio[j * GRID.hop])) // GRID.hop - j
        frames = first + np.arange(layout.frames)
        np.testing.assert_array_equal(inside, (frames >= 0) & (frames < clip.num_frames))
        np.testing.assert_array_equal(labels[inside], clip.labels[frames[inside]])
        assert not labels[~inside].any() and not audio[: j * GRID.hop].any()
        lo, hi = max(first * GRID.hop, 0), min(first * GRID.hop + len(audio), clip.audio.shape[1])
        np.testing.assert_array_equal(audio[lo - first * GRID.hop : hi - first * GRID.hop],
                                      clip.audio[0, lo:hi])


def test_every_frame_of_a_clip_gets_labelled_including_the_edges():
    clip = ramp_clip(1.0)
    sampler = ExampleSampler([clip], GRID, ExampleLayout(context=25), np.random.default_rng(1))
    seen = set()
    for _ in range(600):
        audio, _, inside = sampler.example()
        centre = audio[sampler.layout.first_labelled * GRID.hop + GRID.offset]
        seen.add(int(np.argmin(np.abs(clip.audio[0][GRID.frame_centres(clip.num_frames)] - centre))))
        assert inside[sampler.layout.first_labelled]
    assert seen == set(range(clip.num_frames))


def test_a_clip_shorter_than_an_example_is_zero_padded():
    clip = ramp_clip(0.2)
    layout = ExampleLayout(context=25, margin=2)
    sampler = ExampleSampler([clip], GRID, layout, np.random.default_rng(2))
    audio, _, inside = sampler.sample(8)
    assert audio.shape == (8, GRID.num_samples(layout.frames))
    assert inside.sum(axis=1).tolist() == [clip.num_frames] * 8
    assert (np.count_nonzero(audio, axis=1) <= clip.audio.shape[1]).all()


def test_augmented_examples_have_the_layout_size_and_repeat_with_the_seed():
    clips = [ramp_clip(2.0, "a"), ramp_clip(0.5, "b")]
    layout = ExampleLayout(context=25, labelled=9, margin=3)
    augment = AugmentConfig(speed_range=(0.7, 1.3))

    def draw(seed: int) -> Batch:
        return ExampleSampler(clips, GRID, layout, np.random.default_rng(seed),
                              augment_config=augment).sample(12)

    first, again, other = draw(5), draw(5), draw(6)
    assert first.audio.shape == (12, GRID.num_samples(layout.frames))
    assert first.labels.shape == first.inside.shape == (12, layout.frames)
    assert set(np.unique(first.labels)) <= {0.0, 1.0}
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.audio, other.audio)


def test_remixed_examples_over_external_music_stay_silent_outside_the_clip():
    clip = ramp_clip(0.3)
    stems = TrainingClip("stems", np.concatenate([clip.audio, 0.5 * clip.audio]), clip.labels)
    pool = InstrumentalPool([np.random.default_rng(0).standard_normal(GRID.sample_rate)])
    only_external = RemixConfig(own=0.0, external=1.0, voice=0.0, accompaniment=0.0)
    sampler = ExampleSampler([stems], GRID, ExampleLayout(context=25, labelled=3),
                             np.random.default_rng(6), only_external, pool)
    audio, _, inside = sampler.sample(6)
    for row in range(6):
        first, last = np.flatnonzero(inside[row])[[0, -1]]
        assert not audio[row, : first * GRID.hop].any()
        assert not audio[row, GRID.num_samples(last + 1) + GRID.hop :].any()
        music = audio[row, first * GRID.hop : GRID.num_samples(last + 1)]
        assert np.abs(music).min() < 0.01 < np.abs(music).max()  # noise, not the positive ramp


def test_source_weights_set_the_share_of_examples_per_source():
    level = {"a": 0.1, "b": 0.5}
    clips = [TrainingClip(f"{source}{i}", np.full((1, GRID.sample_rate), level[source], np.float32),
                          np.zeros(GRID.num_frames(GRID.sample_rate), np.float32), source)
             for source, count in (("a", 9), ("b", 1)) for i in range(count)]
    sampler = ExampleSampler(clips, GRID, ExampleLayout(25), np.random.default_rng(0),
                             source_weights={"a": 0.25, "b": 0.75})
    drawn = [audio[inside.argmax() * GRID.hop + GRID.offset]
             for audio, _, inside in (sampler.example() for _ in range(400))]
    assert np.mean(np.isclose(drawn, 0.5)) == pytest.approx(0.75, abs=0.07)
    with pytest.raises(VocalfrontError, match="no training clips"):
        ExampleSampler(clips, GRID, ExampleLayout(25), np.random.default_rng(0),
                       source_weights={"a": 1.0, "c": 1.0})


def test_solo_voices_are_remixed_over_music_and_processed_like_produced_vocals():
    from vocalfront.data.production import VoiceEffectsConfig

    seconds = 2.0
    times = np.arange(round(seconds * GRID.sample_rate)) / GRID.sample_rate
    voice = (0.3 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)[None, :]
    solo = TrainingClip("solo", voice, np.ones(GRID.num_frames(voice.shape[1]), np.float32), "ssvd", True)
    pool = InstrumentalPool([np.random.default_rng(0).standard_normal(GRID.sample_rate)])
    only_music = RemixConfig(own=0.0, external=0.0, voice=0.0, accompaniment=0.0, instrumental=1.0)
    over_music = RemixConfig(own=0.0, external=1.0, voice=0.0, accompaniment=0.0)
    negatives = ExampleSampler([solo], GRID, ExampleLayout(25), np.random.default_rng(1), over_music,
                               pool, solo_remix=only_music).sample(4)
    assert not negatives.labels.any() and np.abs(negatives.audio).max() > 0
    effects = VoiceEffectsConfig(reverb_probability=1.0, plate_share=0.0)
    dry, wet = (ExampleSampler([solo], GRID, ExampleLayout(25), np.random.default_rng(2), over_music,
                               pool, voice_effects=fx).sample(1) for fx in (None, effects))
    assert dry.labels.any() and np.array_equal(dry.labels, wet.labels)
    assert not np.allclose(dry.audio, wet.audio)
    with pytest.raises(VocalfrontError, match="stems or a solo voice"):
        ExampleSampler([ramp_clip()], GRID, ExampleLayout(25), np.random.default_rng(0), over_music, pool)


def test_a_voice_the_remix_mode_mutes_is_not_processed(monkeypatch):
    from vocalfront.data.production import VoiceEffectsConfig
    from vocalfront.training import sampler as sampler_module

    times = np.arange(2 * GRID.sample_rate) / GRID.sample_rate
    voice = (0.3 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)[None, :]
    solo = TrainingClip("solo", voice, np.ones(GRID.num_frames(voice.shape[1]), np.float32), "ssvd", True)
    pool = InstrumentalPool([np.random.default_rng(0).standard_normal(GRID.sample_rate)])
    processed = []
    process_voice = sampler_module.process_voice

    def counted(*args, **kwargs):
        processed.append(1)
        return process_voice(*args, **kwargs)

    monkeypatch.setattr(sampler_module, "process_voice", counted)
    mixes = RemixConfig(own=0.0, external=1.0, voice=0.0, accompaniment=0.0, instrumental=1.0)
    effects = VoiceEffectsConfig(compress_probability=1.0)
    batch = ExampleSampler([solo], GRID, ExampleLayout(25), np.random.default_rng(3), mixes, pool,
                           solo_remix=mixes, voice_effects=effects).sample(40)
    with_voice = int(batch.labels.any(axis=1).sum())
    assert 0 < with_voice < 40 and len(processed) == with_voice


def forbid_decoding(monkeypatch, when: str) -> None:
    """Make decoding any audio file fail the test (``when``: what should have failed first)."""
    def decode(*args, **kwargs):
        raise AssertionError(f"audio decoded before {when}")

    monkeypatch.setattr("vocalfront.audio._decode", decode)
    monkeypatch.setattr("vocalfront.audio._read_cache", decode)


@pytest.mark.parametrize("options", ["{ n_bands = 25, hop = 1 }", "{ n_bands = 25, hopp = 630 }"])
def test_a_bad_frontend_option_fails_before_any_audio_is_decoded(tiny_data, tmp_path, monkeypatch,
                                                                 options):
    forbid_decoding(monkeypatch, "the model configuration was checked")
    config = tiny_config(tiny_data, f"model.frontend_options={options}")
    with pytest.raises(VocalfrontError, match="hop"):
        train(config, tmp_path / "run", progress=False)
    # nor the run folder touched: the corrected command starts there without --no-resume
    assert not (tmp_path / "run").exists()


def test_a_missing_impulse_response_folder_fails_before_any_clip_is_decoded(tiny_data, tmp_path,
                                                                           monkeypatch):
    forbid_decoding(monkeypatch, "the impulse responses were checked")
    # load_config, not resolve_config (which refuses the missing folder already): train's own check
    config = load_config(TINY, [f"data.root={tiny_data}", f"data.impulse_responses={tmp_path / 'no-plates'}"])
    with pytest.raises(VocalfrontError, match="impulse response folder not found"):
        train(config, tmp_path / "run", progress=False)


@pytest.mark.parametrize(("frontend", "option", "grid", "samples", "frames"), [
    ("mel", "hop = 630", FrameGrid(hop=630), [44100, 35280], [69, 55]),
    ("fb", "hop = 630", FrameGrid(hop=630), [44100, 35280], [69, 55]),
    ("mel", "sample_rate = 16000", FrameGrid(sample_rate=16000), [32000, 25600], [99, 79]),
])
def test_a_detector_on_another_frame_grid_trains_and_validates_with_labels_on_its_frames(
        tiny_data, tmp_path, frontend, option, grid, samples, frames):
    config = tiny_config(tiny_data, f"model.frontend={frontend}", "train.updates=4",
                         f"model.frontend_options={{ n_bands = 25, {option} }}")
    result = train(config, tmp_path / "run", progress=False)
    loaded = load_detector_file(result.model_path)
    detector, extra = loaded.detector, loaded.record
    assert detector.grid == grid
    clips, _ = heldout_clips(config.data, open_sources(config.data, grid), "valid", 0, grid)
    # the two validation clips (2.0 s and 1.6 s) at the grid's rate, and their frames on it
    assert [clip.audio.shape[1] for clip in clips] == samples
    assert [len(clip.labels) for clip in clips] == frames
    assert extra["valid"]["frames"] == sum(frames)
    for clip in clips:
        mixture = clip.audio.sum(axis=0)
        assert len(predict_waveform(detector, mixture)) == len(clip.labels)
        # the tiny clips' "voice" is a loud tone exactly where the labels say singing: the
        # front-end's energy per frame separates the labels' classes on the same frames
        with torch.no_grad():
            energy = np.log(detector.frontend(torch.from_numpy(mixture))[0].sum(0).numpy())
        sung = clip.labels == 1
        middle = (energy[sung].mean() + energy[~sung].mean()) / 2
        assert np.mean((energy > middle) == sung) > 0.9
    # `vocalfront evaluate` reads the labels on the model's frames too
    assert main(["evaluate", "--model", str(result.model_path), "--data", str(tiny_data), "--split",
                 "valid", "--threshold-from", "model", "--out", str(tmp_path / "scores"),
                 "--no-progress"]) == 0
    assert json.loads((tmp_path / "scores" / "metrics.json").read_text())["pooled"]["frames"] == sum(frames)


def test_cosine_schedule_warms_up_then_decays_to_its_final_fraction():
    from vocalfront.training.objective import lr_factor

    config = TrainConfig(updates=1000, lr_schedule="cosine", warmup_updates=100, final_lr_fraction=0.1)
    factors = [lr_factor(config, update) for update in range(1000)]
    assert factors[0] == pytest.approx(0.01) and factors[99] == pytest.approx(1.0)
    assert factors[100] == pytest.approx(1.0)
    assert factors[550] == pytest.approx(0.55, abs=0.01)
    assert factors[999] == pytest.approx(0.1, abs=1e-3)
    assert all(later <= earlier for earlier, later in itertools.pairwise(factors[100:]))
    assert lr_factor(TrainConfig(), 12345) == 1.0


def test_sampler_state_restores_the_sequence_of_examples():
    sampler = ExampleSampler([ramp_clip()], GRID, ExampleLayout(25), np.random.default_rng(3),
                             augment_config=AugmentConfig())
    sampler.sample(3)
    state = sampler.state_dict()
    expected = sampler.sample(4)
    restored = ExampleSampler([ramp_clip()], GRID, ExampleLayout(25), np.random.default_rng(99),
                              augment_config=AugmentConfig())
    restored.load_state_dict(state)
    np.testing.assert_array_equal(restored.sample(4).audio, expected.audio)
    assert restored.examples_drawn == 7


# ----------------------------------------------------------------------------- loss and model
def tiny_detector(**options):
    torch.manual_seed(0)
    return build_model(ModelConfig(frontend_options={"n_bands": 25}, context=25, **options))


@torch.no_grad()
def test_dense_loss_equals_the_mean_of_excerpt_losses_over_the_same_frames():
    detector = tiny_detector().eval()  # no dropout, fixed batch-norm statistics
    rng = np.random.default_rng(4)
    dense_layout = ExampleLayout(context=25, labelled=6, margin=2)
    audio = rng.standard_normal((2, GRID.num_samples(dense_layout.frames))).astype(np.float32)
    labels = rng.integers(0, 2, (2, dense_layout.frames)).astype(np.float32)
    inside = np.ones_like(labels, dtype=bool)
    inside[1, :15] = False  # row 1 starts before its clip: masked features, first label unused
    dense = training_loss(detector, Batch(audio, labels, inside), dense_layout, (0.02, 0.98), True)
    excerpt = ExampleLayout(context=25, labelled=1, margin=2)
    losses = []
    for row in range(2):
        for d in range(dense_layout.labelled):
            if inside[row, dense_layout.first_labelled + d]:
                one = Batch(audio[row : row + 1, d * GRID.hop : d * GRID.hop
                                  + GRID.num_samples(excerpt.frames)],
                            labels[row : row + 1, d : d + excerpt.frames],
                            inside[row : row + 1, d : d + excerpt.frames])
                losses.append(float(training_loss(detector, one, excerpt, (0.02, 0.98), False)))
    assert len(losses) == 11
    assert float(dense) == pytest.approx(np.mean(losses), rel=1e-4)


def test_learnable_parameters_get_their_own_learning_rate_and_are_reported_in_hz():
    options = {"n_bands": 25, "averaging_sizes": [1024.0] * 25}  # given sizes: no design fit
    detector = build_model(ModelConfig(frontend="fb-learn-cf", frontend_options=options, context=25))
    optimizer = make_optimizer(detector, TrainConfig(lr=1e-3, frontend_lr_multiplier=0.1))
    cnn_group, front_group = optimizer.param_groups
    assert cnn_group["lr"] == 1e-3 and front_group["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in front_group["params"]} == {id(p) for p in detector.frontend.parameters()
                                                       if p.requires_grad}
    centres = learnable_parameters(detector)["centre_hz"]
    assert len(centres) == 25 and 27.5 < centres[0] < centres[-1] < 8000
    assert len(make_optimizer(tiny_detector(), TrainConfig()).param_groups) == 1  # mel: nothing to learn


# ----------------------------------------------------------------------------- runs
def test_tiny_run_writes_logs_checkpoints_and_a_loadable_model(tiny_data, tmp_path, monkeypatch):
    config = tiny_config(tiny_data)
    predictions = []
    predict = trainer_module.predict_clips
    monkeypatch.setattr(trainer_module, "predict_clips",
                        lambda *args, **kwargs: predictions.append(1) or predict(*args, **kwargs))
    result = train(config, tmp_path / "run", progress=False)
    assert len(predictions) == 2  # one per validation: the end reuses the best epoch's
    run = tmp_path / "run"
    assert result.updates == 8 and result.model_path == run / "model.pt"
    assert json.loads((run / "config.json").read_text()) == config_to_dict(config)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    updates = [r for r in records if r["event"] == "update"]
    validations = [r for r in records if r["event"] == "validation"]
    assert [r["update"] for r in updates] == list(range(1, 9))
    (start,) = [r for r in records if r["event"] == "start"]
    assert records[0] is start and start["update"] == 0 and start["device"] == "cpu"
    assert "CPU" in start["device_name"] and start["torch"] == torch.__version__
    assert start["vocalfront"] == vocalfront.__version__ and start["threads"] >= 1
    assert all(math.isfinite(r["loss"]) and r["lr"] == 1e-3 for r in updates)
    assert [(r["epoch"], r["update"]) for r in validations] == [(1, 4), (2, 8)]
    assert set(validations[0]["valid"]) >= {"error", "f_measure", "auroc", "threshold"}
    csv_lines = (run / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,update,train_loss,valid_error") and len(csv_lines) == 3
    assert sorted(p.name for p in run.glob("state-*.pt")) == ["state-00000006.pt", "state-00000008.pt"]
    model = load_detector_file(run / "model.pt")
    detector, extra = model.detector, model.record
    best = min(validations, key=lambda r: r["valid"]["error"])
    best_extra = load_detector_file(run / "best.pt").record
    assert best_extra["threshold"] == pytest.approx(best["valid"]["threshold"])
    assert best_extra["median_filter"] == 5 and extra["update"] == best["update"] == result.best_update
    # model.pt: the decision settings chosen on validation, no worse there than best.pt's own
    assert set(extra) >= {"threshold", "median_filter", "min_duration", "min_gap", "peak_threshold",
                          "valid_final_error"}
    assert extra["valid_final_error"] <= best["valid"]["error"] + 1e-9
    assert detector.norm.mean.abs().sum() > 0 and (detector.norm.std != 1).any()  # fitted
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()


def test_dense_mode_trains_on_the_tiny_data(tiny_data, tmp_path):
    config = tiny_config(tiny_data, "train.mode=dense", "train.updates=2", "data.augment_enabled=false")
    result = train(config, tmp_path / "dense", progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "dense" / "metrics.jsonl").open()
              if '"update"' in line and '"loss"' in line]
    assert result.updates == 2 and len(losses) == 2 and all(math.isfinite(x) for x in losses)


def test_bf16_autocast_trains_with_finite_losses_and_float32_weights(tiny_data, tmp_path):
    config = tiny_config(tiny_data, "train.mode=dense", "train.updates=4", "train.bf16=true",
                         "train.lr_schedule=\"cosine\"", "train.warmup_updates=2")
    train(config, tmp_path / "bf16", progress=False)
    records = [json.loads(line) for line in (tmp_path / "bf16" / "metrics.jsonl").open()]
    updates = [r for r in records if r["event"] == "update"]
    assert len(updates) == 4 and all(math.isfinite(r["loss"]) for r in updates)
    assert [round(r["lr"] / 1e-3, 6) for r in updates[:2]] == [0.5, 1.0]   # warm-up
    detector = load_detector_file(tmp_path / "bf16" / "model.pt").detector
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in detector.parameters())


def write_song(path: Path, seconds: float, seed: int) -> None:
    """A 22.05 kHz mono 'song': noise, with a tone in its sung second half (labels beside it)."""
    rng = np.random.default_rng(seed)
    times = np.arange(round(seconds * GRID.sample_rate)) / GRID.sample_rate
    audio = 0.05 * rng.standard_normal(len(times)) + 0.3 * np.sin(2 * np.pi * 440 * times) * (
        times >= seconds / 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, GRID.sample_rate)
    path.with_suffix(".lab").write_text(f"0 {seconds / 2} nosing\n{seconds / 2} {seconds} sing\n")


def test_jamendo_layout_trains_on_its_train_filelist_and_validates_on_valid(tmp_path):
    (tmp_path / "jamendo" / "filelists").mkdir(parents=True)
    for index, split in enumerate(["train", "train", "valid", "test"]):
        write_song(tmp_path / "jamendo" / f"song{index}.wav", 1.5, index)
        with (tmp_path / "jamendo" / "filelists" / split).open("a") as handle:
            handle.write(f"song{index}.wav\n")
    config = tiny_config(tmp_path / "jamendo", "data.format=jamendo", "data.remix_enabled=false",
                         "train.updates=2", "train.updates_per_epoch=2")
    train(config, tmp_path / "run", progress=False)
    extra = load_detector_file(tmp_path / "run" / "model.pt").record
    assert extra["valid"]["frames"] == GRID.num_frames(round(1.5 * GRID.sample_rate))  # song2 only
    with pytest.raises(VocalfrontError, match=r"needs data\.valid_root"):
        train(tiny_config(tmp_path / "jamendo", "data.format=folder", "data.remix_enabled=false"),
              tmp_path / "folder", progress=False)


def test_learnable_frontend_parameters_and_their_movement_are_logged(tiny_data, tmp_path):
    options = "model.frontend_options={n_bands = 25, averaging_sizes = " + str([1024.0] * 25) + "}"
    config = tiny_config(tiny_data, "model.frontend=fb-learn-cf", options, "train.updates=2",
                         "train.updates_per_epoch=2", "train.frontend_lr_multiplier=10")
    train(config, tmp_path, progress=False)
    validation = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert len(validation["frontend"]["centre_hz"]) == 25
    assert len(validation["frontend"]["averaging_length_ms"]) == 25
    assert 0 < validation["frontend_moved"]["centre_max"] < 1  # in band spacings


def test_cli_trains_and_refuses_to_resume_a_different_config(tiny_data, tmp_path, capsys):
    out = tmp_path / "cli"
    common = ["train", "--config", str(TINY), "--out", str(out), f"data.root={tiny_data}"]
    assert main([*common, "train.updates=4", "--threads", "1"]) == 0
    assert "model.pt: best validation error" in capsys.readouterr().out
    assert main([*common, "train.updates=2", "train.lr=0.01"]) == 2
    error = capsys.readouterr().err
    assert "different config (train.lr differ)" in error and error.count("\n") == 1
    assert main([*common, "train.updates=2", "train.lr=0.01", "--no-resume"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["lr"] == 0.01
    assert [path.name for path in out.glob("state-*.pt")] == ["state-00000002.pt"]  # old run gone


def test_cli_reports_a_missing_dataset_in_one_line(tmp_path, capsys):
    assert main(["train", "--config", str(TINY), "--out", str(tmp_path / "x"),
                 f"data.root={tmp_path / 'nowhere'}"]) == 2
    error = capsys.readouterr().err
    assert f"data.root={tmp_path / 'nowhere'}: no such file or folder" in error
    assert error.count("\n") == 1


def test_init_from_starts_a_fresh_run_from_a_detector_files_weights(tiny_data, tmp_path, monkeypatch):
    first = train(tiny_config(tiny_data, "train.mode=dense", "train.updates=2"), tmp_path / "first",
                  progress=False)
    start = load_detector_file(first.model_path).detector
    monkeypatch.setattr(trainer_module, "fit_norm", lambda *args: pytest.fail("norm refitted"))
    # a near-zero learning rate: the one update leaves the weights where they started
    config = tiny_config(tiny_data, "train.mode=dense", "train.updates=1", "train.lr=1e-12",
                         "model.dropout=0.1", f"train.init_from={first.model_path}")
    tuned = load_detector_file(train(config, tmp_path / "tuned", progress=False).model_path).detector
    assert tuned.cnn.dropout_p == 0.1
    for name, value in start.named_parameters():
        assert torch.allclose(dict(tuned.named_parameters())[name], value, atol=1e-9), name
    assert torch.equal(tuned.norm.mean, start.norm.mean) and torch.equal(tuned.norm.std, start.norm.std)


@pytest.mark.parametrize(("setting", "message"), [
    ("model.context=27", "its detector differs from the [model] section in cnn ({'n_bands': 25, "
                         "'context': 25, 'batch_norm': True} there)"),
    ("model.frontend_options={ n_bands = 30 }", "its detector differs from the [model] section in "
                                                 "frontend"),
])
def test_init_from_a_detector_of_another_architecture_is_refused_before_any_audio(
        tiny_data, tmp_path, monkeypatch, capsys, setting, message):
    model = tmp_path / "start.pt"
    save_detector(model, build_model(tiny_config(tiny_data).model))
    monkeypatch.setattr(trainer_module, "training_clips", lambda *args: pytest.fail("audio read"))
    assert main(["train", "--config", str(TINY), "--out", str(tmp_path / "run"), f"data.root={tiny_data}",
                 f"train.init_from={model}", setting]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error and str(model) in error
    assert not (tmp_path / "run" / "config.json").exists()


def test_init_from_a_missing_file_is_refused_by_name(tiny_data):
    with pytest.raises(VocalfrontError, match=r"train.init_from=nowhere.pt: no such file"):
        tiny_config(tiny_data, "train.init_from=nowhere.pt")
