"""Design of the filter bank that reproduces a mel-spectrogram (``theory.md``).

Conventions: frequencies are in cycles per sample (``f = hz / sample_rate``), so ``k / window`` is
STFT bin ``k``. The STFT window is the periodic Hann window ``g`` of ``window`` samples and
``Ĝ(f) = Σ_t g(t) e^{-2πift}`` its (unnormalised) transform. Band ``ν`` has mel triangle weights
``Λ_ν(k)`` on the STFT bins. Its filter has power response

    |ĥ_ν(f)|² = Σ_k Λ_ν(k) |Ĝ(f - k/window)|²          (the level condition, exact in the mean),

and its averaging window ``ϖ_ν`` sums to 1, so that ``FB(b, ν) = Σ_t ϖ_ν(t - c_b) |(x * h_ν)(t)|²``
matches ``MS(b, ν) = Σ_k Λ_ν(k) |STFT(b, k)|²``. The averaging length of each band is fitted to
minimise the Hilbert–Schmidt norm of ``A_MS - A_FB`` (the two features as quadratic forms),
from the operators alone, no data.

Example::

    >>> import torch
    >>> from vocalfront.frontends.design import hann2_kernel, hann_power_response
    >>> float(hann_power_response(torch.zeros(1, dtype=torch.float64), 1024)[0])  # |Ĝ(0)|² = (M/2)²
    262144.0
    >>> hann2_kernel(torch.arange(-1.0, 2.0), torch.tensor([4.0]))  # cos⁴(πt/4), summing to 1
    tensor([[0.1667, 0.6667, 0.1667]])
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..errors import VocalfrontError
from .base import MAX_WINDOW


def hann_power_response(freq: torch.Tensor, window: int) -> torch.Tensor:
    """``|Ĝ(f)|²`` of the periodic Hann window of ``window`` samples at ``freq`` (cycles/sample).

    Closed form: ``Ĝ(f) = e^{-iπf(M-1)} [S(f)/2 + e^{iπ/M} S(f - 1/M)/4 + e^{-iπ/M} S(f + 1/M)/4]``
    with the Dirichlet kernel ``S(f) = sin(πfM) / sin(πf)``. Same dtype as ``freq``.
    """
    m = window

    def dirichlet(f: torch.Tensor) -> torch.Tensor:
        den = torch.sin(math.pi * f)
        small = den.abs() < 1e-9
        ratio = torch.sin(math.pi * f * m) / torch.where(small, torch.ones_like(den), den)
        # at integer f the ratio tends to M cos(π f M) / cos(π f) (l'Hôpital)
        limit = m * torch.cos(math.pi * f * m) / torch.cos(math.pi * f)
        return torch.where(small, limit, ratio)

    phase = math.pi / m
    centre = 0.5 * dirichlet(freq)
    lower = 0.25 * dirichlet(freq - 1.0 / m)
    upper = 0.25 * dirichlet(freq + 1.0 / m)
    real = centre + (lower + upper) * math.cos(phase)
    imag = (lower - upper) * math.sin(phase)
    return real.square() + imag.square()


def triangle_weights(bins: torch.Tensor, lower: torch.Tensor, centre: torch.Tensor,
                     upper: torch.Tensor, bin_hz: float, norm: str = "unit-sum") -> torch.Tensor:
    """Triangle weights of each band at STFT ``bins``; differentiable in the edges (Hz).

    ``bins``: ``(bands, K)`` integer-valued bin indices; ``lower``, ``centre``, ``upper``:
    ``(bands,)`` edge frequencies in Hz; ``bin_hz``: Hz per bin (``sample_rate / window``).
    ``norm``: ``"unit-sum"`` (weights sum to 1), ``"slaney"`` (``2 / (upper - lower)``) or
    ``"none"`` (peak 1). Returns ``(bands, K)``.
    """
    hz = bins * bin_hz
    rising = (hz - lower[:, None]) / (centre - lower)[:, None]
    falling = (upper[:, None] - hz) / (upper - centre)[:, None]
    weights = torch.minimum(rising, falling).clamp_min(0.0)
    if norm == "unit-sum":
        return weights / (weights.sum(dim=1, keepdim=True) + 1e-12)
    if norm == "slaney":
        return weights * (2.0 / (upper - lower))[:, None]
    if norm == "none":
        return weights
    raise ValueError(f"unknown triangle norm {norm!r}; use 'unit-sum', 'slaney' or 'none'")


def band_power_response(freq: torch.Tensor, bins: torch.Tensor, weights: torch.Tensor,
                        window: int) -> torch.Tensor:
    """``|ĥ_ν(f)|² = Σ_k Λ_ν(k) |Ĝ(f - k/window)|²``.

    ``freq``: ``(bands, J)`` cycles/sample; ``bins``, ``weights``: ``(bands, K)``.
    Returns ``(bands, J)``; differentiable in ``weights`` only.
    """
    return torch.einsum("bjk,bk->bj", window_kernel(freq, bins, window).to(weights.dtype), weights)


def window_kernel(freq: torch.Tensor, bins: torch.Tensor, window: int) -> torch.Tensor:
    """``|Ĝ(f_j - k/M)|²`` for ``freq`` ``(bands, J)`` and ``bins`` ``(bands, K)``: ``(bands, J, K)``."""
    return hann_power_response(freq[:, :, None] - bins[:, None, :] / window, window)


def hann2_kernel(offsets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Hann²-shaped averaging windows ``cos⁴(π t / L)`` for ``|t| < L / 2``, each summing to 1.

    ``offsets``: ``(taps,)`` positions ``t`` in samples; ``lengths``: ``(bands,)`` lengths ``L``
    in samples. Returns ``(bands, taps)``, differentiable in ``lengths``.
    """
    x = (offsets[None, :] / lengths[:, None]).clamp(-0.5, 0.5)
    shape = torch.cos(math.pi * x) ** 4
    return shape / (shape.sum(dim=1, keepdim=True) + 1e-30)


def gaussian_kernel(offsets: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """Gaussian averaging windows with standard deviations ``sigmas`` (samples), each summing to 1."""
    shape = torch.exp(-0.5 * (offsets[None, :] / sigmas[:, None]).square())
    return shape / (shape.sum(dim=1, keepdim=True) + 1e-30)


def averaging_reach(size: float, shape: str) -> float:
    """How far (samples) from the frame centre an averaging window of ``size`` has weight:
    half the length for ``"hann2"``, four standard deviations for the Gaussian shapes, 0 for
    ``"none"`` (a delta)."""
    if shape == "none":
        return 0.0
    return size / 2 if shape == "hann2" else 4 * size


def averaging_bandwidth(sizes: torch.Tensor, shape: str) -> torch.Tensor:
    """How far (cycles/sample) the spectrum of averaging windows of ``sizes`` samples reaches:
    ``3 / L`` for ``"hann2"`` (the first zero of the ``cos⁴`` window's spectrum), ``3 / (2π σ)``
    for the Gaussian shapes (where ``exp(-2π² σ² f²)`` is down to ``exp(-4.5)``), 0 for ``"none"``
    (a delta needs no bandwidth). ``sizes``: ``(bands,)``; returns ``(bands,)``."""
    if shape == "none":
        return torch.zeros_like(sizes)
    if shape == "hann2":
        return 3.0 / sizes
    return 3.0 / (2 * math.pi * sizes)


def support_edges(first_bin: float, last_bin: float, support_bins: float,
                  window: int) -> tuple[float, float]:
    """A band's filter support (cycles/sample): its outermost triangle bins widened by
    ``support_bins`` STFT bins each side."""
    return (first_bin - support_bins) / window, (last_bin + support_bins) / window


def bins_inside(lower_hz: np.ndarray, upper_hz: np.ndarray,
                bin_hz: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """First and last FFT bin strictly inside each band ``(lower_hz, upper_hz)`` (Hz) for bins
    ``bin_hz`` Hz apart (broadcast): the bins its triangle weights. The first is at least 0, and
    ``last < first`` where no bin is inside (the band's energy is always zero)."""
    first = np.maximum(np.floor(lower_hz / bin_hz) + 1, 0.0)
    return first, np.ceil(upper_hz / bin_hz) - 1


def check_bands_hold_bins(lower_hz: np.ndarray, upper_hz: np.ndarray, sample_rate: int,
                          window: int) -> None:
    """Refuse bands (edges in Hz) of which some hold no bin of a ``window``-sample FFT at
    ``sample_rate`` Hz: a one-line :class:`~vocalfront.errors.VocalfrontError` naming the
    shortest window that serves every band (:func:`shortest_window`), if there is one."""
    bin_hz = sample_rate / window
    first, last = bins_inside(lower_hz, upper_hz, bin_hz)
    empty = np.flatnonzero(last < first)
    if len(empty):
        shortest = shortest_window(lower_hz, upper_hz, sample_rate, window)
        longer = "" if shortest is None else f"window >= {shortest}, "
        raise VocalfrontError(
            f"front-end window {window} is too short for {len(lower_hz)} bands from "
            f"{float(np.min(lower_hz)):g} Hz: {len(empty)} bands (the first is band {empty[0]}) "
            f"fall between its FFT bins, {bin_hz:.4g} Hz apart, and would always be zero; "
            f"use {longer}fewer n_bands or a higher fmin")


def shortest_window(lower_hz: np.ndarray, upper_hz: np.ndarray, sample_rate: int,
                    window: int) -> int | None:
    """The shortest FFT length (samples), ``window`` or longer, from which on every band
    ``(lower_hz, upper_hz)`` (Hz) holds a bin, up to :data:`~.base.MAX_WINDOW`; ``None`` if
    ``MAX_WINDOW`` leaves a band empty. A band wider than the bin spacing always holds one, so
    only the bands narrower than the spacing at ``window`` can miss at longer lengths, each at
    most up to ``sample_rate / width`` samples."""
    lower_hz, upper_hz = np.asarray(lower_hz, np.float64), np.asarray(upper_hz, np.float64)
    widths = upper_hz - lower_hz
    if widths.min() <= 0:
        return None
    narrow = widths <= sample_rate / window
    missing = window - 1  # the longest length found to leave a band empty
    for low, high in zip(lower_hz[narrow], upper_hz[narrow], strict=True):
        lengths = np.arange(window, min(int(sample_rate // (high - low)), MAX_WINDOW) + 1)
        first, last = bins_inside(low, high, sample_rate / lengths)
        missing = max(missing, int(lengths[last < first].max(initial=missing)))
    return None if missing >= MAX_WINDOW else missing + 1


BIN_MARGIN = 1.01
"""How much wider than the FFT bin spacing learnable bands are kept (an open frequency interval
wider than the spacing always holds a bin, so such a band never falls silent)."""


def narrowest_half_width(centre_mel: torch.Tensor, bin_hz: float) -> torch.Tensor:
    """Smallest half-width (HTK mel) of a triangle centred at ``centre_mel`` (HTK mel, any shape)
    whose band is :data:`BIN_MARGIN` times ``bin_hz`` wide in Hz. The band ``(c - h, c + h)`` in
    mel is ``1400 e^{c/1127} sinh(h/1127)`` Hz wide, narrowest for the lowest centre."""
    return 1127.0 * torch.asinh(BIN_MARGIN * bin_hz / (1400.0 * torch.exp(centre_mel / 1127.0)))


def lowest_centre(half_width_mel: np.ndarray, bin_hz: float) -> float:
    """Lowest centre (HTK mel) above which triangles of every half-width in ``half_width_mel``
    (mel) are :data:`BIN_MARGIN` times ``bin_hz`` wide in Hz: the inverse of
    :func:`narrowest_half_width` for the narrowest. 0 where that is no more than the narrowest
    half-width: lower centres put the band across 0 Hz, and it holds the DC bin."""
    narrowest = float(np.min(half_width_mel))
    centre = 1127.0 * math.log(BIN_MARGIN * bin_hz / (1400.0 * math.sinh(narrowest / 1127.0)))
    return centre if centre > narrowest else 0.0


FIRST_NULL = 2
"""Distance (STFT bins) from a bin to the first null of the Hann window's transform ``Ĝ``."""


def support_envelope(freq: torch.Tensor, first_bin: torch.Tensor | float,
                     last_bin: torch.Tensor | float, support_bins: float,
                     window: int) -> torch.Tensor:
    """The factor that turns ``sqrt(P)``, ``P = Σ_k Λ(k)|Ĝ(f - k/M)|²``, into a band's filter.

    1 out to the window's first nulls, ``FIRST_NULL`` bins beyond the outermost triangle bins
    ``first_bin``/``last_bin``; 0 outside the support (``support_edges``). In between lie the
    window's sidelobes, where every ``Ĝ(f - k/M)`` of the band vanishes at the same integer bins:
    there the factor takes the sign ``Ĝ`` takes (-1 after each such null), so the filter passes
    smoothly through the nulls, and it rolls off to 0 at the support edge along the C∞ step
    ``e^{-1/x} / (e^{-1/x} + e^{-1/(1-x)})``. Why: ``sqrt(P)`` cut at a null (or folded up at
    one) has a kink, and a kink gives filter tails that decay only like ``1/t²``, outlasting any
    finite block context; smooth, the tails die off faster than any power of ``t``.
    ``support_bins <= FIRST_NULL`` keeps the plain cut (the design before sidelobes were used).

    ``freq``: cycles/sample, broadcast against ``first_bin``/``last_bin``. float64.
    """
    bins = freq * window
    below = torch.ceil(first_bin - FIRST_NULL - bins).clamp_min(0)
    above = torch.ceil(bins - last_bin - FIRST_NULL).clamp_min(0)
    sign = 1.0 - 2.0 * torch.remainder(below + above, 2)
    low, high = support_edges(first_bin, last_bin, support_bins, window)
    roll_off = roll_off_width(support_bins, window)
    if roll_off == 0:
        return sign * ((freq >= low) & (freq <= high)).to(freq.dtype)
    return sign * _smooth_step(torch.minimum(freq - low, high - freq) / roll_off)


def roll_off_width(support_bins: float, window: int) -> float:
    """Width (cycles/sample) of the roll-off at each edge of a support of ``support_bins``:
    the part of the support beyond the window's first nulls (``support_envelope``)."""
    return max(support_bins - FIRST_NULL, 0.0) / window


def _smooth_step(x: torch.Tensor) -> torch.Tensor:
    """``e^{-1/x} / (e^{-1/x} + e^{-1/(1-x)})`` on (0, 1), 0 below and 1 above: C∞."""
    t = x.clamp(1e-6, 1 - 1e-6)
    rise = torch.exp(-1.0 / t)
    value = rise / (rise + torch.exp(-1.0 / (1.0 - t)))
    return torch.where(x <= 0, torch.zeros_like(x), torch.where(x >= 1, torch.ones_like(x), value))


def window_variance(window: int) -> float:
    """Variance (cycles/sample)² of ``|Ĝ|²`` taken as a density over frequency."""
    freq = torch.linspace(-8.0 / window, 8.0 / window, 4097, dtype=torch.float64)
    power = hann_power_response(freq, window)
    return float((freq.square() * power).sum() / power.sum())


def gaussian_formula_sigmas(bins: np.ndarray, weights: np.ndarray, window: int) -> np.ndarray:
    """Averaging widths (samples) from the all-Gaussian identity ``q = a (a + 2λ) / λ``.

    The window's power spectrum and each triangle are replaced by Gaussians of the same variance:
    ``|ĝ|² = exp(-2π f²/a)`` gives ``a = 4π σ_g²``, ``Λ = exp(-π (f - c)²/λ)`` gives
    ``λ = 2π σ_Λ²``; ``ϖ̂(d) = exp(-π d²/q)`` is a Gaussian of standard deviation
    ``1 / sqrt(2π q)`` samples. ``bins``/``weights``: ``(bands, K)``.
    """
    a = 4 * math.pi * window_variance(window)
    freq = bins / window
    total = weights.sum(axis=1)
    mean = (weights * freq).sum(axis=1) / total
    var = (weights * (freq - mean[:, None]) ** 2).sum(axis=1) / total
    lam = 2 * math.pi * np.maximum(var, 1e-12)
    q = a * (a + 2 * lam) / lam
    return 1.0 / np.sqrt(2 * math.pi * q)


def _operator_terms(bins: np.ndarray, weights: np.ndarray, filter_hat: np.ndarray,
                    window: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Terms of ``‖A_MS - A_FB‖²_HS`` for one band on an ``n``-point circular time axis.

    Returns ``(c, t_hat, ms_norm2)``: ``⟨A_MS, A_FB⟩ = Σ_t ϖ(t) c(t)``,
    ``‖A_FB‖² = (1/n) Σ_f |ϖ̂(f)|² t_hat(f)`` and ``‖A_MS‖²``. ``filter_hat``: ``(n,)``, the
    filter's transform on the grid ``f = j / n``. Time 0 is the frame centre.
    """
    n = filter_hat.shape[0]
    tau = np.arange(window) - window // 2  # the window's support, centred on the frame
    g = np.hanning(window + 1)[:-1]
    # v_k(τ) = g(τ) e^{2πi k τ / M}: MS(b) = Σ_k Λ_k |⟨x, v_k⟩|²
    atoms = g[None, :] * np.exp(2j * np.pi * bins[:, None] * tau[None, :] / window)
    gram = atoms.conj() @ atoms.T
    ms_norm2 = float(weights @ (np.abs(gram) ** 2) @ weights)
    placed = np.zeros((len(bins), n), dtype=complex)
    placed[:, tau % n] = atoms
    responses = np.fft.ifft(np.fft.fft(placed, axis=1) * filter_hat[None, :], axis=1)
    c = (weights[:, None] * np.abs(responses) ** 2).sum(axis=0)
    autocorr = np.fft.ifft(np.abs(filter_hat) ** 2)
    t_hat = np.fft.fft(np.abs(autocorr) ** 2).real
    return c, t_hat, ms_norm2


def _hs_errors(sizes: np.ndarray, c: np.ndarray, t_hat: np.ndarray, ms_norm2: float,
               shape: str) -> np.ndarray:
    """Relative HS errors ``‖A_MS - A_FB‖ / ‖A_MS‖`` for candidate averaging sizes."""
    n = c.shape[0]
    reach = math.ceil(averaging_reach(float(sizes.max()), shape))
    offsets = np.arange(-reach, reach + 1)
    kernels = _kernels(offsets.astype(np.float64), sizes, shape)
    cross = kernels @ c[offsets % n]
    placed = np.zeros((len(sizes), n))
    placed[:, offsets % n] = kernels
    fb_norm2 = (np.abs(np.fft.rfft(placed, axis=1)) ** 2 @ _rfft_weights(t_hat)) / n
    return np.sqrt(np.maximum(ms_norm2 - 2 * cross + fb_norm2, 0.0) / ms_norm2)


def _rfft_weights(t_hat: np.ndarray) -> np.ndarray:
    """``t_hat`` folded onto rfft bins (it is symmetric), so ``Σ_f`` runs over half the spectrum."""
    n = t_hat.shape[0]
    folded = t_hat[: n // 2 + 1].copy()
    folded[1 : (n + 1) // 2] *= 2
    return folded


def _kernels(offsets: np.ndarray, sizes: np.ndarray, shape: str) -> np.ndarray:
    off = torch.from_numpy(offsets)
    size = torch.from_numpy(np.asarray(sizes, dtype=np.float64))
    if shape == "hann2":
        return hann2_kernel(off, size).numpy()
    return gaussian_kernel(off, size).numpy()


def fit_averaging(bins: np.ndarray, weights: np.ndarray, filter_hat: np.ndarray, window: int,
                  shape: str = "hann2") -> tuple[float, float]:
    """Fit one band's averaging window to the operators: ``(size, relative HS error)``.

    ``shape``: ``"hann2"`` (size = length in samples, searched in ``[window/4, 2 window]``) or
    ``"gaussian"`` (size = standard deviation, in ``[window/24, window/3]``). A coarse
    geometric grid is refined linearly around its best point.
    """
    c, t_hat, ms_norm2 = _operator_terms(bins, weights, filter_hat, window)
    scale = window if shape == "hann2" else window / 6
    candidates = np.geomspace(0.25, 2.0, 31) * scale
    errors = _hs_errors(candidates, c, t_hat, ms_norm2, shape)
    best = int(np.argmin(errors))
    fine = np.linspace(candidates[max(best - 1, 0)], candidates[min(best + 1, 30)], 25)
    fine_errors = _hs_errors(fine, c, t_hat, ms_norm2, shape)
    best_fine = int(np.argmin(fine_errors))
    return float(fine[best_fine]), float(fine_errors[best_fine])


def support_filter(bins: np.ndarray, weights: np.ndarray, window: int, n: int,
                   support_bins: float) -> np.ndarray:
    """One band's zero-phase filter ``ĥ = sqrt(Σ_k Λ(k)|Ĝ(f - k/M)|²)`` on the ``n``-point grid
    ``f = j / n``, shaped by ``support_envelope``: zero outside
    ``[(k_first - support_bins)/M, (k_last + support_bins)/M]``."""
    freq = np.fft.fftfreq(n)
    used = weights > 0
    low, high = support_edges(bins[used].min(), bins[used].max(), support_bins, window)
    inside = (freq >= low) & (freq <= high)
    support = torch.from_numpy(freq[inside])
    power = band_power_response(support[None, :],
                                torch.from_numpy(bins[None, used].astype(np.float64)),
                                torch.from_numpy(weights[None, used]), window)[0]
    filter_hat = np.zeros(n)
    envelope = support_envelope(support, float(bins[used].min()), float(bins[used].max()),
                                support_bins, window)
    filter_hat[inside] = (power.sqrt() * envelope).numpy()
    return filter_hat


DESIGN_GRID = 4096
"""Length (samples) of the circular time axis on which the operators are compared."""


@lru_cache(maxsize=16)
def fitted_averaging(bins: tuple[tuple[int, ...], ...], weights: tuple[tuple[float, ...], ...],
                     window: int, support_bins: float, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Fitted averaging sizes (samples) and relative HS errors per band; cached per layout.

    ``bins``/``weights``: per band, the STFT bins and triangle weights (tuples, for caching).
    """
    sizes, errors = [], []
    for band_bins, band_weights in zip(bins, weights, strict=True):
        b = np.asarray(band_bins, dtype=np.float64)
        w = np.asarray(band_weights, dtype=np.float64)
        filter_hat = support_filter(b, w, window, DESIGN_GRID, support_bins)
        size, err = fit_averaging(b, w, filter_hat, window, shape)
        sizes.append(size)
        errors.append(err)
    return np.array(sizes), np.array(errors)
