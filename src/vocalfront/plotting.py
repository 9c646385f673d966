"""Timeline figure of a detection: singing probability, threshold and segments over time.

Figures are drawn with matplotlib's object API on the Agg renderer (no display, no global pyplot
state) and written atomically as PNG. Legends sit outside the data (right of the axes); time
axes read ``m:ss`` once a signal is longer than :data:`CLOCK_AFTER` seconds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .errors import VocalfrontError
from .fileio import atomic_write
from .grid import DEFAULT_GRID, FrameGrid
from .postprocessing import peak_applies
from .segments import Segment

_SEGMENT_STYLE = {"facecolor": "tab:orange", "alpha": 0.3, "linewidth": 0, "zorder": 0}
_REFERENCE_STYLE = {"facecolor": "tab:green", "alpha": 0.8, "linewidth": 0}
CLOCK_AFTER = 60.0
"""Seconds; longer time axes are labelled ``m:ss`` instead of seconds."""
_LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.005, 1.0), "fontsize": "small", "borderaxespad": 0.0}
"""Legend placement: outside the axes, to their right, so it never covers the data."""


def timeline_figure(
    probabilities: np.ndarray,
    threshold: float,
    segments: Sequence[Segment],
    grid: FrameGrid = DEFAULT_GRID,
    title: str = "",
    waveform: np.ndarray | None = None,
    reference: Sequence[Segment] | None = None,
    subtitle: str = "",
    peak_threshold: float | None = None,
) -> Figure:
    """Per-frame singing probability with the threshold line and shaded segments.

    ``probabilities``: shape ``(frames,)`` on ``grid``, plotted at the frame centres (seconds).
    ``segments``: singing segments in seconds. ``waveform``: optional mono signal, shape
    ``(samples,)`` at ``grid.sample_rate`` Hz, drawn above as its peak envelope per hop.
    ``reference``: ground-truth singing segments (seconds), drawn below as a lane beside the
    detected one. ``subtitle``: a small line under the title (e.g. the provenance).
    ``peak_threshold``: drawn as a second line when it lies above ``threshold`` (a run of frames
    above the threshold is singing only if it rises above this, :mod:`vocalfront.postprocessing`).
    Write it with :func:`save_figure` (PNG file) or :func:`figure_png` (bytes).
    """
    probabilities = _one_dimensional(probabilities, "probabilities")
    lanes = reference is not None
    heights = [1.0] * (waveform is not None) + [1.0] + [0.4] * lanes
    figure = Figure(figsize=(12, 2 + 1.5 * sum(heights)), layout="constrained")
    axes = figure.subplots(len(heights), 1, sharex=True, squeeze=False,
                           gridspec_kw={"height_ratios": heights})[:, 0]
    if waveform is not None:
        _plot_envelope(axes[0], _one_dimensional(waveform, "waveform"), grid)
    probability_ax = axes[-2] if lanes else axes[-1]
    _plot_probabilities(probability_ax, probabilities, threshold, grid, peak_threshold)
    for ax in axes[: len(axes) - lanes]:
        ax.broken_barh(
            [(s.start, s.duration) for s in segments],
            (0, 1),
            transform=ax.get_xaxis_transform(),
            **_SEGMENT_STYLE,
        )
    if lanes:
        _plot_lanes(axes[-1], segments, reference)
    end = max(grid.frame_times(len(probabilities))[-1] if len(probabilities) else 0.0,
              *(s.end for s in [*segments, *(reference or [])]), 1e-3)
    for ax in axes:
        ax.set_xlim(0, end)
        ax.label_outer()
    _time_axis(axes[-1], end)
    figure.suptitle(title)
    if subtitle:
        axes[0].set_title(subtitle, fontsize="small", loc="left", color="0.3")
    return figure


def _time_axis(ax: Axes, end: float) -> None:
    """Seconds up to :data:`CLOCK_AFTER`, ``m:ss`` beyond (ticks on whole seconds)."""
    if end <= CLOCK_AFTER:
        ax.set_xlabel("time (s)")
        return
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 1.5, 3, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: clock(value)))
    ax.set_xlabel("time (m:ss)")


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on) of a non-negative time in seconds, rounded down."""
    whole = int(max(seconds, 0.0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _plot_lanes(ax: Axes, segments: Sequence[Segment], reference: Sequence[Segment]) -> None:
    """Two lanes: the detected segments (top) and the ground truth (bottom)."""
    ax.broken_barh([(s.start, s.duration) for s in segments], (1.1, 0.8),
                   **{**_SEGMENT_STYLE, "alpha": 0.8, "zorder": 1})
    ax.broken_barh([(s.start, s.duration) for s in reference], (0.1, 0.8), **_REFERENCE_STYLE)
    ax.set(ylim=(0, 2), yticks=[0.5, 1.5], yticklabels=["ground truth", "detected"])
    ax.tick_params(axis="y", length=0)


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """``figure`` rendered as PNG bytes (in memory)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figure(figure: Figure, path_png: str | Path, dpi: int = 100) -> None:
    """Render ``figure`` to PNG in memory, then write it atomically to ``path_png``."""
    write_png(figure_png(figure, dpi), path_png)


def write_png(png: bytes, path_png: str | Path) -> None:
    """Write rendered PNG bytes atomically to ``path_png``."""
    with atomic_write(path_png, "wb") as handle:
        handle.write(png)


def plot_theory(path_png: str | Path, hop: int, band_errors: dict[str, np.ndarray],
                bounds: dict[str, np.ndarray], bank) -> None:
    """Per-band relative feature error at ``hop`` (samples), mean over signals
    (:func:`vocalfront.theory.mean_band_errors`), and operator bound of each design against the
    band centre frequency (Hz)."""
    centres = bank.band_edges_hz()[1].detach().numpy()
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    errors_ax, bounds_ax = figure.subplots(1, 2, sharex=True)
    for design, errors in band_errors.items():
        errors_ax.semilogy(centres, errors, label=design)
        if design in bounds:
            bounds_ax.semilogy(centres, bounds[design], label=design)
    errors_ax.set(xscale="log", xlabel="band centre (Hz)",
                  ylabel="‖FB − MS‖ / ‖MS‖ per band", title=f"feature error, hop {hop}")
    bounds_ax.set(xscale="log", xlabel="band centre (Hz)", ylabel="‖A_MS − A_FB‖ / ‖A_MS‖",
                  title="operator-norm bound (every signal)")
    (bounds_ax if bounds else errors_ax).legend(**_LEGEND)  # without bounds their panel is empty
    for ax in (errors_ax, bounds_ax):
        ax.grid(True, which="both", alpha=0.3)
    save_figure(figure, path_png)


def _one_dimensional(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise VocalfrontError(f"{name} must be one-dimensional, got shape {values.shape}")
    return values


def _plot_probabilities(
    ax: Axes, probabilities: np.ndarray, threshold: float, grid: FrameGrid,
    peak_threshold: float | None = None,
) -> None:
    ax.plot(
        grid.frame_times(len(probabilities)),
        probabilities,
        color="tab:blue",
        linewidth=0.8,
        label="singing probability",
    )
    ax.axhline(
        threshold,
        color="tab:red",
        linestyle="--",
        linewidth=0.8,
        label=f"threshold {threshold:.3f}",
    )
    if peak_applies(threshold, peak_threshold):
        ax.axhline(peak_threshold, color="tab:red", linestyle=":", linewidth=0.8,
                   label=f"peak threshold {peak_threshold:.3f}")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, Patch(**_SEGMENT_STYLE, label="detected singing")], **_LEGEND)
    ax.set(ylim=(0, 1), ylabel="probability")


def _plot_envelope(ax: Axes, waveform: np.ndarray, grid: FrameGrid) -> None:
    """Peak absolute amplitude of each block of ``grid.hop`` samples, mirrored around zero."""
    blocks = len(waveform) // grid.hop
    peaks = np.abs(waveform[: blocks * grid.hop]).reshape(blocks, grid.hop).max(axis=1, initial=0.0)
    times = (np.arange(blocks) + 0.5) * grid.hop / grid.sample_rate
    ax.fill_between(times, -peaks, peaks, color="0.3", alpha=0.7, linewidth=0)
    ax.set(ylabel="amplitude")
