"""The run lock: one holder at a time, its holder named, released however the holder ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vocalfront.fileio import process_lock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock locks are POSIX")

HOLD = """
import sys, time
from vocalfront.fileio import process_lock
with process_lock(sys.argv[1]) as holder:
    print("free" if holder is None else "held", flush=True)
    time.sleep(60)
"""


def hold_in_another_process(path: Path) -> subprocess.Popen:
    """A Python process that takes the lock at ``path`` and sleeps; returns once it holds it."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "free"
    return process


def test_a_free_lock_is_taken_and_released_on_exit(tmp_path):
    path = tmp_path / "run" / ".lock"
    with process_lock(path) as holder:
        assert holder is None
        assert path.read_text() == f"process {os.getpid()} on {os.uname().nodename}"
    with process_lock(path) as holder:
        assert holder is None


def test_a_held_lock_is_not_taken_and_names_its_holder(tmp_path):
    path = tmp_path / ".lock"
    process = hold_in_another_process(path)
    try:
        with process_lock(path) as holder:
            assert holder == f"process {process.pid} on {os.uname().nodename}"
    finally:
        process.kill()
        process.communicate()  # reaps it and closes its pipe


def test_the_lock_of_a_killed_process_is_free_again(tmp_path):
    path = tmp_path / ".lock"
    process = hold_in_another_process(path)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    assert path.exists()  # left behind by the killed holder, yet not stale: the kernel released it
    with process_lock(path) as holder:
        assert holder is None


def test_the_lock_is_released_when_the_body_raises(tmp_path):
    path = tmp_path / ".lock"
    with pytest.raises(RuntimeError), process_lock(path):
        raise RuntimeError
    with process_lock(path) as holder:
        assert holder is None


def test_a_lock_this_process_holds_is_taken_again_without_releasing_it(tmp_path):
    path = tmp_path / ".lock"
    with process_lock(path) as outer:
        with process_lock(tmp_path / "." / ".lock") as inner:  # the same file, another spelling
            assert outer is None and inner is None
        other = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(60)", ""), str(path)],
                               capture_output=True, text=True, check=True)
        assert other.stdout.strip() == "held"  # the inner exit released nothing
