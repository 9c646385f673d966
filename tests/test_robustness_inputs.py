"""Hostile inputs: every case of the corpus gives a correct detection or a one-line error naming
the file - through the Python API, the CLI and a batch of all of them - and a 3-hour file is
processed in bounded time and memory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from robustness_corpus import CASES, SECONDS, SR, Case, Outcome, write_corpus, write_silent_wav
from test_detect import tiny_detector

import vocalfront
from vocalfront.cli import main
from vocalfront.data.labels import read_segments
from vocalfront.detect import Detection
from vocalfront.detector_file import save_detector
from vocalfront.errors import VocalfrontError
from vocalfront.frontends import build_frontend
from vocalfront.grid import DEFAULT_GRID

SUMMARY = re.compile(r"^(\d+) done, (\d+) skipped \(outputs exist\), (\d+) failed$")
REGULAR = tuple(case for case in CASES if case.regular)


@pytest.fixture(scope="module")
def detector():
    return tiny_detector()


@pytest.fixture(scope="module")
def model_file(detector, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_detector(path, detector)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def api_outcome(path: Path, model) -> Detection | VocalfrontError:
    """The detection of ``path``, or the error it raised (any other exception propagates)."""
    try:
        return vocalfront.detect(path, model=model)
    except VocalfrontError as error:
        return error


def assert_sound_detection(detection: Detection) -> None:
    """Probabilities in [0, 1], one per grid frame of the signal; segments inside the signal."""
    assert np.isfinite(detection.probabilities).all() and np.isfinite(detection.smoothed).all()
    assert ((detection.probabilities >= 0) & (detection.probabilities <= 1)).all()
    samples = round(detection.duration * SR)
    assert len(detection.probabilities) == DEFAULT_GRID.num_frames(samples) >= 1
    assert all(0 <= s.start < s.end <= detection.duration for s in detection.segments)


def assert_one_line_error(error: Exception, path: Path, problem: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert re.search(problem, message), message
    if path.is_file():  # libsndfile's "File does not exist or is not a regular file" misleads
        assert "not exist" not in message and "not a regular file" not in message, message


def assert_expected_result(detection: Detection, case: Case, detector) -> None:
    assert_sound_detection(detection)
    if case.reference is not None:
        expected = vocalfront.detect(case.reference(), sample_rate=case.rate, model=detector)
        assert detection.duration == pytest.approx(expected.duration)
        np.testing.assert_allclose(detection.probabilities, expected.probabilities, atol=case.atol)
    if case.samples is not None:
        assert round(detection.duration * SR) == case.samples


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_api_gives_a_correct_result_or_a_one_line_error(case, corpus, detector, record_property):
    path = corpus[case.name]
    outcome = api_outcome(path, detector)
    record_property("bad_input_case", case.name)
    record_property("expected", case.outcome.value)
    record_property("got", f"error: {str(outcome).removeprefix(f'{path}: ')}"
                    if isinstance(outcome, VocalfrontError)
                    else f"result: {len(outcome.probabilities)} frames, {outcome.duration:.2f} s")
    if case.outcome is Outcome.RESULT:
        assert isinstance(outcome, Detection), f"{case.name}: {outcome}"
        assert_expected_result(outcome, case, detector)
    elif case.outcome is Outcome.ERROR:
        assert isinstance(outcome, VocalfrontError), f"{case.name} was accepted"
        assert_one_line_error(outcome, path, case.problem)
    elif isinstance(outcome, Detection):  # damaged compressed data, partly recovered
        assert_sound_detection(outcome)
        assert outcome.duration <= SECONDS + 0.1  # MP3 frames may pad the end
    else:
        assert_one_line_error(outcome, path, case.problem)


def shown(text: str | Path) -> str:
    """``text`` as Python's stderr prints it: undecodable file-name bytes backslash-escaped."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def run_cli(capsys, *args: str | Path) -> tuple[int, list[str], list[str]]:
    sys.stderr.reconfigure(errors="backslashreplace")  # as the interpreter's own stderr
    status = main(["detect", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err.splitlines()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_cli_writes_labels_or_reports_one_line_naming_the_file(case, corpus, detector, model_file,
                                                                tmp_path, capsys):
    path = corpus[case.name]
    status, out, err = run_cli(capsys, path, "--model", model_file, "--out", tmp_path,
                               "--format", "lab,json")
    assert not any("Traceback" in line for line in out + err)
    if not case.regular:  # refused before the batch starts, like a mistyped path
        assert status == 2 and len(err) == 1, err
        assert err[0].startswith(f"vocalfront detect: error: {path}") and case.cli_problem in err[0]
        return
    accepted = isinstance(api_outcome(path, detector), Detection)
    stem = path.stem
    if accepted:
        assert status == 0, err
        assert out[0].startswith(f"{path}: ")
        document = json.loads((tmp_path / f"{stem}.json").read_text())
        segments = read_segments(tmp_path / f"{stem}.lab", duration=document["duration"])
        assert segments[-1].end == pytest.approx(document["duration"], abs=1e-3)
    else:
        assert status == 1 and out == []
        assert err[0] == "0 done, 0 skipped (outputs exist), 1 failed"
        assert len(err) == 2 and err[1].startswith(f"  {shown(path)}: ")
        assert re.search(case.problem, err[1])
        assert list(tmp_path.iterdir()) == []


def test_a_batch_of_the_whole_corpus_completes_the_good_files_and_lists_exactly_the_bad(
        corpus, detector, model_file, tmp_path, capfd, record_property):
    folder = tmp_path / "corpus"
    write_corpus(folder, REGULAR)
    accepted = {case.name for case in REGULAR
                if isinstance(api_outcome(folder / case.name, detector), Detection)}
    capfd.readouterr()
    sys.stderr.reconfigure(errors="backslashreplace")  # as the interpreter's own stderr
    out = tmp_path / "out"
    status = main(["detect", str(folder), "--model", str(model_file), "--out", str(out),
                   "--format", "lab,json", "--no-progress"])
    captured = capfd.readouterr()  # file descriptors: decoder libraries' messages included
    assert "Traceback" not in captured.err
    assert status == 1
    lines = captured.err.splitlines()
    (start,) = [index for index, line in enumerate(lines) if SUMMARY.match(line)]
    done, skipped, failed = map(int, SUMMARY.match(lines[start]).groups())
    failures = [line[2:] for line in lines[start + 1 :] if line.startswith("  ")]
    failed_names = {Path(line.split(": ", 1)[0]).name for line in failures}
    assert (done, skipped, failed) == (len(accepted), 0, len(REGULAR) - len(accepted))
    assert failed_names == {shown(case.name) for case in REGULAR if case.name not in accepted}
    assert {line.split(": ", 1)[0] for line in captured.out.splitlines()} == \
        {str(folder / name) for name in accepted}
    assert {p.name for p in out.iterdir()} == \
        {f"{Path(name).stem}{suffix}" for name in accepted
         for suffix in (".lab", ".json", ".provenance.json")}
    record_property("batch_files", len(REGULAR))
    record_property("batch_failed", failed)


LONG_SECONDS = 3 * 3600
LONG_CHILD = """
import json, resource, sys, time
from vocalfront.cli import main
from vocalfront.detect import load_model
load_model(sys.argv[2])  # imports and model in memory before the baseline
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
with open("/proc/self/status") as status:
    virtual = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize:"))
limit = virtual + int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway allocation fails, not the machine
base, start = rss(), time.perf_counter()
code = main(["detect", sys.argv[1], "--model", sys.argv[2], "--out", sys.argv[3], "--no-progress",
             "--threads", "1"])
print(json.dumps({"status": code, "base": base, "peak": rss(), "seconds": time.perf_counter() - start}))
"""


def test_a_three_hour_silent_file_is_processed_in_bounded_memory(detector, tmp_path, record_property):
    """173 MB of 8 kHz 16-bit silence through the CLI in a child process. Its memory may grow by
    at most 1.5 copies of the signal at the model rate (float32: 953 MB) - the signal is the one
    thing held whole; features are computed chunk by chunk - and an address-space limit of 2 GB
    above the baseline makes any runaway allocation fail. The tiny detector reads a frame every
    3150 samples (7 per second) so that the CNN, whose cost per frame is fixed, does not dominate;
    decoding, resampling and the front-end are those of the default grid. The time it takes is
    recorded, not asserted (a shared machine makes wall-clock limits flaky); the child's timeout
    only guards against a hang."""
    path = tmp_path / "three-hours.wav"
    write_silent_wav(path, LONG_SECONDS, rate=8000)
    coarse = tiny_detector()
    coarse.frontend = build_frontend("mel", n_bands=25, hop=3150)
    model = tmp_path / "coarse.pt"
    save_detector(model, coarse)
    signal_bytes = 4 * LONG_SECONDS * SR
    result = subprocess.run([sys.executable, "-c", LONG_CHILD, str(path), str(model),
                             str(tmp_path / "out"), str(2 * 1024**3)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["status"] == 0, result.stderr[-2000:]
    segments = read_segments(tmp_path / "out" / "three-hours.lab", duration=LONG_SECONDS)
    assert segments[-1].end == LONG_SECONDS
    growth = report["peak"] - report["base"]
    record_property("long_file_seconds", round(report["seconds"], 1))
    record_property("long_file_rss_growth_mb", round(growth / 2**20))
    assert growth < 1.5 * signal_bytes, f"peak memory grew by {growth / 2**20:.0f} MB"
