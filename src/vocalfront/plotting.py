"""Timeline figure of a detection: singing probability, threshold and segments over time.

Figures are drawn with matplotlib's object API on the Agg renderer (no display, no global pyplot
state) and written atomically as PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .errors import VocalfrontError
from .fileio import atomic_write
from .grid import DEFAULT_GRID, FrameGrid
from .segments import Segment

_SEGMENT_STYLE = {"facecolor": "tab:orange", "alpha": 0.3, "linewidth": 0, "zorder": 0}


def plot_timeline(
    path_png: str | Path,
    probabilities: np.ndarray,
    threshold: float,
    segments: Sequence[Segment],
    grid: FrameGrid = DEFAULT_GRID,
    title: str = "",
    waveform: np.ndarray | None = None,
) -> None:
    """Write a PNG: per-frame singing probability with the threshold line and shaded segments.

    ``probabilities``: shape ``(frames,)`` on ``grid``, plotted at the frame centres (seconds).
    ``segments``: singing segments in seconds. ``waveform``: optional mono signal, shape
    ``(samples,)`` at ``grid.sample_rate`` Hz, drawn above as its peak envelope per hop.
    """
    probabilities = _one_dimensional(probabilities, "probabilities")
    rows = 1 if waveform is None else 2
    figure = Figure(figsize=(12, 2 + 1.5 * rows), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    if waveform is not None:
        _plot_envelope(axes[0], _one_dimensional(waveform, "waveform"), grid)
    _plot_probabilities(axes[-1], probabilities, threshold, grid)
    for ax in axes:
        ax.broken_barh(
            [(s.start, s.duration) for s in segments],
            (0, 1),
            transform=ax.get_xaxis_transform(),
            **_SEGMENT_STYLE,
        )
        ax.margins(x=0)
        ax.set_xlim(left=0)
    axes[0].set_title(title)
    save_figure(figure, path_png)


def save_figure(figure: Figure, path_png: str | Path, dpi: int = 100) -> None:
    """Render ``figure`` to PNG in memory, then write it atomically to ``path_png``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    with atomic_write(path_png, "wb") as handle:
        handle.write(buffer.getvalue())


def plot_theory(path_png: str | Path, results: Sequence, bounds: dict[str, np.ndarray],
                bank) -> None:
    """Per-band relative feature error (hop 315, mean over signals) and operator bound of each
    design against the band centre frequency (Hz)."""
    centres = bank.band_edges_hz()[1].detach().numpy()
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    errors_ax, bounds_ax = figure.subplots(1, 2, sharex=True)
    for design in dict.fromkeys(r.design for r in results):
        errors = np.mean([r.band_errors for r in results if r.design == design and r.hop == 315],
                         axis=0)
        errors_ax.semilogy(centres, errors, label=design)
        if design in bounds:
            bounds_ax.semilogy(centres, bounds[design], label=design)
    errors_ax.set(xscale="log", xlabel="band centre (Hz)",
                  ylabel="‖FB − MS‖ / ‖MS‖ per band", title="feature error, hop 315")
    bounds_ax.set(xscale="log", xlabel="band centre (Hz)", ylabel="‖A_MS − A_FB‖ / ‖A_MS‖",
                  title="operator-norm bound (every signal)")
    for ax in (errors_ax, bounds_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    save_figure(figure, path_png)


def _one_dimensional(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise VocalfrontError(f"{name} must be one-dimensional, got shape {values.shape}")
    return values


def _plot_probabilities(
    ax: Axes, probabilities: np.ndarray, threshold: float, grid: FrameGrid
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
        label=f"threshold {threshold:.2f}",
    )
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=[*handles, Patch(**_SEGMENT_STYLE, label="singing")],
        loc="upper right",
        fontsize="small",
    )
    ax.set(ylim=(0, 1), xlabel="time (s)", ylabel="probability")


def _plot_envelope(ax: Axes, waveform: np.ndarray, grid: FrameGrid) -> None:
    """Peak absolute amplitude of each block of ``grid.hop`` samples, mirrored around zero."""
    blocks = len(waveform) // grid.hop
    peaks = np.abs(waveform[: blocks * grid.hop]).reshape(blocks, grid.hop).max(axis=1, initial=0.0)
    times = (np.arange(blocks) + 0.5) * grid.hop / grid.sample_rate
    ax.fill_between(times, -peaks, peaks, color="0.3", alpha=0.7, linewidth=0)
    ax.set(ylabel="amplitude")
