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

Computation, per block of signal: one real FFT; per band only the bins in the filter's support,
multiplied by the filter and inverse-transformed at a decimated rate ``1/s_ν`` (``s_ν`` a divisor
of the hop, the coarsest for which ``|y_ν|²`` averaged by ``ϖ_ν`` is alias-free); squared modulus;
averaging as a strided convolution that lands exactly on the frame centres. Long signals are cut
into overlapping blocks (``context`` samples each side) processed as a batch, so memory is bounded
and the result equals one-shot processing.

Learnable variants keep everything a smooth function of unconstrained parameters: centre
frequencies on the HTK mel scale (each within a range via a sigmoid, optionally kept sorted),
half-widths and averaging lengths within ranges via sigmoids, free filters as a complex
multiplicative correction ``ĥ (1 + δ)`` interpolated from a half-bin grid. The integer parts of the
computation (supports, decimation, kernel taps) are chosen from the detached parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..grid import HOP, SAMPLE_RATE, WINDOW
from ..melscale import hz_to_mel
from .base import FrontEnd, check_band_limits
from .design import (
    averaging_reach,
    fitted_averaging,
    gaussian_formula_sigmas,
    gaussian_kernel,
    hann2_kernel,
    roll_off_width,
    support_edges,
    support_envelope,
    triangle_weights,
    window_kernel,
)

AVERAGING = ("hann2", "gaussian", "gaussian-formula", "none")
LEARNABLE = ("cf", "bw", "avg", "free")


def _hz_from_mel(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * torch.expm1(mel / 1127.0)


def _logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p) - torch.log1p(-p)


def _block_multiple(minimum: int) -> int:
    """Smallest ``2^k · b ≥ minimum`` with ``b`` in {4, 5, 6, 7}: fast FFT sizes on a coarse
    ladder (steps of at most 25 %), so signals of similar length share one plan and its kernels."""
    n = max(int(minimum), 1)
    power = 1
    while 7 * power < n:
        power *= 2
    return min(b * power for b in (4, 5, 6, 7, 8) if b * power >= n)


@dataclass(frozen=True)
class _Group:
    """Bands computed at one decimation step ``step`` (samples): indices for gather and conv."""

    bands: torch.Tensor  # (G,) band indices
    bins: torch.Tensor  # (G, J) rfft bin index of each support position (|j|)
    conj: torch.Tensor  # (G, J) True where the support position is a negative frequency
    slices: tuple[int, ...]  # per band: first rfft bin of its support, -1 if not one slice
    envelope: torch.Tensor  # (G, J) float64 support_envelope at each position, 0 for padding
    freq: torch.Tensor  # (G, J) float64 frequency (cycles/sample) of each support position
    tri_bins: torch.Tensor  # (G, K) STFT bins of the triangles (float64)
    kernel: torch.Tensor  # (G, J, K) |Ĝ(f_j - k/M)|², float64
    step: int
    taps: int  # averaging kernel half-length in decimated samples
    length: int  # decimated length n = L / step

    def to(self, device: torch.device) -> _Group:
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **moved)


@dataclass(frozen=True)
class _Plan:
    key: tuple
    block: int  # FFT length L (samples)
    pre: int  # samples of context before the first frame centre of a block
    frames: int  # frames per block
    groups: tuple[_Group, ...]
    order: torch.Tensor  # permutation from group-concatenated bands to band order


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
            averaging sizes (samples).
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
            raise ValueError(f"unknown averaging {averaging!r}; use one of {AVERAGING}")
        unknown = set(learn) - set(LEARNABLE)
        if unknown:
            raise ValueError(f"unknown learnable parts {sorted(unknown)}; use {LEARNABLE}")
        if averaging == "none" and "avg" in learn:
            raise ValueError("cannot learn averaging lengths with averaging='none'")
        self.fmin, self.fmax, self.norm = float(fmin), float(fmax), norm
        self.averaging, self.learn = averaging, tuple(sorted(set(learn)))
        self.sorted_centres, self.support_bins = sorted_centres, float(support_bins)
        self.context, self.block_frames = int(context), int(block_frames)
        self.bw_range, self.avg_range = tuple(map(float, bw_range)), tuple(map(float, avg_range))
        self._init_bands(centres_mel, half_widths_mel)
        self._init_averaging(averaging_sizes)
        if "free" in self.learn:
            points = window + 17  # half-bin grid from -8/M to 1/2 (cycles/sample)
            self.free_correction = nn.Parameter(torch.zeros(2, n_bands, points, dtype=torch.float64))
        self._plan_cache: dict[tuple, tuple[tuple[_Group, ...], torch.Tensor]] = {}
        self._kernel_cache: dict[tuple[int, int, int], torch.Tensor] = {}
        self._weight_cache: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}

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
            self.centre_logits = nn.Parameter(_logit(centre_t / self.mel_top))
        if "bw" in self.learn:
            low, high = self.bw_range
            self.width_logits = nn.Parameter(
                torch.full((self.n_bands,), float(_logit(torch.tensor((1 - low) / (high - low)))),
                           dtype=torch.float64))

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
        centres = torch.sigmoid(self.centre_logits) * self.mel_top
        return torch.sort(centres).values if self.sorted_centres else centres

    def half_widths_mel(self) -> torch.Tensor:
        """Triangle half-widths ``(bands,)`` in mel (float64)."""
        if "bw" not in self.learn:
            return self.init_half_widths
        low, high = self.bw_range
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
        """First and last STFT bin strictly inside each triangle (float64, detached)."""
        first = torch.floor(lower.detach() / self._bin_hz) + 1
        last = torch.ceil(upper.detach() / self._bin_hz) - 1
        return first.clamp_min(0), torch.maximum(last, first.clamp_min(0))

    # ----------------------------------------------------------------- planning
    def _plan(self, num_frames: int) -> _Plan:
        """Integer structure of the computation for the current (detached) parameters; planned
        on the CPU, its tensors then moved to the module's device. Plans are ordinary tensors
        even when made under ``torch.inference_mode`` (validation): training reuses them."""
        with torch.inference_mode(False), torch.no_grad():
            return self._make_plan(min(num_frames, self.block_frames))

    def _make_plan(self, frames: int) -> _Plan:
        lower, _, upper = self.band_edges_hz().cpu()
        first, last = self._triangle_bins(lower, upper)
        sizes = self.averaging_sizes().cpu()
        hop, window = self.grid.hop, self.grid.window
        low, high = support_edges(first, last, self.support_bins, window)
        # |y|² has frequencies beyond the width between the roll-offs only where both of its
        # factors lie in them (the window's sidelobes, rolled off): those may alias
        steps = self._decimation(high - low - roll_off_width(self.support_bins, window), sizes)
        taps = self._taps(sizes, steps)
        reach = max(t * s for t, s in zip(taps, steps, strict=True)) + window
        pre = hop * math.ceil(max(self.context, reach) / hop)
        block = hop * _block_multiple(math.ceil((2 * pre + hop * (frames - 1) + 1) / hop))
        # the groups depend on the block length, not on the frame count: signals of similar
        # length share them (and their filter weights)
        key = (block, tuple(first.tolist()), tuple(last.tolist()), tuple(steps), tuple(taps))
        if key not in self._plan_cache:
            if len(self._plan_cache) > 16:
                self._plan_cache.clear()
            device = self.init_half_widths.device
            groups = tuple(
                self._group(block, [b for b in range(self.n_bands) if steps[b] == s], first, last,
                            low, high, s, taps).to(device)
                for s in sorted(set(steps)))
            self._plan_cache[key] = groups, torch.argsort(torch.cat([g.bands for g in groups]))
        groups, order = self._plan_cache[key]
        return _Plan(key, block, pre, frames, groups, order)

    def _decimation(self, widths: torch.Tensor, sizes: torch.Tensor) -> list[int]:
        """Coarsest step (a divisor of the hop) with ``1/step > width + averaging bandwidth``."""
        if self.averaging == "none":
            bandwidth = torch.zeros_like(sizes)
        elif self.averaging == "hann2":
            bandwidth = 3.0 / sizes  # first zero of the cos⁴ window's spectrum
        else:
            bandwidth = 3.0 / (2 * math.pi * sizes)  # spectrum down to exp(-4.5)
        limit = 1.0 / (widths + bandwidth)
        divisors = [d for d in range(1, self.grid.hop + 1) if self.grid.hop % d == 0]
        return [max(d for d in divisors if d <= max(lim, 1.0)) for lim in limit.tolist()]

    def _taps(self, sizes: torch.Tensor, steps: list[int]) -> list[int]:
        """Averaging kernel half-length per band, in decimated samples (0: a single tap)."""
        if self.averaging == "none":
            return [0] * len(steps)
        return [math.ceil(averaging_reach(size, self.averaging) / step) + 1
                for size, step in zip(sizes.tolist(), steps, strict=True)]

    def _group(self, block: int, bands: list[int], first: torch.Tensor, last: torch.Tensor,
               low: torch.Tensor, high: torch.Tensor, step: int, taps: list[int]) -> _Group:
        starts = [math.ceil(float(low[b]) * block) for b in bands]
        stops = [math.floor(float(high[b]) * block) for b in bands]
        width = max(e - s + 1 for s, e in zip(starts, stops, strict=True))
        tri_width = max(int(last[b] - first[b]) + 1 for b in bands)
        j = torch.tensor(starts)[:, None] + torch.arange(width)[None, :]
        valid = j <= torch.tensor(stops)[:, None]
        freq = j.double() / block
        envelope = valid * support_envelope(freq, first[bands][:, None], last[bands][:, None],
                                            self.support_bins, self.grid.window)
        wrapped = torch.remainder(j, block)
        mirrored = wrapped > block // 2  # negative frequencies: conj of the positive bin
        tri_bins = torch.stack([first[b] for b in bands])[:, None] + torch.arange(
            tri_width, dtype=torch.float64)[None, :]
        kernel = torch.zeros(len(bands), width, tri_width, dtype=torch.float64)
        for row, band in enumerate(bands):
            part = self._band_kernel(block, int(first[band]), int(last[band]), starts[row], stops[row])
            kernel[row, : part.shape[0], : part.shape[1]] = part
        length = block // step
        slices = tuple(s if s >= 0 and s + width - 1 <= block // 2 else -1 for s in starts)
        return _Group(torch.tensor(bands), torch.where(mirrored, block - wrapped, wrapped), mirrored,
                      slices, envelope, freq, tri_bins, kernel, step, max(taps[b] for b in bands),
                      length)

    def _band_kernel(self, block: int, first: int, last: int, start: int, stop: int) -> torch.Tensor:
        """``|Ĝ(j/L - k/M)|²`` for one band's support bins ``j`` and triangle bins ``k``, cached:
        learning moves the supports one band at a time, so most bands keep their kernel."""
        key = (block, first, last)
        if key not in self._kernel_cache:
            if len(self._kernel_cache) > 4096:
                self._kernel_cache.clear()
            freq = torch.arange(start, stop + 1, dtype=torch.float64)[None, :] / block
            bins = torch.arange(first, last + 1, dtype=torch.float64)[None, :]
            self._kernel_cache[key] = window_kernel(freq, bins, self.grid.window)[0]
        return self._kernel_cache[key]

    # ----------------------------------------------------------------- weights
    def _group_weights(self, plan: _Plan, dtype: torch.dtype) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per group: filter values ``(G, J)`` (complex) and averaging kernels ``(G, taps)``."""
        trainable = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        # weights made under inference mode cannot enter autograd later: cached apart
        key = (plan.key, dtype, torch.is_inference_mode_enabled(),
               tuple(p._version for p in self.parameters()))
        if not trainable and key in self._weight_cache:
            return self._weight_cache[key]
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
        if not trainable:
            if len(self._weight_cache) > 16:
                self._weight_cache.clear()
            self._weight_cache[key] = weights
        return weights

    def _free_values(self, group: _Group) -> torch.Tensor:
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

    def _averaging_kernel(self, group: _Group, sizes: torch.Tensor) -> torch.Tensor:
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
        batch, samples = waveform.shape
        total = self.grid.num_frames(samples)
        plan = self._plan(total)
        weights = self._group_weights(plan, waveform.dtype)
        blocks = self._blocks(waveform, plan, total)  # (batch * n_blocks, L)
        n_blocks = blocks.shape[0] // batch
        spectrum = torch.fft.rfft(blocks)
        pieces = [self._group_energies(spectrum, plan, group, response, kernel)
                  for group, (response, kernel) in zip(plan.groups, weights, strict=True)]
        out = torch.cat(pieces, dim=1)[:, plan.order]
        out = out.reshape(batch, n_blocks, self.n_bands, plan.frames).permute(0, 2, 1, 3)
        return out.reshape(batch, self.n_bands, n_blocks * plan.frames)[..., :total]

    def _blocks(self, waveform: torch.Tensor, plan: _Plan, total: int) -> torch.Tensor:
        """Overlapping blocks ``(batch * n_blocks, L)``; block i's frame 0 is frame i * frames."""
        hop = self.grid.hop
        n_blocks = math.ceil(total / plan.frames)
        left = plan.pre - self.grid.offset  # block 0 starts at sample offset - pre
        needed = left + hop * plan.frames * (n_blocks - 1) + plan.block
        right = max(needed - left - waveform.shape[1], 0)
        if left < 0:
            waveform = waveform[:, -left:]
            left = 0
        padded = F.pad(waveform, (left, right))
        blocks = padded.unfold(1, plan.block, hop * plan.frames)[:, :n_blocks]
        return blocks.reshape(-1, plan.block)

    def _group_energies(self, spectrum: torch.Tensor, plan: _Plan, group: _Group,
                        response: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """Averaged energies ``(rows, G, frames)`` of one decimation group."""
        coeffs = self._support_coefficients(spectrum, group)
        band = torch.fft.ifft(_fold(coeffs * response, group.length), n=group.length, norm="forward")
        start = plan.pre // group.step - group.taps
        stride = self.grid.hop // group.step
        stop = start + stride * (plan.frames - 1) + 2 * group.taps + 1
        band = band[..., start:stop]
        energy = band.real.square() + band.imag.square()  # |y|², (rows, G, span), contiguous
        return F.conv1d(energy, kernel[:, None, :], stride=stride, groups=len(group.bands))

    @staticmethod
    def _support_coefficients(spectrum: torch.Tensor, group: _Group) -> torch.Tensor:
        """The block spectra at each band's support positions, ``(rows, G, J)``: slices where a
        support lies within the rfft's bins (copying slices is twice as fast as a gather),
        gathered elsewhere, with ``X(-f) = conj X(f)`` at negative frequencies."""
        width = group.bins.shape[1]
        pieces = []
        for row, start in enumerate(group.slices):
            if start >= 0:
                pieces.append(spectrum[:, start:start + width])
            else:
                piece = spectrum.index_select(1, group.bins[row])
                pieces.append(torch.where(group.conj[row], piece.conj(), piece))
        return torch.stack(pieces, 1)

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
        self._plan_cache.clear()
        self._kernel_cache.clear()
        self._weight_cache.clear()
        return super()._apply(fn, recurse)


def _fold(coeffs: torch.Tensor, length: int) -> torch.Tensor:
    """Coefficients ``(..., J)`` summed modulo ``length`` along the last axis when ``J > length``:
    the inverse FFT of the result at ``length`` points gives the band signal exactly at the
    decimated instants, whatever its bandwidth."""
    width = coeffs.shape[-1]
    if width <= length:
        return coeffs
    folds = -(-width // length)
    padded = F.pad(coeffs, (0, folds * length - width))
    return padded.unflatten(-1, (folds, length)).sum(-2)


def _complex(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64

