"""Trust (issue 18): a user's files are never lost, two runs never mix, memory stays bounded on
any input and no value gives a traceback. Each test covers one case of
:data:`robustness_corpus.TRUST_CASES` and records it for the reliability report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from robustness_corpus import SR, TRUST_CASES, reference_signal, wav_header
from test_detect import tiny_detector
from test_process_lock import hold_in_another_process
from test_training import make_tiny_mir1k, tiny_config

import vocalfront
from vocalfront.batch import collect_audio_files
from vocalfront.cli import main
from vocalfront.cli.detect import DetectJob
from vocalfront.cli.theory import MAX_HOPS
from vocalfront.detect import load_model
from vocalfront.detector_file import MAX_FILE_BYTES, save_detector
from vocalfront.errors import AudioError, VocalfrontError
from vocalfront.evaluation import MAX_SMOOTHING
from vocalfront.frontends import BandNorm, FilterBank, build_frontend
from vocalfront.training import load_config, prepare_run, train
from vocalfront.training.runfolder import LOCK_FILE

TINY_CONFIG = Path(__file__).parents[1] / "configs" / "tiny.toml"


@pytest.fixture
def trust_case(record_property):
    """Record which issue-18 case a test covers: ``trust_case(number)``."""
    def record(number: int) -> None:
        assert number in TRUST_CASES
        record_property("trust_case", number)
    return record


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_mir1k(tmp_path_factory.mktemp("mir1k"))


def folder_contents(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize("files", [{"config.json": b"my notes\n", "model.pt": b"mine"},
                                   {"config.json": b'{"train": {"lr": "x"}}'},
                                   {"model.pt": b"mine", "metrics.csv": b"a,b\n"}],
                         ids=["text-config", "foreign-config", "no-config"])
@pytest.mark.parametrize("resume", [None, False])
def test_training_never_writes_into_a_folder_that_is_not_a_run(files, resume, tiny_data, tmp_path,
                                                               trust_case):
    trust_case(1)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(VocalfrontError, match="not a vocalfront run folder"):
        train(tiny_config(tiny_data), tmp_path, resume=resume, progress=False)
    assert folder_contents(tmp_path) == files


def test_a_folder_with_another_runs_config_but_no_state_is_refused(tiny_data, tmp_path, trust_case):
    trust_case(1)
    prepare_run(tiny_config(tiny_data, "train.lr=0.01"), tmp_path)  # a run killed before its first state
    before = folder_contents(tmp_path)
    with pytest.raises(VocalfrontError, match=r"different config \(train.lr differ\)"):
        prepare_run(tiny_config(tiny_data), tmp_path)
    assert folder_contents(tmp_path) == before
    assert prepare_run(tiny_config(tiny_data), tmp_path, resume=False) is None  # asked for


def test_a_second_training_in_a_locked_run_folder_stops_before_touching_it(tiny_data, tmp_path,
                                                                           trust_case):
    trust_case(2)
    holder = hold_in_another_process(tmp_path / LOCK_FILE)
    try:
        with pytest.raises(VocalfrontError, match=f"another training is running in this folder "
                                                  f"\\(process {holder.pid} "):
            train(tiny_config(tiny_data, "train.updates=2"), tmp_path, progress=False)
    finally:
        holder.kill()
        holder.communicate()
    assert [path.name for path in tmp_path.iterdir()] == [LOCK_FILE]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_detector(path, tiny_detector())
    return path


@pytest.fixture
def song(tmp_path) -> Path:
    path = tmp_path / "in" / "song.wav"
    path.parent.mkdir()
    sf.write(path, reference_signal(), SR)
    return path


def one_line_error(capsys, command: str) -> str:
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"vocalfront {command}: error: ")
    return captured.err


@pytest.mark.parametrize("args", [[""], ["{song}", "--out", ""], ["{song}", "--out="],
                                  ["{song}", "--model", ""]],
                         ids=["path", "out", "out-equals", "model"])
def test_an_empty_path_is_refused_not_taken_as_the_current_folder(args, song, model_file, capsys,
                                                                  monkeypatch, trust_case):
    trust_case(3)
    monkeypatch.chdir(song.parent)
    args = [arg.format(song=song) for arg in args]
    assert main(["detect", *args, "--no-progress"]) == 2
    assert "empty" in one_line_error(capsys, "detect")
    assert [path.name for path in song.parent.iterdir()] == ["song.wav"]


def test_an_empty_path_is_refused_by_collect_audio_files(song, monkeypatch, trust_case):
    trust_case(3)
    monkeypatch.chdir(song.parent)
    with pytest.raises(VocalfrontError, match="empty path"):
        collect_audio_files([""])


@pytest.mark.parametrize(("args", "message"), [
    (["--min-duration", "-1"], "--min-duration -1.0: must be a number from 0"),
    (["--min-duration", "nan"], "--min-duration nan: must be a number from 0"),
    (["--min-gap", "inf"], "--min-gap inf: must be a number from 0"),
    (["--min-gap", "nan"], "--min-gap nan: must be a number from 0"),
    (["--threshold", "nan"], "--threshold nan: must be a number from 0 to 1"),
    (["--threshold", "inf"], "--threshold inf: must be a number from 0 to 1"),
    (["--threshold", "1.5"], "--threshold 1.5: must be a number from 0 to 1"),
    (["--threads", "100000"], "--threads 100000: must be a whole number from 1 to "),
    (["--out", "{song}"], "--out {song}: exists and is not a folder"),
])
def test_detect_options_are_checked_before_any_file_is_processed(args, message, song, model_file,
                                                                 capsys, monkeypatch, trust_case):
    trust_case(8)
    monkeypatch.setattr(DetectJob, "process", lambda self, file: pytest.fail("a file was processed"))
    args = [arg.format(song=song) for arg in args]
    assert main(["detect", str(song), "--model", str(model_file), "--no-progress", *args]) == 2
    assert message.format(song=song) in one_line_error(capsys, "detect")


@pytest.mark.parametrize(("args", "message"), [
    (["--smooth", str(10**12)], f"--smooth {10**12}: must be a whole number from 0 to {MAX_SMOOTHING}"),
    (["--out", "{song}"], "--out {song}: exists and is not a folder"),
    (["--threads", "100000"], "--threads 100000: must be a whole number from 1 to "),
])
def test_evaluate_options_are_checked_before_the_evaluation(args, message, song, model_file, capsys,
                                                            trust_case):
    trust_case(8)
    args = [arg.format(song=song) for arg in args]
    # the dataset does not exist: an option error proves the options came first
    assert main(["evaluate", "--model", str(model_file), "--data", str(song.parent / "nowhere"),
                 "--no-progress", *args]) == 2
    assert message.format(song=song) in one_line_error(capsys, "evaluate")


@pytest.mark.parametrize(("formats", "theirs"), [("lab", "song.lab"), ("lab,csv", "song.csv"),
                                                ("json", "song.json"),
                                                ("lab", "song.provenance.json")])
def test_detect_never_replaces_a_file_it_did_not_write(formats, theirs, song, model_file, capsys,
                                                       trust_case):
    trust_case(12)
    truth = song.parent / theirs
    truth.write_text("0.0 0.5 nosing\n0.5 2.0 sing\n")  # hand-made ground truth
    args = ["detect", str(song), "--model", str(model_file), "--format", formats, "--no-progress"]
    assert main(args) == 2
    assert f"{truth}: exists and was not written by vocalfront detect" in one_line_error(capsys, "detect")
    assert sorted(path.name for path in song.parent.iterdir()) == sorted([song.name, theirs])
    assert truth.read_text() == "0.0 0.5 nosing\n0.5 2.0 sing\n"
    truth.unlink()
    assert main(args) == 0 and main(args) == 0  # its own outputs it replaces
    capsys.readouterr()


def test_detect_keeps_owning_outputs_an_earlier_run_wrote_in_another_format(song, model_file, capsys):
    def detect(formats: str) -> int:
        return main(["detect", str(song), "--model", str(model_file), "--format", formats,
                     "--no-progress"])

    # an Audacity file cannot carry provenance: only the side file says whose it is
    assert detect("lab,audacity") == 0 and detect("lab") == 0 and detect("lab,audacity") == 0
    capsys.readouterr()


def test_a_pipe_named_like_an_output_is_neither_read_nor_replaced(song, model_file, capsys,
                                                                  trust_case):
    trust_case(12)
    os.mkfifo(song.with_suffix(".provenance.json"))  # reading it would wait for a writer for ever
    assert main(["detect", str(song), "--model", str(model_file), "--no-progress"]) == 2
    assert "song.provenance.json: exists and was not written" in one_line_error(capsys, "detect")
    assert not song.with_suffix(".lab").exists()


PAPER = Path(__file__).parents[1] / "experiments" / "paper.toml"
OTHER_COMMANDS = {
    "theory-seconds-negative": (["theory", "--seconds", "-1"],
                                "--seconds -1.0: must be a number from 1 to 600"),
    "theory-seconds-huge": (["theory", "--seconds", "1e7"],
                            "--seconds 10000000.0: must be a number from 1 to 600"),
    "theory-seconds-nan": (["theory", "--seconds", "nan"], "--seconds nan: must be a number from 1"),
    "theory-clips-zero": (["theory", "--clips", "0"], "--clips 0: must be a whole number from 1"),
    "experiment-seeds-huge": (["experiment", "--config", str(PAPER), "--out", "{tmp}/exp", "--seeds",
                               "1000000000"], "number of seeds must be a whole number from 1 to 1000"),
    "experiment-workers-huge": (["experiment", "--config", str(PAPER), "--out", "{tmp}/exp", "--workers",
                                 "100000"], "--workers 100000: must be a whole number from 1 to "),
    "experiment-out-file": (["experiment", "--config", str(PAPER), "--out", "{song}"],
                            "--out {song}: exists and is not a folder"),
    "train-out-file": (["train", "--config", str(TINY_CONFIG), "--out", "{song}"],
                       "--out {song}: exists and is not a folder"),
    "data-check-tolerance-negative": (["data", "check", "{tmp}", "--tolerance", "-1"],
                                      "--tolerance -1.0: must be a number from 0"),
    "data-check-tolerance-nan": (["data", "check", "{tmp}", "--tolerance", "nan"],
                                 "--tolerance nan: must be a number from 0"),
    "theory-hops-zero": (["theory", "--hops", "315", "0"],
                         "--hops 0: must be a whole number from 128 to 11025"),
    "theory-hops-negative": (["theory", "--hops", "-315"], "--hops -315: must be a whole number from 128"),
    "theory-hops-huge": (["theory", "--hops", str(10**9)],
                         f"--hops {10**9}: must be a whole number from 128 to 11025"),
    "theory-hops-too-many": (["theory", "--hops", *["315"] * (MAX_HOPS + 1)],
                             f"--hops: at most {MAX_HOPS} values, got {MAX_HOPS + 1}"),
    "theory-hops-repeated": (["theory", "--hops", "630", "315", "630"],
                             "--hops 630: given more than once"),
    "experiment-cache-file": (["experiment", "--config", str(PAPER), "--out", "{tmp}/exp",
                               "--cache", "{song}"],
                              "--cache {song}: exists and is not a folder"),
    "data-check-cache-file": (["data", "check", "{tmp}", "--cache", "{song}"],
                              "--cache {song}: exists and is not a folder"),
    "evaluate-cache-file": (["evaluate", "--data", "{tmp}", "--cache", "{song}"],
                            "--cache {song}: exists and is not a folder"),
}


@pytest.mark.parametrize("case", OTHER_COMMANDS)
def test_every_commands_options_are_checked_before_any_work(case, song, tmp_path, capsys, trust_case):
    trust_case(8)
    args, message = OTHER_COMMANDS[case]
    fill = {"song": song, "tmp": tmp_path}
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    assert main([arg.format(**fill) for arg in args]) == 2
    assert message.format(**fill) in one_line_error(capsys, args[0])
    assert sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before


TERMINATED_IN_A_WRITE = """
import os, signal, sys
from vocalfront.cli import main
fsync = os.fsync
def terminated_while_writing(fd):  # SIGTERM arrives while an output's temporary file exists
    os.kill(os.getpid(), signal.SIGTERM)
    fsync(fd)
os.fsync = terminated_while_writing
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_detection_leaves_no_temporary_file(song, model_file, tmp_path, trust_case):
    trust_case(9)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", TERMINATED_IN_A_WRITE, "detect", str(song),
                             "--model", str(model_file), "--out", str(out), "--no-progress",
                             "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == "vocalfront detect: terminated"
    assert list(out.iterdir()) == []  # no hidden .song.lab.*.tmp


@pytest.fixture(scope="module")
def detector():
    return tiny_detector()


def test_detect_takes_numpy_scalars_as_numbers(detector, trust_case):
    trust_case(7)
    signal = reference_signal().astype(np.float32)
    expected = vocalfront.detect(signal, SR, detector, threshold=0.5, smooth=5)
    result = vocalfront.detect(signal, np.int64(SR), detector, threshold=np.float32(0.5),
                               smooth=np.int64(5))
    np.testing.assert_array_equal(result.smoothed, expected.smoothed)
    assert result.segments == expected.segments


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_detect_takes_half_precision_tensors(dtype, detector, trust_case):
    trust_case(7)
    signal = torch.from_numpy(reference_signal()).to(dtype)
    expected = vocalfront.detect(signal.float(), SR, detector)
    np.testing.assert_array_equal(vocalfront.detect(signal, SR, detector).probabilities,
                                  expected.probabilities)
    np.testing.assert_array_equal(vocalfront.detect(signal.numpy() if dtype == torch.float16
                                                    else signal.float().numpy(), SR,
                                                    detector).probabilities, expected.probabilities)


@pytest.mark.parametrize(("arguments", "message"), [
    ({"sample_rate": 1}, "sample_rate must be a whole number of Hz from 1000 to 768000, got 1"),
    ({"sample_rate": 999.0}, "from 1000"),
    ({"sample_rate": 10**9}, "from 1000 to 768000, got 1000000000"),
    ({"smooth": 10**9}, f"smoothing must be a whole number of frames from 0 to {MAX_SMOOTHING}"),
    ({"smooth": -1}, "smoothing must be a whole number of frames"),
    ({"threshold": float("nan")}, "threshold must be a number from 0 to 1"),
    ({"threshold": np.float64(2.0)}, "threshold must be a number from 0 to 1"),
])
def test_detect_refuses_values_out_of_range_in_one_line(arguments, message, detector, trust_case):
    trust_case(7)
    arguments = {"sample_rate": SR, **arguments}
    with pytest.raises(VocalfrontError, match=re.escape(message)) as caught:
        vocalfront.detect(reference_signal(), model=detector, **arguments)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["mel", "fb"])
def test_a_front_end_refuses_an_empty_batch_in_one_line(name, trust_case):
    trust_case(6)
    with pytest.raises(AudioError, match="empty batch"):
        build_frontend(name, n_bands=8)(torch.zeros(0, 4096))


@pytest.mark.parametrize("name", ["mel", "fb"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_front_end_computes_half_precision_input_in_float32(name, dtype, trust_case):
    trust_case(6)
    frontend = build_frontend(name, n_bands=8)
    signal = torch.from_numpy(reference_signal(0.5)).to(dtype)
    energies = frontend(signal)
    assert energies.dtype == torch.float32
    torch.testing.assert_close(energies, frontend(signal.float()))


@pytest.mark.parametrize(("options", "message"), [
    ({"hop": 0}, "hop must be a whole number from 16 to 22050, got 0"),
    ({"hop": -315}, "hop must be a whole number from 16"),
    ({"hop": 1}, "hop must be a whole number from 16"),
    ({"window": 0}, "window must be a whole number from 16 to 16384, got 0"),
    ({"window": 3}, "window must be a whole number from 16"),
    ({"window": 2**28}, "window must be a whole number from 16 to 16384"),
    ({"n_bands": 0}, "n_bands must be a whole number from 1 to 1024, got 0"),
    ({"n_bands": -4}, "n_bands must be a whole number"),
    ({"n_bands": 2000}, "n_bands must be a whole number from 1 to 1024"),
    ({"n_bands": 2.5}, "n_bands must be a whole number from 1 to 1024, got 2.5"),
    ({"sample_rate": 0}, "sample_rate must be a whole number from 1000"),
    ({"sample_rate": 10**9}, "sample_rate must be a whole number from 1000 to 384000"),
    ({"fmin": float("nan")}, "fmin must be a number of Hz from 0 to 11025"),
    ({"fmin": 5000.0, "fmax": 1000.0}, "fmin must be below fmax"),
    ({"fmax": 20000.0}, "fmax must be a number of Hz from 0 to 11025"),
    ({"hop_size": 315}, "has no option 'hop_size'"),
])
@pytest.mark.parametrize("name", ["mel", "fb"])
def test_front_end_parameters_out_of_range_are_one_line_errors(name, options, message, trust_case):
    trust_case(6)
    with pytest.raises(VocalfrontError, match=re.escape(message)) as caught:
        build_frontend(name, **{"n_bands": 8, **options})
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["mel", "fb", "fb-noavg", "fb-gauss", "fb-learn-avg"])
def test_a_front_end_with_bands_no_fft_bin_reaches_is_a_one_line_error(name, trust_case):
    trust_case(6)
    # mel and fb-noavg gave 39 bands of zeros (librosa only warns "Empty filters detected"); the
    # other filter banks refused in their averaging design, without naming a window that serves
    message = ("front-end window 64 is too short for 80 bands from 27.5 Hz: 39 bands (the first is "
               "band 0) fall between its FFT bins, 344.5 Hz apart, and would always be zero; use "
               "window >= 453, fewer n_bands or a higher fmin")
    with pytest.raises(VocalfrontError, match=re.escape(message)) as caught:
        build_frontend(name, window=64)
    assert "\n" not in str(caught.value)


def weighted_bins(frontend) -> torch.Tensor:
    """Whether each band of a mel-spectrogram or filter bank weights at least one FFT bin."""
    if isinstance(frontend, FilterBank):
        return torch.from_numpy(frontend.triangle_table()[1] > 0).any(dim=1)
    return (frontend.weights > 0).any(dim=1)


@pytest.mark.parametrize(("name", "options"), [("mel", {}), ("mel", {"convention": "librosa"}),
                                               ("mel", {"convention": "htk"}), ("fb-noavg", {})])
def test_the_window_an_empty_band_error_names_is_the_shortest_from_which_every_band_holds_a_bin(
        name, options, trust_case):
    trust_case(6)
    with pytest.raises(VocalfrontError, match=r"use window >= \d+,") as caught:
        build_frontend(name, window=256, **options)
    shortest = int(re.search(r"window >= (\d+),", str(caught.value)).group(1))
    with pytest.raises(VocalfrontError, match=f"window {shortest - 1} is too short"):
        build_frontend(name, window=shortest - 1, **options)
    energies = build_frontend(name, window=shortest, **options)(torch.from_numpy(reference_signal(1.0)))
    assert bool((energies.sum(dim=-1) > 0).all())
    for window in range(shortest + 1, 2 * shortest):
        assert bool(weighted_bins(build_frontend(name, window=window, **options)).all()), window


def test_band_norm_refuses_to_fit_a_single_frame(trust_case):
    trust_case(6)
    norm = BandNorm(4)
    with pytest.raises(VocalfrontError, match="at least 2 frames per band, got 1"):
        norm.fit(torch.rand(1, 4, 1))
    assert torch.isfinite(norm(torch.rand(1, 4, 3))).all()


def edited_model(source: Path, folder: Path, edit) -> Path:
    """A copy of the detector file ``source`` with its payload changed by ``edit(payload)``."""
    payload = torch.load(source, weights_only=True)
    edit(payload)
    path = folder / "edited.pt"
    torch.save(payload, path)
    return path


def setting(part: str, key: str, value):
    return lambda payload: payload["config"][part].__setitem__(key, value)


MODEL_EDITS = {
    "extra-is-a-string": (lambda payload: payload.__setitem__("extra", "oops"),
                          "config, state_dict and extra must be tables"),
    "window-2**28": (setting("frontend", "window", 2**28), "window must be a whole number from 16"),
    "hop-1": (setting("frontend", "hop", 1), "hop must be a whole number from 16"),
    "sample-rate-1e9": (setting("frontend", "sample_rate", 1e9), "sample_rate must be a whole number"),
    "context-200001": (setting("cnn", "context", 200001), "odd number of frames up to 1023"),
    "dropout-nan": (setting("cnn", "dropout", float("nan")), "dropout must be a probability"),
    "cnn-bands-10**9": (setting("cnn", "n_bands", 10**9), "CNN n_bands must be a whole number"),
    "log-floor-0": (setting("compression", "floor", 0.0), "floor must be a positive finite number"),
    "median-filter-10**12": (lambda payload: payload["extra"].__setitem__("median_filter", 10**12),
                             "stored median filter must be a whole number of frames from 0 to"),
    "threshold-nan": (lambda payload: payload["extra"].__setitem__("threshold", float("nan")),
                      "stored threshold must be a number from 0 to 1"),
    "nan-weights": (lambda payload: payload["state_dict"]["cnn.units.0.conv.weight"].fill_(np.nan),
                    r"weights are not finite \(NaN or Inf in cnn.units.0.conv.weight\)"),
}


@pytest.mark.parametrize("edit", MODEL_EDITS)
def test_a_model_file_is_checked_whole_at_load(edit, model_file, tmp_path, trust_case):
    trust_case(4)
    change, message = MODEL_EDITS[edit]
    path = edited_model(model_file, tmp_path, change)
    with pytest.raises(VocalfrontError, match=message) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path.resolve()}: ") and "\n" not in str(caught.value)


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/urandom", "fifo", "oversized"])
def test_a_model_path_that_is_no_bounded_regular_file_is_refused_unread(special, tmp_path,
                                                                       trust_case):
    trust_case(4)
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "model.pt"
        os.mkfifo(path)  # reading would wait for a writer for ever
    elif special == "oversized":
        path = tmp_path / "model.pt"
        with path.open("wb") as handle:
            handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk space, no time
    problem = "larger than any detector file" if special == "oversized" else "not a regular file"
    with pytest.raises(VocalfrontError, match=problem):
        load_model(path)


TWO_HOURS = 2 * 3600
PEAK_LIMIT = 1.5 * 2**30
"""Peak memory (bytes) allowed for detecting a 2-hour 44.1 kHz stereo file (issue 18)."""
PEAK_CHILD = """
import json, sys, time
from vocalfront.cli import main
start = time.perf_counter()
code = main(["detect", sys.argv[1], "--model", sys.argv[2], "--out", sys.argv[3], "--no-progress",
             "--threads", "1"])
# VmHWM is this process's own peak; ru_maxrss would carry the parent's over exec
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({"status": code, "seconds": time.perf_counter() - start, "peak": peak}))
"""


def test_a_two_hour_stereo_file_at_44100_hz_is_detected_in_at_most_one_and_a_half_gb(
        tmp_path, trust_case, record_property):
    """1.27 GB of 16-bit stereo silence (a sparse file) through the CLI in a child process: its
    peak resident memory - interpreter, torch and model included - stays within 1.5 GB, as the
    file is decoded, mixed and resampled block by block into one 22.05 kHz mono signal (635 MB).
    A coarse detector (7 frames per second) keeps the CNN's time small, as in the 3-hour test."""
    trust_case(11)
    path = tmp_path / "two-hours.wav"
    data_bytes = 4 * TWO_HOURS * 44100
    with path.open("wb") as handle:
        handle.write(wav_header(44100, channels=2, data_bytes=data_bytes))
        handle.truncate(44 + data_bytes)
    coarse = tiny_detector()
    coarse.frontend = build_frontend("mel", n_bands=25, hop=3150)
    model = tmp_path / "coarse.pt"
    save_detector(model, coarse)
    result = subprocess.run([sys.executable, "-c", PEAK_CHILD, str(path), str(model),
                             str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["status"] == 0, result.stderr[-2000:]
    record_property("two_hour_peak_mb", round(report["peak"] / 2**20))
    record_property("two_hour_seconds", round(report["seconds"], 1))
    assert report["peak"] <= PEAK_LIMIT, f"peak memory {report['peak'] / 2**20:.0f} MB"


@pytest.mark.parametrize("where", ["given", "below"])
def test_an_unreadable_folder_is_reported_not_skipped(where, song, model_file, refuse_listing, capsys,
                                                      trust_case):
    trust_case(10)
    locked = song.parent / "locked"
    locked.mkdir()
    refuse_listing(locked)
    target = locked if where == "given" else song.parent
    assert main(["detect", str(target), "--model", str(model_file), "--no-progress"]) == 2
    error = one_line_error(capsys, "detect")
    assert f"{locked}: cannot read folder (Permission denied)" in error

# ----------------------------------------------------------------------------- case 5: configs
@pytest.mark.parametrize(("override", "message"), [
    ("model.context=1000001", "[model] context must be from 1 to 1023"),
    ("eval.median_filter=1000000000000", "[eval] median_filter must be from 1 to 10000"),
    ("train.num_threads=100000", "[train] num_threads must be from 0 to 4096"),
    ("train.dense_frames=1000000000", "[train] dense_frames must be from 1 to 100000"),
    ("train.margin_frames=1000000000", "[train] margin_frames must be from 0 to 10000"),
    ("train.batch_size=1000000000000", "[train] batch_size must be from 1 to 4096"),
    ("train.lr=inf", "[train] lr must be from 1e-12 to 10, got inf"),
    ("train.lr=nan", "[train] lr must be from 1e-12 to 10, got nan"),
    ("model.dropout=nan", "[model] dropout must lie in [0, 1), got nan"),
    ("data.augment.gain_db_range=[0, inf]", "augmentation gain_db_range must be finite"),
    ("data.augment.eq_points=1000000000", "augmentation eq_points must be from 2 to 1000"),
    ("data.remix.gain_db_range=[0, inf]", "remix gain_db_range must be (low, high) with -60"),
])
def test_every_training_setting_is_bounded_and_its_range_named(override, message, trust_case):
    trust_case(5)
    with pytest.raises(VocalfrontError, match=re.escape(message)):
        load_config(TINY_CONFIG, [override])


@pytest.mark.parametrize("content", [b"\0" * (2 << 20), b"a = " + b"[" * 100_000, b"\xff\xfe"])
def test_a_huge_deeply_nested_or_binary_config_file_is_a_one_line_error(tmp_path, content, trust_case):
    trust_case(5)
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(VocalfrontError, match=r"bad.toml: (larger than|invalid TOML)"):
        load_config(path)


def test_a_config_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path, trust_case):
    trust_case(5)
    with pytest.raises(VocalfrontError, match="not a regular file"):
        load_config("/dev/zero")
    with pytest.raises(VocalfrontError, match="not a regular file"):
        load_config(tmp_path)


@pytest.mark.parametrize("options", ["{ hop = 0 }", "{ colour = 1 }", "{ window = 1000000000 }"])
def test_bad_frontend_options_fail_before_any_audio_is_read(options, tmp_path, trust_case):
    trust_case(5)
    config = load_config(TINY_CONFIG, [f"model.frontend_options={options}",
                                       f"data.root={tmp_path / 'no-data'}"])
    with pytest.raises(VocalfrontError):
        train(config, tmp_path / "run", progress=False)
