"""The detection timeline figure."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from vocalfront.errors import VocalfrontError
from vocalfront.grid import DEFAULT_GRID
from vocalfront.plotting import save_figure, timeline_figure
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
    save_figure(timeline_figure(probabilities(), 0.5, segments, title="song.wav", waveform=waveform),
                path)
    assert png_size(path) == (1200, height)
    assert [p.name for p in path.parent.iterdir()] == ["song.png"]


def test_timeline_without_frames_or_segments_still_renders(tmp_path: Path):
    path = tmp_path / "empty.png"
    save_figure(timeline_figure(np.zeros(0), 0.5, [], waveform=np.zeros(100)), path)
    assert png_size(path) == (1200, 500)


def test_timeline_rejects_two_dimensional_probabilities(tmp_path: Path):
    with pytest.raises(VocalfrontError, match="probabilities must be one-dimensional"):
        save_figure(timeline_figure(np.zeros((2, 3)), 0.5, []), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_long_songs_get_a_minutes_and_seconds_axis():
    from vocalfront.plotting import clock

    figure = timeline_figure(probabilities(70 * 200), 0.5, [])
    axis = figure.axes[-1]
    assert axis.get_xlabel() == "time (m:ss)"
    assert axis.xaxis.get_major_formatter()(150.0, 0) == "2:30"
    assert (clock(59.9), clock(61), clock(3725)) == ("0:59", "1:01", "1:02:05")
    assert timeline_figure(probabilities(), 0.5, []).axes[-1].get_xlabel() == "time (s)"


def test_the_legend_sits_outside_the_curve():
    from vocalfront.plotting import timeline_figure

    figure = timeline_figure(probabilities(), 0.5, [Segment(0.2, 0.6)])
    figure.canvas.draw()
    (axis,) = figure.axes
    legend = axis.get_legend().get_window_extent()
    assert legend.x0 >= axis.get_window_extent().x1


def test_a_reference_adds_a_ground_truth_lane_under_the_detection(tmp_path: Path):
    from vocalfront.plotting import timeline_figure

    figure = timeline_figure(probabilities(), 0.5, [Segment(0.2, 0.6)],
                             reference=[Segment(0.3, 0.9), Segment(1.2, 1.5)], subtitle="made by x")
    lanes = figure.axes[-1]
    assert [label.get_text() for label in lanes.get_yticklabels()] == ["ground truth", "detected"]
    ground_truth = [bar for bar in lanes.collections if bar.get_facecolor()[0][1] > 0.4]
    assert ground_truth, "the ground-truth lane has bars"
    assert figure.axes[0].get_title(loc="left") == "made by x"


def test_the_metrics_figure_keeps_auroc_and_its_intervals_in_zero_to_one():
    from vocalfront.experiment.report import metrics_figure

    rows = [{"frontend": name, "seed": seed, "auroc": auroc, "error": error}
            for name, values in {"mel": [(0.2, 0.4), (0.98, 0.1)], "fb": [(0.9, 0.12), (0.91, 0.11)]}.items()
            for seed, (auroc, error) in enumerate(values)]
    auroc_axis, error_axis = metrics_figure(rows, "mel").axes
    bottom, top = auroc_axis.get_ylim()
    assert 0.0 <= bottom < 0.2 and 0.98 < top <= 1.0
    assert error_axis.get_ylim()[0] >= 0.0
    for line in auroc_axis.collections:  # error bars
        for segment in line.get_segments():
            assert np.all((segment[:, 1] >= 0) & (segment[:, 1] <= 1))


@pytest.mark.parametrize(("peak", "lines"), [(None, ["threshold 0.300"]), (0.2, ["threshold 0.300"]),
                                             (0.8, ["threshold 0.300", "peak threshold 0.800"])])
def test_a_peak_threshold_above_the_threshold_is_drawn_as_a_second_line(peak, lines):
    figure = timeline_figure(probabilities(), 0.3, [Segment(0.2, 0.6)], peak_threshold=peak)
    (axis,) = figure.axes
    labels = [text.get_text() for text in axis.get_legend().get_texts()]
    assert [label for label in labels if "threshold" in label] == lines
