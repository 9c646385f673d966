"""The detector file: what is saved loads back whole, bad files are one-line errors, and a file
written before the file format moved to its own module still loads with identical outputs."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
from test_model import make_detector, randomise_batch_norm

from vocalfront.detector_file import LoadedModel, ModelFileError, load_detector_file, save_detector
from vocalfront.errors import VocalfrontError
from vocalfront.model import Detector, build_detector
from vocalfront.postprocessing import PostProcessing


@pytest.fixture(scope="module")
def detector() -> Detector:
    return make_detector()


def test_saved_detector_loads_with_identical_outputs_and_extra(tmp_path):
    detector = make_detector(batch_norm=True)
    randomise_batch_norm(detector.cnn)
    path = tmp_path / "models" / "detector.pt"
    save_detector(path, detector, {"threshold": 0.42, "history": [1.0, 0.5], "note": None})
    model = load_detector_file(path)
    assert model.record == {"threshold": 0.42, "history": [1.0, 0.5], "note": None}
    assert model.threshold == 0.42 and model.source == str(path)
    loaded = model.detector
    assert not loaded.training
    assert sorted(p.name for p in path.parent.iterdir()) == ["detector.pt"]  # no temp files
    wave = torch.randn(2, detector.excerpt_samples)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wave), detector(wave))


def test_extra_values_that_cannot_be_loaded_safely_are_refused(detector, tmp_path):
    path = tmp_path / "d.pt"
    with pytest.raises(VocalfrontError, match=r"extra\.split"):
        save_detector(path, detector, {"split": {1, 2}})
    assert not path.exists()


def write_bad_files(tmp_path, detector) -> list[str]:
    """Write damaged or foreign files into ``tmp_path``; return their names (and a missing one)."""
    good = tmp_path / "good.pt"
    save_detector(good, detector)
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pt").write_bytes(bytes(range(256)) * 10)
    (tmp_path / "empty.pt").write_bytes(b"")
    # bytes on which torch's unpickler raised IndexError / KeyError (tracebacks before)
    sf.write(tmp_path / "song-wav.pt", np.zeros(4410), 22050, format="WAV")
    (tmp_path / "text.pt").write_bytes(b"hello\n" * 10)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    payload = torch.load(good, weights_only=True)
    payload["config"]["cnn"]["n_bands"] = 40
    payload["config"]["norm"]["n_bands"] = 40
    payload["config"]["frontend"]["n_bands"] = 40
    torch.save(payload, tmp_path / "mismatch.pt")
    payload["version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    (tmp_path / "flipped.pt").write_bytes(flip_a_weight_bit(data))
    return ["truncated.pt", "noise.pt", "empty.pt", "song-wav.pt", "text.pt", "foreign.pt",
            "list.pt", "mismatch.pt", "future.pt", "flipped.pt", "missing.pt"]


def flip_a_weight_bit(data: bytes) -> bytes:
    """``data`` (a detector file) with one bit flipped inside its largest tensor's bytes."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    largest = max(archive.infolist(), key=lambda info: info.file_size)
    start = largest.header_offset + 30  # the local header: 30 bytes, then name and extra field
    name_length, extra_length = struct.unpack("<HH", data[start - 4 : start])
    position = start + name_length + extra_length + largest.file_size // 2
    return data[:position] + bytes([data[position] ^ 0x40]) + data[position + 1 :]


def test_a_flipped_bit_in_the_weights_is_refused_not_loaded(detector, tmp_path):
    path = tmp_path / "flipped.pt"
    save_detector(tmp_path / "good.pt", detector)
    path.write_bytes(flip_a_weight_bit((tmp_path / "good.pt").read_bytes()))
    torch.load(path, weights_only=True)  # torch itself loads it without a word
    with pytest.raises(ModelFileError, match="fails its checksum"):
        load_detector_file(path)


def test_unreadable_detector_files_give_one_line_errors_naming_the_file(detector, tmp_path):
    for name in write_bad_files(tmp_path, detector):
        with pytest.raises(ModelFileError) as caught:
            load_detector_file(tmp_path / name)
        message = str(caught.value)
        assert message.startswith(str(tmp_path / name) + ": "), message
        assert "\n" not in message


def test_a_bad_stored_decision_setting_is_a_file_error(detector, tmp_path):
    path = tmp_path / "d.pt"
    save_detector(path, detector, {"median_filter": -3})
    with pytest.raises(ModelFileError, match="median filter"):
        load_detector_file(path)


def test_a_detector_from_no_file_has_the_default_settings_and_no_record(detector):
    model = LoadedModel(detector)
    assert model.postprocessing == PostProcessing() and model.record == {} and model.source is None


# A detector as vocalfront 0.3.0 wrote it before the file format had a module of its own (and
# before the plan of the filter bank moved out of it): a learnable 25-band filter bank whose
# centres moved in training. The whole file is 600 kB, so the test writes the old layout itself:
# the stored configuration as it was, weights drawn from a seeded generator, and the logits that
# the old code computed from that file on OLD_SIGNAL.
OLD_CONFIG = {
    "frontend": {"name": "fb-learn-cf", "sample_rate": 22050, "hop": 315, "window": 1024, "n_bands": 25,
                 "fmin": 27.5, "fmax": 8000.0, "norm": "unit-sum", "averaging": "hann2", "learn": ["cf"],
                 "sorted_centres": True, "support_bins": 4.0, "context": 4096, "block_frames": 1024,
                 "bw_range": [0.5, 3.0], "avg_range": [32.0, 4096.0],
                 "averaging_sizes": [963.2450643736476, 974.2914163057117, 985.3377682377758,
                                     990.8609442038078, 996.8629373388703, 1002.7825307681818,
                                     1002.7825307681818, 1008.7021241974932, 1008.7021241974932,
                                     *[1014.6217176268045] * 4, *[1020.5413110561159] * 12]},
    "compression": {"name": "log", "floor": 1e-07},
    "norm": {"name": "bandnorm", "n_bands": 25, "eps": 1e-05},
    "cnn": {"n_bands": 25, "context": 25, "batch_norm": False, "dropout": 0.5},
}
OLD_STATE = {"frontend.centre_logits": (25,), "frontend.init_half_widths": (25,),
             "frontend.fixed_avg_sizes": (25,), "norm.mean": (25,), "norm.std": (25,),
             **{f"cnn.units.{unit}.conv.{kind}": shape[kind == "bias"]
                for unit, shape in enumerate([((64, 1, 3, 3), (64,)), ((32, 64, 3, 3), (32,)),
                                              ((128, 32, 3, 3), (128,)), ((64, 128, 3, 3), (64,)),
                                              ((256, 64, 1, 1), (256,)), ((64, 256, 1, 1), (64,)),
                                              ((1, 64, 1, 1), (1,))])
                for kind in ("weight", "bias")}}
OLD_LOGITS = {0: -0.14519812166690826, 10: -0.14913831651210785, 20: -0.16506434977054596,
              30: -0.1658756583929062, 40: -0.13621126115322113, 50: -0.1513471007347107,
              60: -0.14453499019145966, 70: -0.14771702885627747, 80: -0.1467471718788147,
              90: -0.1447639912366867, 100: -0.14505118131637573, 110: -0.15478435158729553}
"""Some of the 113 logits the old code gave (``cnn.dense`` over the whole signal's features)."""


def _old_payload() -> dict:
    """The old file's payload: OLD_CONFIG, its initial front-end buffers with the centres moved,
    seeded CNN weights and band statistics, and a stored record."""
    fresh = build_detector(OLD_CONFIG).state_dict()
    assert {key: tuple(value.shape) for key, value in fresh.items()} == OLD_STATE
    generator = torch.Generator().manual_seed(17)
    state = {}
    for key, tensor in fresh.items():
        noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
        if key.endswith("conv.weight"):
            state[key] = (noise / np.sqrt(tensor[0].numel())).to(tensor.dtype)
        elif key.endswith("conv.bias"):
            state[key] = (0.01 * noise).to(tensor.dtype)
        elif key == "frontend.centre_logits":
            state[key] = tensor + 0.02 * noise
        elif key == "norm.mean":
            state[key] = (-8 + noise).to(tensor.dtype)
        elif key == "norm.std":
            state[key] = (2 + noise.abs()).to(tensor.dtype)
        else:
            state[key] = tensor
    return {"format": "vocalfront-detector", "version": 1, "config": OLD_CONFIG, "state_dict": state,
            "extra": {"threshold": 0.4, "median_filter": 9}}


def _old_signal() -> torch.Tensor:
    rng = np.random.default_rng(3)
    t = np.arange(22050 * 2) / 22050
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return torch.from_numpy(wave.astype(np.float32))


def test_a_detector_saved_by_the_old_code_loads_with_identical_outputs(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(_old_payload(), path)
    model = load_detector_file(path)
    assert model.threshold == 0.4 and model.smoothing == 9
    assert model.detector.frontend.get_config() == OLD_CONFIG["frontend"]
    with torch.no_grad():
        features = model.detector.features(_old_signal()[None])
        logits = model.detector.cnn.dense(features.unsqueeze(1))[0]
    assert len(logits) == 113
    torch.testing.assert_close(logits[list(OLD_LOGITS)], torch.tensor(list(OLD_LOGITS.values())),
                               rtol=1e-5, atol=1e-6)
