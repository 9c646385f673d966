"""The designed filter bank and its learnable variants, computed the fast (multirate) way.

``FB(b, ν) = Σ_t ϖ_ν(t - c_b) |(x * h_ν)(t)|²`` at the frame centres ``c_b = hop * b + window // 2``
(``theory.md``). Filters ``h_ν`` are analytic (positive frequencies) with power response
``Σ_k Λ_ν(k) |Ĝ(f - k/window)|²``: the mel triangle ``Λ_ν`` smoothed by the power spectrum of the
STFT's Hann window, kept on the triangle's bins widened by ``support_bins`` STFT bins each side:
``sqrt`` of that out to the window's first nulls (2 bins), then through its first sidelobes with
the sign the window's transform has there, rolled off smoothly to 0 (``design.support_envelope``).
Smooth filters have short tails, so processing in blocks equals one-shot processing even after an
abrupt onset (with the edges cut at the first nulls, ``support_bins=2``, it did not). Averaging
windows ``ϖ_ν`` are Hann²-shaped with per-band lengths fitted to the operators (``design.py``),
Gaussian, or absent.

This module owns what the filters are: their parameterisation and, from it, the filter values
and averaging windows. How they are applied - decimation per band, blocks, folding, the forward
computation - is :mod:`.multirate`'s job, planned from the integer facts about the bands
(supports, steps, taps).

Learnable variants keep everything a smooth function of unconstrained parameters: centre
frequencies on the HTK mel scale (each within a range via a sigmoid, optionally kept sorted),
half-widths and averaging lengths within ranges via sigmoids (the ranges keep every band wider
than the FFT bin spacing, so none falls silent between bins), free filters as a complex
multiplicative correction ``ĥ (1 + δ)`` interpolated from a half-bin grid. The integer parts of the
computation (supports, decimation, kernel taps) are chosen from the detached parameters.

Example::

    >>> import torch
    >>> from vocalfront.frontends import FilterBank
    >>> bank = FilterBank(learn=("cf",))            # learnable centre frequencies
    >>> bank(torch.randn(2, 22050)).shape           # (batch, bands, frames), 70 frames/s
    torch.Size([2, 80, 67])
    >>> bank.band_edges_hz().shape                  # lower, centre, upper edge per band (Hz)
    torch.Size([3, 80])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from ..errors import VocalfrontError
from ..grid import HOP, SAMPLE_RATE, WINDOW
from ..melscale import hz_to_mel
from .base import FrontEnd, check_band_limits
from .design import (
    averaging_bandwidth,
    bins_inside,
    check_bands_hold_bins,
    fitted_averaging,
    gaussian_formula_sigmas,
    gaussian_kernel,
    hann2_kernel,
    lowest_centre,
    narrowest_half_width,
    triangle_weights,
)
from .multirate import (
    STAGES,
    Bands,
    Group,
    Plan,
    PlanCache,
    apply_plan,
    averaging_taps,
    decimation_steps,
    energy_widths,
    make_plan,
)

AVERAGING = ("hann2", "gaussian", "gaussian-formula", "none")
LEARNABLE = ("cf", "bw", "avg", "free")


def _hz_from_mel(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * torch.expm1(mel / 1127.0)


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


class FilterBank(FrontEnd):
    """Designed filter bank with per-band time-averaging, optionally learnable.

    Args:
        n_bands, fmin, fmax: mel band layout (HTK scale, Hz), as the ``schlueter`` mel.
        norm: triangle normalisation, ``"unit-sum"`` (default, matches ``mel``), ``"slaney"``,
            ``"none"``.
        averaging: ``"hann2"`` (lengths fitted to the operators), ``"gaussian"`` (widths fitted),
            ``"gaussian-formula"`` (widths from ``q = a(a + 2λ)/λ``), ``"none"`` (the ablation).
        averaging_sizes: per-band length (hann2) or standard deviation (Gaussian) in samples;
            ``None`` designs them.
        learn: any of ``"cf"`` (centre frequencies), ``"bw"`` (bandwidths), ``"avg"`` (averaging
            lengths), ``"free"`` (free complex filter responses).
        sorted_centres: keep learnable centres in increasing order.
        support_bins: filter support beyond the outermost triangle bins, in STFT bins (4: out
            to the window's third nulls with a smooth roll-off; 2: cut at the first nulls, the
            design before version 0.2, kept for models trained with it).
        context: samples of signal used on each side of a block (bounds the filter + averaging).
        block_frames: frames per block for long signals (bounds memory).
        bw_range, avg_range: ranges of learnable half-widths (factor of the initial) and
            averaging sizes (samples). Learnable bands are kept wider than the FFT bin spacing
            (:data:`.design.BIN_MARGIN`), so none can fall silent between bins: a learnable
            half-width's factor stays above :meth:`lowest_width_factors` of its centre, and
            learnable centres of fixed widths above :func:`.design.lowest_centre`; a layout
            that cannot keep this is refused.
    """

    def __init__(self, n_bands: int = 80, fmin: float = 27.5, fmax: float = 8000.0,
                 norm: str = "unit-sum", averaging: str = "hann2",
                 averaging_sizes: list[float] | None = None, learn: tuple[str, ...] | list[str] = (),
                 sorted_centres: bool = True, support_bins: float = 4.0, context: int = 4096,
                 block_frames: int = 1024, bw_range: tuple[float, float] = (0.5, 3.0),
                 avg_range: tuple[float, float] = (32.0, 4096.0), centres_mel: list[float] | None = None,
                 half_widths_mel: list[float] | None = None,
                 sample_rate: int = SAMPLE_RATE, hop: int = HOP, window: int = WINDOW):
        super().__init__(n_bands, sample_rate, hop, window)
        check_band_limits(fmin, fmax, self.sample_rate)
        if averaging not in AVERAGING:
            raise VocalfrontError(f"unknown averaging {averaging!r}; use one of {AVERAGING}")
        unknown = set(learn) - set(LEARNABLE)
        if unknown:
            raise VocalfrontError(f"unknown learnable parts {sorted(unknown)}; use {LEARNABLE}")
        if averaging == "none" and "avg" in learn:
            raise VocalfrontError("cannot learn averaging lengths with averaging='none'")
        self.fmin, self.fmax, self.norm = float(fmin), float(fmax), norm
        self.averaging, self.learn = averaging, tuple(sorted(set(learn)))
        self.sorted_centres, self.support_bins = sorted_centres, float(support_bins)
        self.context, self.block_frames = int(context), int(block_frames)
        self.bw_range, self.avg_range = tuple(map(float, bw_range)), tuple(map(float, avg_range))
        self._init_bands(centres_mel, half_widths_mel)
        with torch.no_grad():
            lower, _, upper = self.band_edges_hz().numpy()
        check_bands_hold_bins(lower, upper, self.sample_rate, self.grid.window)
        self._init_averaging(averaging_sizes)
        if "free" in self.learn:
            points = window + 17  # half-bin grid from -8/M to 1/2 (cycles/sample)
            self.free_correction = nn.Parameter(torch.zeros(2, n_bands, points, dtype=torch.float64))
        self._cache = PlanCache()

    # ----------------------------------------------------------------- parameterisation
    def _init_bands(self, centres_mel: list[float] | None, half_widths_mel: list[float] | None) -> None:
        mels = np.linspace(hz_to_mel(self.fmin), hz_to_mel(self.fmax), self.n_bands + 2)
        centres = np.asarray(centres_mel if centres_mel is not None else mels[1:-1], np.float64)
        widths = np.asarray(half_widths_mel if half_widths_mel is not None
                            else np.diff(mels)[:-1], np.float64)
        self.mel_top = float(hz_to_mel(0.95 * self.sample_rate / 2))
        self.register_buffer("init_half_widths", torch.from_numpy(widths.copy()))
        centre_t = torch.from_numpy(centres.copy())
        if "cf" not in self.learn:
            self.register_buffer("fixed_centres", centre_t)
        else:
            # with fixed widths the centres keep off the low end where a band would be too narrow
            lowest = 0.0 if "bw" in self.learn else lowest_centre(widths, self._bin_hz)
            self.lowest_centre = self._check_lowest_centre(lowest, centres)
            self.centre_logits = nn.Parameter(
                _logit((centre_t - self.lowest_centre) / (self.mel_top - self.lowest_centre)))
        if "bw" in self.learn:
            self._check_widths_can_hold_bins(centre_t)
            low, high = self.lowest_width_factors(centre_t), self.bw_range[1]
            self.width_logits = nn.Parameter(_logit((1 - low) / (high - low)))

    def _check_lowest_centre(self, lowest: float, centres: np.ndarray) -> float:
        """``lowest`` (mel), the lowest centre learnable bands may reach, if every initial centre
        lies above it; else a one-line error."""
        if lowest >= centres.min():
            raise VocalfrontError(
                f"learnable centres: the narrowest band would fall between the FFT bins "
                f"({self._bin_hz:.4g} Hz apart) below {float(_hz_from_mel(torch.tensor(lowest))):.4g} Hz, "
                f"above the lowest initial centre; use a longer window, fewer n_bands or a higher fmin")
        return lowest

    def _check_widths_can_hold_bins(self, centres: torch.Tensor) -> None:
        """Refuse learnable half-widths that cannot keep every band wider than the FFT bin
        spacing: at their initial value (the initial centres) or, with learnable centres, at
        the widest of ``bw_range`` at 0 Hz."""
        widest = self.bw_range[1]
        at_zero_hz = self.lowest_width_factors(torch.zeros_like(centres)) / widest
        if bool((self.lowest_width_factors(centres) >= 1).any()):
            problem = "at its initial width"
        elif "cf" in self.learn and bool((at_zero_hz >= 1).any()):
            problem = f"at {widest:g} x its width near 0 Hz"
        else:
            return
        raise VocalfrontError(
            f"learnable bandwidths: a band is no wider than the FFT bin spacing "
            f"({self._bin_hz:.4g} Hz) {problem} and could fall between the bins; use a longer "
            f"window, fewer n_bands or a higher fmin")

    def lowest_width_factors(self, centres: torch.Tensor) -> torch.Tensor:
        """Per band, the smallest factor of its initial half-width a learnable half-width may
        take with centres ``centres`` (mel): ``bw_range[0]``, or more where the band would not
        be wider than the FFT bin spacing (:func:`.design.narrowest_half_width`)."""
        return torch.clamp(narrowest_half_width(centres, self._bin_hz) / self.init_half_widths,
                           min=self.bw_range[0])

    def _init_averaging(self, sizes: list[float] | None) -> None:
        if self.averaging == "none":
            sizes_t = torch.ones(self.n_bands, dtype=torch.float64)
        elif sizes is not None:
            sizes_t = torch.tensor(sizes, dtype=torch.float64)
        else:
            sizes_t = torch.from_numpy(self.design_averaging_sizes())
        if "avg" in self.learn:
            low, high = self.avg_range
            self.avg_logits = nn.Parameter(_logit((sizes_t - low) / (high - low)))
        else:
            self.register_buffer("fixed_avg_sizes", sizes_t)

    def design_averaging_sizes(self) -> np.ndarray:
        """Averaging sizes (samples) designed for the current bands: fitted or by the formula."""
        bins, weights = self.triangle_table()
        if self.averaging == "gaussian-formula":
            return gaussian_formula_sigmas(bins, weights, self.grid.window)
        shape = "hann2" if self.averaging == "hann2" else "gaussian"
        key_bins = tuple(tuple(int(k) for k in b[w > 0]) for b, w in zip(bins, weights, strict=True))
        key_weights = tuple(tuple(float(x) for x in w[w > 0]) for w in weights)
        sizes, _ = fitted_averaging(key_bins, key_weights, self.grid.window, self.support_bins, shape)
        return sizes

    def centres_mel(self) -> torch.Tensor:
        """Centre frequencies ``(bands,)`` on the HTK mel scale (float64)."""
        if "cf" not in self.learn:
            return self.fixed_centres
        # each centre has its own logit (a shared softmax would drag every band along);
        # sorting keeps the order without coupling the bands
        centres = self.lowest_centre + torch.sigmoid(self.centre_logits) * (self.mel_top - self.lowest_centre)
        return torch.sort(centres).values if self.sorted_centres else centres

    def half_widths_mel(self) -> torch.Tensor:
        """Triangle half-widths ``(bands,)`` in mel (float64)."""
        if "bw" not in self.learn:
            return self.init_half_widths
        low, high = self.lowest_width_factors(self.centres_mel()), self.bw_range[1]
        return self.init_half_widths * (low + (high - low) * torch.sigmoid(self.width_logits))

    def averaging_sizes(self) -> torch.Tensor:
        """Averaging length (hann2) or standard deviation (Gaussian) per band, in samples."""
        if "avg" not in self.learn:
            return self.fixed_avg_sizes
        low, high = self.avg_range
        return low + (high - low) * torch.sigmoid(self.avg_logits)

    def band_edges_hz(self) -> torch.Tensor:
        """Triangle lower, centre and upper frequencies ``(3, bands)`` in Hz."""
        centre, half = self.centres_mel(), self.half_widths_mel()
        return _hz_from_mel(torch.stack([centre - half, centre, centre + half]))

    def triangle_table(self) -> tuple[np.ndarray, np.ndarray]:
        """STFT bins ``(bands, K)`` and triangle weights ``(bands, K)`` (zeros pad), detached."""
        with torch.no_grad():
            lower, centre, upper = self.band_edges_hz().cpu()
        first, last = self._triangle_bins(lower, upper)
        width = int((last - first).max()) + 1
        bins = first[:, None] + torch.arange(width, dtype=torch.float64)[None, :]
        weights = triangle_weights(bins, lower, centre, upper, self._bin_hz, self.norm)
        return bins.numpy(), weights.numpy()

    @property
    def _bin_hz(self) -> float:
        return self.sample_rate / self.grid.window

    def _triangle_bins(self, lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First and last STFT bin strictly inside each triangle (float64, detached; CPU tensors
        in and out): :func:`.design.bins_inside`, an empty triangle given its first bin."""
        first, last = bins_inside(lower.detach().numpy(), upper.detach().numpy(), self._bin_hz)
        return torch.from_numpy(first), torch.from_numpy(np.maximum(last, first))

    # ----------------------------------------------------------------- planning
    def _plan(self, num_frames: int) -> Plan:
        """The multirate plan (:mod:`.multirate`) for ``num_frames`` frames and the current
        (detached) parameters; planned on the CPU, its tensors then moved to the module's device.
        Plans are ordinary tensors even when made under ``torch.inference_mode`` (validation):
        training reuses them."""
        with torch.inference_mode(False), torch.no_grad():
            lower, _, upper = self.band_edges_hz().cpu()
            first, last = self._triangle_bins(lower, upper)
            sizes = self.averaging_sizes().cpu()
            steps = self._decimation(
                energy_widths(first, last, self.support_bins, self.grid.window), sizes)
            taps = averaging_taps(sizes, steps, self.averaging)
            bands = Bands(first, last, tuple(steps), tuple(taps), self.support_bins)
            return make_plan(min(num_frames, self.block_frames), bands, self.grid, self.context,
                             self._cache, self.init_half_widths.device)

    def _decimation(self, widths: torch.Tensor, sizes: torch.Tensor) -> list[int]:
        """Decimation step per band for ``|y|²`` of ``widths`` (cycles/sample) averaged by
        windows of ``sizes`` (samples): :func:`.multirate.decimation_steps`."""
        return decimation_steps(widths + averaging_bandwidth(sizes, self.averaging), self.grid.hop)

    # ----------------------------------------------------------------- weights
    def _group_weights(self, plan: Plan, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per group: filter values ``(G, J)`` (complex) and averaging kernels ``(G, taps)``;
        cached unless they must carry gradients."""
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            return self._make_weights(plan, dtype)
        # weights made under inference mode cannot enter autograd later: cached apart
        key = ("weights", plan.key, dtype, torch.is_inference_mode_enabled(),
               tuple(p._version for p in self.parameters()))
        return self._cache.get(key, lambda: self._make_weights(plan, dtype))

    def _make_weights(self, plan: Plan, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        lower, centre, upper = self.band_edges_hz()
        sizes = self.averaging_sizes()
        weights = []
        for group in plan.groups:
            tri = triangle_weights(group.tri_bins, lower[group.bands], centre[group.bands],
                                   upper[group.bands], self._bin_hz, self.norm)
            power = torch.einsum("gjk,gk->gj", group.kernel, tri)
            peak = power.detach().amax(dim=1, keepdim=True)
            response = torch.sqrt(power + 1e-12 * peak) * group.envelope / plan.block
            response = response.to(torch.complex128)
            if "free" in self.learn:
                response = response * (1 + self._free_values(group))
            kernel = self._averaging_kernel(group, sizes[group.bands])
            weights.append((response.to(_complex(dtype)), kernel.to(dtype)))
        return weights

    def _free_values(self, group: Group) -> torch.Tensor:
        """Complex correction δ at the support frequencies, linear in the half-bin grid."""
        position = (group.freq + 8.0 / self.grid.window) * 2 * self.grid.window
        index = position.floor().clamp(0, self.free_correction.shape[-1] - 2)
        frac = position - index
        index = index.long()
        table = self.free_correction[:, group.bands]  # (2, G, P)
        left = torch.gather(table, 2, index.expand(2, -1, -1))
        right = torch.gather(table, 2, (index + 1).expand(2, -1, -1))
        values = left * (1 - frac) + right * frac
        return torch.complex(values[0], values[1])

    def _averaging_kernel(self, group: Group, sizes: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(-group.taps, group.taps + 1, dtype=torch.float64,
                               device=sizes.device) * group.step
        return self.averaging_window(offsets, sizes)

    def averaging_window(self, offsets: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
        """Averaging weights ``(bands, taps)`` at ``offsets`` (samples from the frame centre) for
        per-band ``sizes``; each row sums to 1 (a delta at offset 0 without averaging)."""
        if self.averaging == "none":
            return (offsets == 0).double().expand(len(sizes), -1)
        if self.averaging == "hann2":
            return hann2_kernel(offsets, sizes)
        return gaussian_kernel(offsets, sizes)

    # ----------------------------------------------------------------- forward
    def band_energies(self, waveform: torch.Tensor) -> torch.Tensor:
        plan = self._plan(self.grid.num_frames(waveform.shape[1]))
        with record_function(STAGES["weights"]):
            weights = self._group_weights(plan, waveform.dtype)
        return apply_plan(waveform, plan, weights, self.grid)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "n_bands": self.n_bands, "fmin": self.fmin,
                  "fmax": self.fmax, "norm": self.norm, "averaging": self.averaging,
                  "learn": list(self.learn), "sorted_centres": self.sorted_centres,
                  "support_bins": self.support_bins, "context": self.context,
                  "block_frames": self.block_frames, "bw_range": list(self.bw_range),
                  "avg_range": list(self.avg_range)}
        if self.averaging != "none":
            config["averaging_sizes"] = [float(x) for x in self.averaging_sizes().detach()]
        return config

    def _apply(self, fn, recurse=True):
        self._cache.clear()  # plans and weights live on the old device
        return super()._apply(fn, recurse)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64

