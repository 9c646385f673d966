"""The detection timeline figure."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID
from vocalfront.plotting import plot_timeline
from vocalfront.segments import Segment

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def probabilities(frames: int = 140) -> np.ndarray:
    return 0.5 + 0.5 * np.sin(np.linspace(0, 6, frames))


@pytest.mark.parametrize(("with_waveform", "height"), [(False, 350), (True, 500)])
def test_timeline_is_written_as_a_png_of_the_figure_size(tmp_path: Path, with_waveform, height):
    rng = np.random.default_rng(0)
    waveform = rng.standard_normal(DEFAULT_GRID.num_samples(140)) if with_waveform else None
    path = tmp_path / "plots" / "song.png"
    segments = [Segment(0.2, 0.6), Segment(1.0, 1.5)]
    plot_timeline(path, probabilities(), 0.5, segments, title="song.wav", waveform=waveform)
    assert png_size(path) == (1200, height)
    assert [p.name for p in path.parent.iterdir()] == ["song.png"]


def test_timeline_without_frames_or_segments_still_renders(tmp_path: Path):
    path = tmp_path / "empty.png"
    plot_timeline(path, np.zeros(0), 0.5, [], waveform=np.zeros(100))
    assert png_size(path) == (1200, 500)


def test_timeline_rejects_two_dimensional_probabilities(tmp_path: Path):
    with pytest.raises(VocalfrontError, match="probabilities must be one-dimensional"):
        plot_timeline(tmp_path / "x.png", np.zeros((2, 3)), 0.5, [])
    assert not (tmp_path / "x.png").exists()
