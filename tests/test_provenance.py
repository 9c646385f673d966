"""What made an output: the provenance record, model-owned post-processing, and a CLI that
starts without torch."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import vocalfront
from vocalfront import __version__
from vocalfront.cli import main
from vocalfront.detect import load_model
from vocalfront.detector_file import save_detector
from vocalfront.errors import VocalfrontError
from vocalfront.frontends import BandNorm, LogCompression, build_frontend
from vocalfront.grid import DEFAULT_GRID
from vocalfront.inference import BF16_TOLERANCE
from vocalfront.model import Detector, SchlueterCNN
from vocalfront.postprocessing import DEFAULT_MIN_DURATION, DEFAULT_MIN_GAP, PostProcessing
from vocalfront.provenance import IN_MEMORY, Provenance, cnn_settings, make_provenance

SR = DEFAULT_GRID.sample_rate
SRC = Path(__file__).resolve().parents[1] / "src"


def signal(seconds: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    return (0.05 * rng.standard_normal(len(t)) + 0.4 * ((t // 0.5) % 2) * np.sin(2 * np.pi * 440 * t)
            ).astype(np.float32)


def tiny_detector() -> Detector:
    torch.manual_seed(0)
    detector = Detector(build_frontend("mel", n_bands=25), LogCompression(), BandNorm(25),
                        SchlueterCNN(n_bands=25, context=25))
    with torch.no_grad():
        detector.norm.fit(detector.compression(detector.frontend(torch.from_numpy(signal())[None])))
    return detector.eval()


STORED = PostProcessing(threshold=0.4, smoothing=9, min_duration=0.25, min_gap=0.125, peak_threshold=0.7)
"""The decision settings stored in :func:`model_file`'s record."""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A model whose record stores every post-processing setting."""
    path = tmp_path_factory.mktemp("model") / "stored.pt"
    save_detector(path, tiny_detector(), STORED.to_record())
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("songs") / "song.wav"
    sf.write(path, signal(), SR)
    return path


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["detect", "--help"],
                                  ["detect", "song.wav", "--threshold", "1.5"], ["evaluate", "--help"],
                                  ["train", "--help"], ["experiment", "--help"], ["theory", "--help"],
                                  ["data", "check", "--help"], ["no-such-command"]])
def test_help_version_and_argument_errors_import_neither_torch_nor_scipy(argv):
    result = run_python(
        "import sys\nfrom vocalfront.cli import main\n"
        f"try:\n    code = main({argv!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
        "heavy = [name for name in ('torch', 'scipy') if name in sys.modules]\n"
        "print('imported', *heavy, code, file=sys.stderr)")
    assert result.stderr.rstrip().endswith("imported 0" if "--help" in argv or "--version" in argv
                                           else "imported 2"), result.stderr


def test_version_names_the_packaged_models_digest(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    from vocalfront.pretrained import default_model_path

    path = default_model_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else None
    assert capsys.readouterr().out == (f"vocalfront {__version__} (packaged model default.pt, sha256 "
                                       f"{digest})\n" if digest else f"vocalfront {__version__} (no "
                                       "packaged model)\n")


@pytest.mark.parametrize("option", ["--threshold", "--peak-threshold"])
@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_a_threshold_outside_zero_to_one_is_an_error_before_any_work(option, value, capsys, tmp_path):
    assert main(["detect", str(tmp_path / "missing.wav"), option, value]) == 2
    assert f"{option} {float(value)}: must be a number from 0 to 1" in capsys.readouterr().err


def test_a_threshold_that_is_no_number_is_a_usage_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit:
        main(["detect", str(tmp_path / "missing.wav"), "--threshold", "x"])
    assert exit.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_the_model_record_owns_the_post_processing_and_options_override_it(model_file):
    assert load_model(model_file).postprocessing == STORED
    result = vocalfront.detect(signal(), SR, model=model_file)
    assert result.provenance.to_dict() | {} == {
        "version": __version__, "model": "stored.pt",
        "model_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest()[:12],
        "threshold": 0.4, "smoothing": 9, "min_duration": 0.25, "min_gap": 0.125, "bf16": False,
        "frame_step": 1, "peak_threshold": 0.7}
    assert all(s.duration >= 0.25 for s in result.segments)
    overridden = vocalfront.detect(signal(), SR, model=model_file, threshold=0.6, min_gap=0.0,
                                   peak_threshold=0.0)
    assert (overridden.provenance.threshold, overridden.provenance.min_gap) == (0.6, 0.0)
    assert (overridden.provenance.min_duration, overridden.provenance.peak_threshold) == (0.25, 0.0)


def test_a_record_without_post_processing_falls_back_to_non_zero_defaults(tmp_path):
    path = tmp_path / "bare.pt"
    save_detector(path, tiny_detector(), {"threshold": 0.3})
    settings = load_model(path).postprocessing
    assert (settings.min_duration, settings.min_gap) == (DEFAULT_MIN_DURATION, DEFAULT_MIN_GAP)
    assert DEFAULT_MIN_DURATION > 0 and DEFAULT_MIN_GAP > 0
    detection = vocalfront.detect(signal(), SR, model=tiny_detector())
    assert detection.provenance.model == IN_MEMORY and detection.provenance.model_sha256 is None


@pytest.mark.parametrize("extra", [{"threshold": 1.5}, {"median_filter": -1}, {"min_gap": "0.2"},
                                   {"min_duration": float("nan")}])
def test_unusable_stored_post_processing_is_an_error_naming_the_file(tmp_path, extra):
    path = tmp_path / "odd.pt"
    save_detector(path, tiny_detector(), extra)
    stored = "stored (threshold|median filter|min duration|min gap) must be"
    with pytest.raises(VocalfrontError, match=f"{re.escape(str(path))}: {stored}"):
        load_model(path)


def test_a_threshold_outside_zero_to_one_is_refused_by_the_api(model_file):
    with pytest.raises(VocalfrontError, match="threshold must be a number from 0 to 1"):
        vocalfront.detect(signal(), SR, model=model_file, threshold=1.5)


def test_every_output_records_the_same_provenance(model_file, song, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(song), "--model", str(model_file), "--out", str(out), "--format",
                 "lab,audacity,csv,json", "--frames", "--no-progress"]) == 0
    record = json.loads((out / "song.json").read_text())["provenance"]
    expected = make_provenance(model_file, STORED)
    assert record == expected.to_dict()
    for name in ("song.csv", "song.frames.csv"):
        assert (out / name).read_text().splitlines()[0] == f"# {expected.to_line()}"
    side = json.loads((out / "song.provenance.json").read_text())
    assert side["provenance"] == record
    assert set(side["outputs"]) == {"song.lab", "song.audacity.txt", "song.csv", "song.json",
                                    "song.frames.csv"}


def test_detect_bf16_records_itself_and_stays_within_the_tolerance_of_float32(model_file, song,
                                                                              tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(song), "--model", str(model_file), "--out", str(out), "--format",
                 "json,csv", "--frames", "--bf16", "--no-progress"]) == 0
    record = json.loads((out / "song.json").read_text())["provenance"]
    assert record == make_provenance(model_file, STORED, bf16=True).to_dict()
    assert (out / "song.csv").read_text().splitlines()[0].endswith(", CNN in bf16")
    exact = vocalfront.detect(song, model=model_file)
    fast = vocalfront.detect(song, model=model_file, bf16=True)
    assert (exact.provenance.bf16, fast.provenance.bf16) == (False, True)
    assert 0 < np.abs(fast.probabilities - exact.probabilities).max() <= BF16_TOLERANCE


def test_detect_frame_step_records_itself_and_reads_back(model_file, song, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(song), "--model", str(model_file), "--out", str(out), "--format",
                 "json,csv", "--frame-step", "3", "--no-progress"]) == 0
    record = json.loads((out / "song.json").read_text())["provenance"]
    expected = make_provenance(model_file, STORED, frame_step=3)
    assert record["frame_step"] == 3 and Provenance(**record) == expected
    assert (out / "song.csv").read_text().splitlines()[0].endswith(", CNN every 3rd frame")
    assert vocalfront.detect(song, model=model_file, frame_step=9).provenance.frame_step == 9


def test_a_record_written_before_frame_steps_reads_as_every_frame(model_file):
    record = make_provenance(model_file, PostProcessing()).to_dict()
    older = {key: value for key, value in record.items() if key not in ("bf16", "frame_step")}
    assert Provenance(**older).frame_step == 1 and Provenance(**older) == Provenance(**record)
    assert "CNN" not in Provenance(**older).to_line()


@pytest.mark.parametrize("step", [2, 0, True, 3.0, "3"])
def test_a_bad_frame_step_is_a_one_line_error_before_any_work(step, tmp_path):
    with pytest.raises(VocalfrontError, match=r"^frame step must be one of 1, 3, 9, got [^\n]*$"):
        vocalfront.detect(tmp_path / "missing.wav", frame_step=step)


def test_a_json_only_run_writes_no_side_file(model_file, song, tmp_path, capsys):
    assert main(["detect", str(song), "--model", str(model_file), "--out", str(tmp_path), "--format",
                 "json", "--no-progress"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.json"]


def test_the_provenance_line_names_version_model_digest_and_settings(model_file):
    line = make_provenance(model_file, PostProcessing(0.343, 56, 0.75, 0.2)).to_line()
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:12]
    assert line == (f"vocalfront {__version__}, model stored.pt (sha256 {digest}), threshold 0.343, "
                    "median 56 frames, min duration 0.75 s, min gap 0.2 s")


@pytest.mark.parametrize(("bf16", "step", "phrases"), [
    (False, 1, []), (True, 1, ["CNN in bf16"]), (False, 9, ["CNN every 9th frame"]),
    (True, 3, ["CNN in bf16", "CNN every 3rd frame"])])
def test_cnn_settings_name_only_what_differs_from_float32_on_every_frame(bf16, step, phrases):
    assert cnn_settings(bf16, step) == phrases
    line = Provenance("0", "m.pt", None, 0.5, 9, 0.0, 0.0, bf16, step).to_line()
    assert line.endswith("min gap 0 s" + "".join(f", {phrase}" for phrase in phrases))


def test_the_peak_threshold_option_overrides_the_models_and_is_recorded(model_file, song, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["detect", str(song), "--model", str(model_file), "--out", str(out), "--format",
                 "json,csv", "--peak-threshold", "0", "--no-progress"]) == 0
    record = json.loads((out / "song.json").read_text())["provenance"]
    assert Provenance(**record) == make_provenance(model_file, STORED.override(peak_threshold=0.0))
    assert "peak" not in (out / "song.csv").read_text().splitlines()[0]
    assert ", threshold 0.400, peak 0.700, " in make_provenance(model_file, STORED).to_line()


def test_detections_and_their_decisions_keep_only_runs_that_rise_above_the_peak_threshold(model_file):
    everything = vocalfront.detect(signal(), SR, model=model_file, threshold=0.0, peak_threshold=0.0)
    nothing = vocalfront.detect(signal(), SR, model=model_file, threshold=0.0, peak_threshold=1.0)
    assert everything.segments and everything.decisions.all()
    assert not nothing.segments and not nothing.decisions.any()


def test_a_record_written_before_peak_thresholds_reads_as_keeping_every_run(model_file):
    record = make_provenance(model_file, PostProcessing()).to_dict()
    older = {key: value for key, value in record.items() if key != "peak_threshold"}
    assert Provenance(**older) == Provenance(**record) and Provenance(**older).peak_threshold == 0.0
