"""Interrupted batch detection loses nothing: a ``vocalfront detect`` process killed (SIGKILL) or
interrupted (SIGINT) while it works leaves only complete outputs - watched all along - and a rerun
with ``--skip-existing`` finishes the rest with the results of an uninterrupted run.

Training is covered elsewhere: ``tests/test_resume.py`` kills and resumes training runs, and
checks that a damaged latest checkpoint is detected and the previous one used.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from robustness_corpus import SR, reference_signal
from test_detect import tiny_detector

from vocalfront.audio import CACHE_ENV
from vocalfront.cli import main
from vocalfront.data.labels import read_segments
from vocalfront.detector_file import save_detector

FILES = 8
SECONDS = 60.0
"""Length of each input (s): long enough that a file takes a visible fraction of a second (the
tiny model detects 20 s in about 45 ms, close to the polling's own lag)."""
FORMATS = ("lab", "json")
OUTPUTS = (*FORMATS, "provenance.json")
"""Files written per song: the formats, and the provenance side file beside the ``.lab``."""
fileio_module = importlib.import_module("vocalfront.fileio")
TEMPORARY = re.compile(r"^\..+\.tmp$")
"""Name of an :func:`~vocalfront.fileio.atomic_write` temporary file (hidden)."""


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("songs")
    for index in range(FILES):
        sf.write(folder / f"song{index}.wav", reference_signal(SECONDS, seed=index), SR)
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_detector(path, tiny_detector())
    return path


def detect_args(songs: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return ["detect", str(songs), "--model", str(model), "--out", str(out), "--format",
            ",".join(FORMATS), "--no-progress", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def reference(songs, model_file, tmp_path_factory) -> dict[str, bytes]:
    """Outputs of an uninterrupted run: file name -> content."""
    out = tmp_path_factory.mktemp("reference")
    assert main(detect_args(songs, model_file, out)) == 0
    return {path.name: path.read_bytes() for path in out.iterdir()}


def assert_only_complete_outputs(out: Path, seen: dict[str, int] | None = None) -> set[str]:
    """Every visible file in ``out`` is a complete, parseable output (hidden ones are temporary
    files of interrupted writes); returns the stems with all their outputs. ``seen`` (name ->
    modification time) remembers files already checked, so polling stays cheap."""
    seen = {} if seen is None else seen
    expected_names = {f"song{index}.{name}" for index in range(FILES) for name in OUTPUTS}
    for path in out.iterdir() if out.exists() else ():
        if TEMPORARY.match(path.name) or seen.get(path.name) == path.stat().st_mtime_ns:
            continue
        assert path.name in expected_names, path.name
        if path.name.endswith(".provenance.json"):
            assert json.loads(path.read_text())["provenance"]["model"] == "tiny.pt"
        elif path.suffix == ".json":
            assert json.loads(path.read_text())["duration"] == SECONDS
        else:
            assert read_segments(path, duration=SECONDS)[-1].end == SECONDS
        seen[path.name] = path.stat().st_mtime_ns
    return {stem for stem in (name.split(".")[0] for name in seen)
            if all(f"{stem}.{name}" in seen for name in OUTPUTS)}


def assert_cache_entries_load(cache: Path) -> None:
    """Every visible entry of the audio cache holds a whole decoded file."""
    for entry in cache.iterdir():
        if not TEMPORARY.match(entry.name):
            assert np.load(entry).shape == (1, round(SECONDS * SR))


def outputs(out: Path) -> dict[str, bytes]:
    """The visible files of ``out``: name -> content."""
    return {path.name: path.read_bytes() for path in out.iterdir() if not TEMPORARY.match(path.name)}


def default_interrupt_handling() -> None:
    """Run in the child before ``exec``: SIGINT back to its default, so that Python turns it into
    ``KeyboardInterrupt``. A suite started in the background (``cmd &`` in a script, ``nohup``)
    inherits SIGINT ignored, and an ignored signal stays ignored across ``exec``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after(command: list[str], out: Path, cache: Path, complete: int,
                    sig: signal.Signals) -> subprocess.CompletedProcess:
    """Run ``vocalfront`` with ``command`` in a child process (audio cache in ``cache``), checking
    new outputs as they appear; send ``sig`` at a random moment after ``complete`` files have all
    their outputs."""
    process = subprocess.Popen([sys.executable, "-m", "vocalfront", *command],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, CACHE_ENV: str(cache), "PYTHONWARNINGS": "ignore"},
                               preexec_fn=default_interrupt_handling)
    deadline, seen, finished_at = time.monotonic() + 120, {}, []
    while len(finished_at) < complete and process.poll() is None:
        assert time.monotonic() < deadline, "no progress"
        finished_at += [time.monotonic()] * (len(assert_only_complete_outputs(out, seen)) - len(finished_at))
        time.sleep(0.01)
    # a random moment within half a file's time, so that the batch is still running
    per_file = (finished_at[-1] - finished_at[0]) / (len(finished_at) - 1) if len(finished_at) > 1 else 0.1
    time.sleep(random.uniform(0.0, min(0.1, per_file / 2)))
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    assert_cache_entries_load(cache)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_batch_killed_twice_resumes_with_skip_existing_and_loses_nothing(
        songs, model_file, reference, tmp_path, monkeypatch, record_property):
    out, cache = tmp_path / "out", tmp_path / "cache"
    done_before = 0
    for complete in (2, 5):  # two kill points, each after some files are finished
        killed = interrupt_after(detect_args(songs, model_file, out, "--skip-existing"), out, cache,
                                 complete, signal.SIGKILL)
        assert killed.returncode == -signal.SIGKILL, f"finished before the kill: {killed.stderr}"
        finished = assert_only_complete_outputs(out)
        assert done_before < len(finished) < FILES
        done_before = len(finished)
    monkeypatch.setenv(CACHE_ENV, str(cache))
    assert main(detect_args(songs, model_file, out, "--skip-existing")) == 0
    assert_only_complete_outputs(out)
    assert_cache_entries_load(cache)
    assert outputs(out) == reference
    record_property("kill_points", 2)


def test_interrupted_batch_stops_cleanly_and_resumes(songs, model_file, reference, tmp_path, capsys,
                                                     record_property):
    # on an idle machine the last files can finish before the signal lands: then try again
    for attempt in range(5):
        out, cache = tmp_path / f"out{attempt}", tmp_path / f"cache{attempt}"
        stopped = interrupt_after(detect_args(songs, model_file, out), out, cache, 3, signal.SIGINT)
        if stopped.returncode != 0:
            break
    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.splitlines() == ["vocalfront detect: interrupted"]
    finished = assert_only_complete_outputs(out)  # a temporary file may remain: see below
    assert main(detect_args(songs, model_file, out, "--skip-existing")) == 0
    assert capsys.readouterr().err.startswith(f"{FILES - len(finished)} done, {len(finished)} skipped")
    assert outputs(out) == reference
    record_property("kill_points", 1)


def test_an_interrupt_right_after_the_temporary_file_is_created_leaves_nothing(tmp_path,
                                                                             monkeypatch):
    create = fileio_module.os.open

    def create_then_interrupt(*args, **kwargs):
        create(*args, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C just after the temporary file appeared

    monkeypatch.setattr(fileio_module.os, "open", create_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fileio_module.write_text_atomic(tmp_path / "song.lab", "0.000 1.000 sing\n")
    assert list(tmp_path.iterdir()) == []
