"""Test-session settings and fixtures shared by several test files."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

# Many small tensor operations: one intra-op thread is faster than two on a small shared machine.
torch.set_num_threads(1)


@pytest.fixture
def refuse_listing(monkeypatch) -> Callable[[Path], None]:
    """``refuse_listing(folder)``: from then on, listing ``folder`` fails with EACCES, as for a
    folder without read permission (tests may run as root, whom permissions do not stop)."""
    scandir = os.scandir
    refused: set[Path] = set()

    def guarded(path="."):
        if Path(path) in refused:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", guarded)
    return refused.add
