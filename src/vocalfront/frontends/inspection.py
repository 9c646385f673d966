"""Inspection of filter-bank front-ends: per-band parameters in physical units, how far training
moved them, and a figure of initial vs learned filters.

Used by the training loop to log the learnable parameters over training (the front-ends of
``fb-learn-*`` and ``fb-free`` are known to move little from their initialisation, so every run
should say how far they went) and by the experiment to plot them.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import VocalfrontError
from ..plotting import save_figure
from .base import FrontEnd
from .filterbank import FilterBank

AVERAGING_KEYS = {"hann2": "averaging_length_ms", "gaussian": "averaging_sigma_ms",
                  "gaussian-formula": "averaging_sigma_ms"}
"""Key of the averaging window's size in :func:`frontend_parameters`, by ``FilterBank.averaging``."""

_SWEEP_POINTS = 400  # probe frequencies of the response plot (log-spaced)
_SWEEP_FRAMES = 31  # probe signal length in frames; its middle frame is read
_SWEEP_CHUNK = 50  # probe signals per forward pass
_FLOOR_DB = 80.0  # response plot range below the highest peak


def frontend_parameters(frontend: FrontEnd) -> dict[str, list[float]]:
    """Per-band parameters of a :class:`FilterBank`, each a list of ``n_bands`` floats.

    Keys: ``centre_hz`` and ``centre_mel`` (HTK scale) of the triangles; ``bandwidth_hz``, the
    triangle's upper minus lower edge; the averaging window in milliseconds, as
    ``averaging_length_ms`` (``hann2``: full length ``L`` of the ``cos⁴`` window) or
    ``averaging_sigma_ms`` (Gaussian shapes: standard deviation), absent with ``averaging="none"``;
    with a learnable free response, ``free_correction_max``: the largest ``|δ|`` of the band's
    complex correction ``ĥ (1 + δ)`` over its frequency grid (0 at initialisation).
    Raises :class:`VocalfrontError` for front-ends without filter-bank parameters (``mel``).
    """
    if not isinstance(frontend, FilterBank):
        raise VocalfrontError(f"{type(frontend).__name__} has no filter-bank parameters; expected a "
                              "FilterBank front-end (fb, fb-learn-*, fb-free)")
    with torch.no_grad():
        lower, centre, upper = frontend.band_edges_hz()
        params = {"centre_hz": centre, "centre_mel": frontend.centres_mel(),
                  "bandwidth_hz": upper - lower}
        if frontend.averaging in AVERAGING_KEYS:
            ms = frontend.averaging_sizes() * (1000.0 / frontend.sample_rate)
            params[AVERAGING_KEYS[frontend.averaging]] = ms
        if "free" in frontend.learn:
            params["free_correction_max"] = frontend.free_correction.square().sum(0).sqrt().amax(-1)
    return {key: value.cpu().tolist() for key, value in params.items()}


def movement_summary(initial: dict[str, list[float]], current: dict[str, list[float]]) -> dict[str, float]:
    """How far per-band parameters moved between two :func:`frontend_parameters` results.

    Per band, the absolute change of the centre frequency and of the bandwidth in units of the
    local band spacing (the initial centres' spacing in Hz, central differences, one-sided at the
    ends; half the initial bandwidth for a single band), the relative change ``|L - L₀| / L₀`` of
    the averaging size, and ``free_correction_max`` as it is (its initial value is 0). Returns
    ``{"centre_median", "centre_max", "bandwidth_median", ..., "averaging_max",
    "free_correction_median", "free_correction_max"}`` for the quantities both contain.
    """
    if set(initial) != set(current) or any(len(initial[k]) != len(current[k]) for k in initial):
        raise VocalfrontError("cannot compare front-end parameters of different layouts: "
                              f"{_layout(initial)} vs {_layout(current)}")
    before = {key: np.asarray(value, dtype=np.float64) for key, value in initial.items()}
    after = {key: np.asarray(value, dtype=np.float64) for key, value in current.items()}
    spacing = _band_spacing(before["centre_hz"], before["bandwidth_hz"])
    moved = {"centre": np.abs(after["centre_hz"] - before["centre_hz"]) / spacing,
             "bandwidth": np.abs(after["bandwidth_hz"] - before["bandwidth_hz"]) / spacing}
    for key in set(AVERAGING_KEYS.values()) & set(before):
        moved["averaging"] = np.abs(after[key] - before[key]) / before[key]
    if "free_correction_max" in after:
        moved["free_correction"] = np.abs(after["free_correction_max"] - before["free_correction_max"])
    summary = {}
    for name, values in moved.items():
        summary[f"{name}_median"] = float(np.median(values))
        summary[f"{name}_max"] = float(np.max(values))
    return summary


def _layout(params: dict[str, list[float]]) -> str:
    return ", ".join(f"{key}[{len(value)}]" for key, value in sorted(params.items()))


def _band_spacing(centre_hz: np.ndarray, bandwidth_hz: np.ndarray) -> np.ndarray:
    """Local spacing (Hz) of band centres; half the bandwidth when there is a single band."""
    if len(centre_hz) < 2:
        return bandwidth_hz / 2
    return np.abs(np.gradient(centre_hz))


def power_responses(frontend: FrontEnd, frequencies_hz: np.ndarray) -> np.ndarray:
    """Power response ``(bands, len(frequencies_hz))`` of any front-end, measured through it.

    Each frequency is probed with a unit-amplitude cosine of 31 frames (float64, on the module's
    device), and the middle frame's band energy ``E`` is read, far from the signal's ends. The
    result is ``4 E``: for an analytic filter ``ĥ`` that is ``|ĥ(f)|² + |ĥ(-f)|²`` (the level of
    the design, ``Σ_k Λ(k) |Ĝ(f - k/window)|²``; also for ``mel``), and it includes whatever the
    module really computes: filter supports, a free correction, decimation.
    """
    grid = frontend.grid
    device = next(itertools.chain(frontend.parameters(), frontend.buffers()), torch.empty(0)).device
    time = torch.arange(grid.num_samples(_SWEEP_FRAMES), dtype=torch.float64, device=device)
    time /= grid.sample_rate
    freqs = torch.as_tensor(np.asarray(frequencies_hz, dtype=np.float64), device=device)
    middle = _SWEEP_FRAMES // 2
    pieces = []
    with torch.no_grad():
        for chunk in freqs.split(_SWEEP_CHUNK):
            probes = torch.cos(2 * np.pi * chunk[:, None] * time[None, :])
            pieces.append(4 * frontend(probes)[:, :, middle])
    return torch.cat(pieces).T.cpu().numpy()


def plot_filterbank(path_png: str | Path, initial_frontend: FrontEnd, learned_frontend: FrontEnd,
                    title: str = "") -> None:
    """Write a PNG comparing two filter banks, e.g. one before and after training.

    Top: power responses in dB (:func:`power_responses`) against frequency (Hz, log axis), initial
    dashed grey, learned in colour. Bottom (when both average over time): averaging size per band
    (ms, see :func:`frontend_parameters`) at each band's centre frequency. Written atomically.
    """
    if initial_frontend.sample_rate != learned_frontend.sample_rate:
        raise VocalfrontError(f"cannot compare front-ends at {initial_frontend.sample_rate} Hz and "
                              f"{learned_frontend.sample_rate} Hz")
    before, after = frontend_parameters(initial_frontend), frontend_parameters(learned_frontend)
    averaging = sorted(set(AVERAGING_KEYS.values()) & set(before) & set(after))
    figure = Figure(figsize=(12, 7 if averaging else 4.5), layout="constrained")
    axes = figure.subplots(2 if averaging else 1, 1, sharex=True, squeeze=False)[:, 0]
    nyquist = initial_frontend.sample_rate / 2
    freqs = np.geomspace(20.0, 0.99 * nyquist, _SWEEP_POINTS)
    _plot_responses(axes[0], freqs, power_responses(initial_frontend, freqs),
                    power_responses(learned_frontend, freqs))
    if averaging:
        _plot_averaging(axes[1], averaging[0], before, after)
    axes[-1].set(xscale="log", xlim=(freqs[0], nyquist), xlabel="frequency (Hz)")
    axes[0].set_title(title)
    save_figure(figure, path_png)


def _plot_responses(ax: Axes, freqs: np.ndarray, initial: np.ndarray, learned: np.ndarray) -> None:
    top = 10 * np.log10(max(initial.max(), learned.max(), 1e-30))
    for label, power, style in (("initial", initial, {"color": "0.5", "linestyle": "--", "linewidth": 0.6}),
                                ("learned", learned, {"linewidth": 0.8})):
        lines = ax.plot(freqs, 10 * np.log10(np.maximum(power, 1e-30)).T, **style)
        lines[0].set_label(label)  # the other bands keep matplotlib's hidden "_child" labels
    ax.set(ylim=(top - _FLOOR_DB, top + 3), ylabel="power response (dB)")
    ax.legend(loc="lower left", fontsize="small")


def _plot_averaging(ax: Axes, key: str, before: dict[str, list[float]],
                    after: dict[str, list[float]]) -> None:
    ax.plot(before["centre_hz"], before[key], "o", color="0.5", markersize=3, label="initial")
    ax.plot(after["centre_hz"], after[key], "o", color="tab:blue", markersize=3, label="learned")
    what = "length" if key == "averaging_length_ms" else "standard deviation"
    ax.set(ylabel=f"averaging {what} (ms)")
    ax.legend(loc="upper right", fontsize="small")
