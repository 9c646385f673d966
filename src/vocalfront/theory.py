"""The theory check: how closely each filter-bank design reproduces the mel-spectrogram.

Two measures (``theory.md``):

- on signals: the relative error ``‖FB - MS‖_F / ‖MS‖_F`` over bands × frames, per band, and the
  mean absolute difference of per-band z-scored log features (what the CNN sees);
- on operators, for every signal at once: per band ``‖A_MS - A_FB‖ / ‖A_MS‖`` in operator norm,
  where ``MS(b, ν) = ⟨A_MS x, x⟩`` and ``FB(b, ν) = ⟨A_FB x, x⟩`` for real ``x``, so
  ``|MS - FB| ≤ ‖A_MS - A_FB‖ ‖x‖²``. Computed by Lanczos iteration on the operators restricted
  to real signals on ``±domain/2`` samples around a frame centre.

``MS`` is the power mel-spectrogram in the ``schlueter`` layout (what the designs target).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from tqdm import tqdm

from .frontends import FilterBank, MelSpectrogram, build_frontend
from .frontends.design import averaging_reach, support_filter
from .grid import SAMPLE_RATE

DESIGNS: dict[str, str] = {
    "fb": "exact filter + Hann² averaging, length fitted to the operators",
    "fb-gauss": "exact filter + Gaussian averaging from the formula q = a(a+2λ)/λ",
    "fb-noavg": "exact filter, no averaging",
}
"""Registered front-end name → description of each design the check compares."""


@dataclass
class SignalResult:
    """Feature errors of one design on one signal at one hop."""

    design: str
    signal: str
    hop: int
    relative_error: float
    log_error: float
    band_errors: np.ndarray = field(repr=False)


def reference_signals(seconds: float = 20.0, sample_rate: int = SAMPLE_RATE,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Built-in signals (float64, ``seconds`` long): white noise, a log chirp 30 Hz–10 kHz, and
    harmonic tones (three voices with vibrato, 12 harmonics each, changing every second)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0, f1 = 30.0, 10000.0
    rate = np.log(f1 / f0) / seconds
    chirp = np.sin(2 * np.pi * f0 * (np.exp(rate * t) - 1) / rate)
    tones = np.zeros(n)
    for start in range(int(seconds)):
        span = slice(start * sample_rate, min((start + 1) * sample_rate, n))
        for _ in range(3):
            pitch = 80 * 2 ** rng.uniform(0, 4)
            vibrato = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t[span])
            phase = 2 * np.pi * pitch * np.cumsum(vibrato) / sample_rate
            for harmonic in range(1, 13):
                if pitch * harmonic < sample_rate / 2:
                    tones[span] += np.sin(harmonic * phase) / harmonic
    onsets = np.hanning(sample_rate + 2)[1:-1] ** 0.25  # soft note onsets and ends, every second
    tones *= onsets[np.arange(n) % sample_rate]
    return {
        "white noise": rng.standard_normal(n) * 0.1,
        "chirp": 0.5 * chirp,
        "harmonic tones": 0.1 * tones,
    }


def compare_features(mel: torch.Tensor, fb: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """``(relative error, log error, per-band relative errors)`` of ``fb`` against ``mel``.

    Inputs ``(bands, frames)``. The log error is the mean absolute difference of per-band
    z-scored ``log(max(x, 1e-7 · max))`` features.
    """
    mel, fb = mel.double(), fb.double()
    relative = float((fb - mel).norm() / mel.norm())
    bands = ((fb - mel).norm(dim=1) / mel.norm(dim=1).clamp_min(1e-30)).numpy()
    floor = 1e-7 * float(mel.max())

    def zscore(x: torch.Tensor) -> torch.Tensor:
        logx = torch.log(x.clamp_min(floor))
        return (logx - logx.mean(1, keepdim=True)) / logx.std(1, keepdim=True).clamp_min(1e-9)

    log_error = float((zscore(fb) - zscore(mel)).abs().mean())
    return relative, log_error, bands


def measure_signals(signals: dict[str, np.ndarray], designs: Sequence[str] = tuple(DESIGNS),
                    hops: Sequence[int] = (315, 630, 1260), progress: bool = False) -> list[SignalResult]:
    """Feature errors of every design on every signal at every hop (``progress``: a bar over
    the hop x signal pairs on stderr)."""
    results = []
    with tqdm(total=len(hops) * len(signals), desc="features", unit="signal",
              disable=not progress) as bar:
        for hop in hops:
            mel = MelSpectrogram(hop=hop)
            banks = {name: build_frontend(name, hop=hop) for name in designs}
            for signal_name, audio in signals.items():
                x = torch.from_numpy(np.asarray(audio, dtype=np.float64))[None]
                with torch.inference_mode():
                    reference = mel(x)[0]
                    for name, bank in banks.items():
                        relative, log_error, bands = compare_features(reference, bank(x)[0])
                        results.append(SignalResult(name, signal_name, hop, relative, log_error, bands))
                bar.update()
    return results


def operator_bounds(bank: FilterBank, domain: int = 4096, grid: int = 16384,
                    progress: bool = False, name: str = "bounds") -> np.ndarray:
    """Per band ``‖A_MS - A_FB‖ / ‖A_MS‖`` (operator norms on real signals of ``domain`` samples
    centred on a frame). ``grid`` is the circular FFT length used to apply the operators.
    ``progress``: a bar over the bands on stderr, labelled ``name``."""
    bins, weights = bank.triangle_table()
    window = bank.grid.window
    with torch.no_grad():
        sizes = bank.averaging_sizes().numpy()
    bounds = np.empty(bank.n_bands)
    for b in tqdm(range(bank.n_bands), desc=name, unit="band", disable=not progress):
        used = weights[b] > 0
        ms_op, fb_op = _band_operators(bins[b, used], weights[b, used], sizes[b], bank, window,
                                       domain, grid)
        diff = LinearOperator((domain, domain), matvec=lambda f, a=ms_op, c=fb_op: a(f) - c(f),
                              dtype=np.float64)
        ms = LinearOperator((domain, domain), matvec=ms_op, dtype=np.float64)
        bounds[b] = _norm(diff) / _norm(ms)
    return bounds


def _norm(operator: LinearOperator) -> float:
    """Largest absolute eigenvalue of a symmetric operator."""
    value = eigsh(operator, k=1, which="LM", return_eigenvectors=False, tol=1e-6, maxiter=2000)
    return float(abs(value[0]))


def _band_operators(bins: np.ndarray, weights: np.ndarray, size: float, bank: FilterBank,
                    window: int, domain: int, grid: int):
    """Matrix-free ``A_MS`` and ``A_FB`` (real parts) of one band on ``domain`` samples."""
    tau = np.arange(domain) - domain // 2
    support = (tau >= -(window // 2)) & (tau < window // 2)
    tau_w = np.arange(window) - window // 2
    g = np.hanning(window + 1)[:-1]
    atoms = np.zeros((len(bins), domain), dtype=complex)
    atoms[:, support] = g * np.exp(2j * np.pi * bins[:, None] * tau_w[None, :] / window)
    filter_hat = support_filter(bins, weights, window, grid, bank.support_bins)
    averaging = _averaging_weights(bank, size, grid)

    def ms_op(f: np.ndarray) -> np.ndarray:
        coeffs = atoms.conj() @ f
        return np.real((weights * coeffs) @ atoms)

    def fb_op(f: np.ndarray) -> np.ndarray:
        placed = np.zeros(grid)
        placed[tau % grid] = f
        spectrum = np.fft.fft(placed)
        y = np.fft.ifft(spectrum * filter_hat)  # (f * h)(t)
        z = np.fft.ifft(np.fft.fft(averaging * y) * np.conj(filter_hat))
        return np.real(z[tau % grid])

    return ms_op, fb_op


def _averaging_weights(bank: FilterBank, size: float, grid: int) -> np.ndarray:
    """The averaging window ``ϖ(t)`` on the circular time axis (frame centre at 0)."""
    weights = np.zeros(grid)
    reach = math.ceil(averaging_reach(size, bank.averaging))
    offsets = np.arange(-reach, reach + 1)
    kernel = bank.averaging_window(torch.from_numpy(offsets.astype(np.float64)),
                                      torch.tensor([size], dtype=torch.float64))[0].numpy()
    weights[offsets % grid] = kernel
    return weights


def summary_table(results: Iterable[SignalResult], bounds: dict[str, np.ndarray]) -> str:
    """Markdown table: per design and hop, relative/log error per signal and operator bounds."""
    results = list(results)
    signals = list(dict.fromkeys(r.signal for r in results))
    header = ["design", "hop"] + [f"{s} rel. err" for s in signals] + ["log err (mean)",
                                                                        "operator bound median / worst"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for design in dict.fromkeys(r.design for r in results):
        for hop in dict.fromkeys(r.hop for r in results):
            rows = [r for r in results if r.design == design and r.hop == hop]
            cells = [design, str(hop)]
            cells += [f"{next(r.relative_error for r in rows if r.signal == s):.2%}" for s in signals]
            cells.append(f"{np.mean([r.log_error for r in rows]):.3f}")
            b = bounds.get(design)
            cells.append("—" if b is None else f"{np.median(b):.1%} / {b.max():.1%}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mean_band_errors(results: Iterable[SignalResult]) -> tuple[int, dict[str, np.ndarray]]:
    """The first hop measured (samples; 315 by default) and, per design, the per-band relative
    errors at that hop, mean over signals."""
    results = list(results)
    hop = results[0].hop
    errors = {}
    for design in dict.fromkeys(r.design for r in results):
        errors[design] = np.mean([r.band_errors for r in results if r.design == design and r.hop == hop],
                                 axis=0)
    return hop, errors


def worst_bands(results: Iterable[SignalResult], bank: FilterBank, count: int = 5) -> str:
    """One line per design (first hop measured): the bands with the largest mean relative error."""
    with torch.no_grad():
        centres = bank.band_edges_hz()[1].numpy()
    lines = []
    for design, errors in mean_band_errors(results)[1].items():
        worst = np.argsort(errors)[::-1][:count]
        listed = ", ".join(f"{b} ({centres[b]:.0f} Hz) {errors[b]:.1%}" for b in worst)
        lines.append(f"{design}: worst bands: {listed}")
    return "\n".join(lines)
