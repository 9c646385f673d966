"""How a filter bank is applied fast: the multirate plan and the blocked computation it drives.

What the filters are (their responses, the averaging windows) is decided by
:class:`~vocalfront.frontends.filterbank.FilterBank` from the formulas of
:mod:`~vocalfront.frontends.design`; this module decides only how they are applied, from integer
facts about the bands, and then applies them.

The plan (:func:`make_plan`), for bands with triangles on STFT bins ``first..last``:

- **Decimation** (:func:`decimation_steps`): band ``ν`` is computed every ``s_ν`` samples, ``s_ν``
  the coarsest divisor of the hop for which ``|y_ν|²`` averaged by ``ϖ_ν`` is alias-free:
  ``1 / s_ν ≥`` the bandwidth of ``|y_ν|²`` plus that of ``ϖ_ν``. Bands of one step form a
  :class:`Group`, computed together.
- **Blocks**: a signal is cut into overlapping blocks of ``L`` samples (a hop multiple from a ladder
  of fast FFT sizes, :func:`block_multiple`), each holding ``frames`` frame centres and ``pre``
  samples of context on each side (enough for the filters' tails and the averaging windows), so
  memory is bounded and the result equals one-shot processing.
- **Folding**: a band's support may be wider than its decimated length ``L / s_ν``; its spectrum
  is then summed modulo that length (:func:`fold`), which samples the band signal exactly at the
  decimated instants.
- **Averaging taps**: ``ϖ_ν`` is sampled every ``s_ν`` samples out to its reach
  (:func:`averaging_taps`), and applied as a strided convolution landing on the frame centres.

The computation (:func:`apply_plan`), per block: one real FFT; per group, the bins of each band's
support times its filter response (``(G, J)`` complex, divided by ``L``), folded, inverse-transformed
at ``L / s`` points; squared modulus; averaging. The blocks go a few at a time
(:data:`CHUNK_BYTES`), so that these intermediates stay in the cache. Plans depend only on
integers (block length, supports, steps, taps), so they are kept in a :class:`PlanCache` and
shared by signals of similar length and by parameter updates that move no support.

Example::

    >>> import torch
    >>> from vocalfront.frontends.multirate import block_multiple, decimation_steps
    >>> block_multiple(130)          # a block of 130 hops is computed as one of 160
    160
    >>> decimation_steps(torch.tensor([0.01, 0.05, 0.3], dtype=torch.float64), hop=315)
    [63, 15, 3]
    >>> from vocalfront.frontends import build_frontend
    >>> plan = build_frontend("fb")._plan(100)   # 100 frames per block, 80 bands in 4 groups
    >>> plan.block, [group.step for group in plan.groups]
    (40320, [21, 35, 45, 63])
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.profiler import record_function

from ..grid import FrameGrid
from .design import averaging_reach, roll_off_width, support_edges, support_envelope, window_kernel

T = TypeVar("T")

CACHE_BYTES = 256 * 2**20
"""Most bytes of tensors a :class:`PlanCache` keeps. A plan at the longest block (1024 frames,
80 bands) holds about 63 MiB of window kernels, its bands' kernels 44 MiB and its filter weights
5 MiB: the bound keeps two such block lengths (a long file's full chunks and its last, shorter
one), or the many small plans of training and validation."""

CHUNK_BYTES = 32 * 2**20
"""Most bytes of complex intermediates (block spectra, band signals) that :func:`apply_plan`
makes at once: its blocks go through in chunks of this size, which stay in a server CPU's cache
(tens of MiB) where a long signal's all at once (hundreds of MiB) would not: twice as fast on
10 minutes of audio, and no slower on a training batch (one chunk)."""

STAGES = {"weights": "fb:weights", "blocks": "fb:blocks", "fft": "fb:fft", "gather": "fb:gather",
          "filter": "fb:filter+fold", "ifft": "fb:inverse fft", "modulus": "fb:squared modulus",
          "average": "fb:averaging", "assemble": "fb:assemble"}
"""The :func:`torch.profiler.record_function` label of each stage of the filter bank: making
the filter values and averaging kernels (``FilterBank``; every step when they are learnt), then,
in :func:`apply_plan`, cutting the signal into blocks, their FFT, gathering each band's support
bins, multiplying them by the filter and folding (without gradients one pass, all under the
filter's label), the decimated inverse FFTs, the squared modulus, the strided averaging, and
putting the bands in order."""


def block_multiple(minimum: int) -> int:
    """Smallest ``2^k · b ≥ minimum`` with ``b`` in {4, 5, 6, 7}: fast FFT sizes on a coarse
    ladder (steps of at most 25 %), so signals of similar length share one plan and its kernels."""
    n = max(int(minimum), 1)
    power = 1
    while 7 * power < n:
        power *= 2
    return min(b * power for b in (4, 5, 6, 7, 8) if b * power >= n)


def energy_widths(first: torch.Tensor, last: torch.Tensor, support_bins: float,
                  window: int) -> torch.Tensor:
    """Bandwidth (cycles/sample) of ``|y|²`` that decimation must keep alias-free, per band
    ``(bands,)``: the width of the filter's support (``design.support_edges``) less one
    roll-off. ``|y|²`` has frequencies beyond that only where both of its factors lie in the
    roll-offs (the window's sidelobes, rolled off): those may alias."""
    low, high = support_edges(first, last, support_bins, window)
    return high - low - roll_off_width(support_bins, window)


def decimation_steps(bandwidths: torch.Tensor, hop: int) -> list[int]:
    """Coarsest step (samples, a divisor of ``hop``) with ``1 / step ≥ bandwidth`` per band:
    ``bandwidths`` ``(bands,)`` in cycles/sample, that of ``|y|²`` plus the averaging window's."""
    limit = 1.0 / bandwidths
    divisors = [d for d in range(1, hop + 1) if hop % d == 0]
    return [max(d for d in divisors if d <= max(lim, 1.0)) for lim in limit.tolist()]


def averaging_taps(sizes: torch.Tensor, steps: Sequence[int], shape: str) -> list[int]:
    """Averaging kernel half-length per band, in decimated samples (0: a single tap, no
    averaging): the window's reach (``design.averaging_reach``) over the step, plus one."""
    if shape == "none":
        return [0] * len(steps)
    return [math.ceil(averaging_reach(size, shape) / step) + 1
            for size, step in zip(sizes.tolist(), steps, strict=True)]


@dataclass(frozen=True)
class Bands:
    """The integer facts about the bands that a plan depends on (detached, on the CPU).

    ``first``, ``last``: ``(bands,)`` float64 first and last STFT bin of each triangle;
    ``steps``: decimation step per band (samples); ``taps``: averaging half-length per band
    (decimated samples); ``support_bins``: support beyond the triangle, in STFT bins.
    """

    first: torch.Tensor
    last: torch.Tensor
    steps: tuple[int, ...]
    taps: tuple[int, ...]
    support_bins: float


@dataclass(frozen=True)
class Group:
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

    def to(self, device: torch.device) -> Group:
        moved = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                 if isinstance(getattr(self, f.name), torch.Tensor)}
        return replace(self, **moved)


@dataclass(frozen=True)
class Plan:
    """The integer structure of one forward pass: block length ``block`` (samples), context
    ``pre`` (samples before the first frame centre of a block), ``frames`` per block, the
    ``groups`` and the permutation ``order`` from group-concatenated bands to band order.
    ``key`` identifies the groups (what filter weights depend on)."""

    key: tuple
    block: int
    pre: int
    frames: int
    groups: tuple[Group, ...]
    order: torch.Tensor


class PlanCache:
    """Least-recently-used store of what plans and their weights cost to make, keyed by what
    they depend on: a band's window kernel ``("kernel", block, first, last)`` (learning moves
    the supports one band at a time, so most bands keep theirs), a plan's groups
    ``("groups", key)`` and filter weights (whatever key their maker chooses). It holds at most
    ``max_bytes`` of tensors (:data:`CACHE_BYTES`); the newest entry is kept even when larger."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple, make: Callable[[], T]) -> T:
        """The value stored under ``key``, made by ``make()`` and stored when absent."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key][0]
        value = make()
        size = _tensor_bytes(value)
        self._entries[key] = value, size
        self._bytes += size
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
        return value

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes of tensors held."""
        return self._bytes


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(item) for item in value)
    if is_dataclass(value):
        return sum(_tensor_bytes(getattr(value, f.name)) for f in fields(value))
    return 0


def make_plan(frames: int, bands: Bands, grid: FrameGrid, context: int, cache: PlanCache,
              device: torch.device) -> Plan:
    """The plan for blocks of ``frames`` frames (``context``: least samples of signal on each
    side of a block's frames); its groups come from ``cache`` and live on ``device``."""
    hop, window = grid.hop, grid.window
    reach = max(t * s for t, s in zip(bands.taps, bands.steps, strict=True)) + window
    pre = hop * math.ceil(max(context, reach) / hop)
    block = hop * block_multiple(math.ceil((2 * pre + hop * (frames - 1) + 1) / hop))
    # the groups depend on the block length, not on the frame count: signals of similar
    # length share them (and their filter weights)
    key = (block, tuple(bands.first.tolist()), tuple(bands.last.tolist()), bands.steps, bands.taps)
    groups, order = cache.get(("groups", key), lambda: _groups(block, bands, window, cache, device))
    return Plan(key, block, pre, frames, groups, order)


def _groups(block: int, bands: Bands, window: int, cache: PlanCache,
            device: torch.device) -> tuple[tuple[Group, ...], torch.Tensor]:
    groups = tuple(
        _group(block, [b for b in range(len(bands.steps)) if bands.steps[b] == s], bands, s,
               window, cache).to(device)
        for s in sorted(set(bands.steps)))
    return groups, torch.argsort(torch.cat([g.bands for g in groups]))


def _group(block: int, members: list[int], bands: Bands, step: int, window: int,
           cache: PlanCache) -> Group:
    first, last, support_bins = bands.first, bands.last, bands.support_bins
    low, high = support_edges(first, last, support_bins, window)
    starts = [math.ceil(float(low[b]) * block) for b in members]
    stops = [math.floor(float(high[b]) * block) for b in members]
    width = max(e - s + 1 for s, e in zip(starts, stops, strict=True))
    tri_width = max(int(last[b] - first[b]) + 1 for b in members)
    j = torch.tensor(starts)[:, None] + torch.arange(width)[None, :]
    valid = j <= torch.tensor(stops)[:, None]
    freq = j.double() / block
    envelope = valid * support_envelope(freq, first[members][:, None], last[members][:, None],
                                        support_bins, window)
    wrapped = torch.remainder(j, block)
    mirrored = wrapped > block // 2  # negative frequencies: conj of the positive bin
    tri_bins = torch.stack([first[b] for b in members])[:, None] + torch.arange(
        tri_width, dtype=torch.float64)[None, :]
    kernel = torch.zeros(len(members), width, tri_width, dtype=torch.float64)
    for row, band in enumerate(members):
        key = ("kernel", block, int(first[band]), int(last[band]))
        part = cache.get(key, lambda row=row, band=band: _band_kernel(
            block, int(first[band]), int(last[band]), starts[row], stops[row], window))
        kernel[row, : part.shape[0], : part.shape[1]] = part
    length = block // step
    slices = tuple(s if s >= 0 and s + width - 1 <= block // 2 else -1 for s in starts)
    return Group(torch.tensor(members), torch.where(mirrored, block - wrapped, wrapped), mirrored,
                 slices, envelope, freq, tri_bins, kernel, step,
                 max(bands.taps[b] for b in members), length)


def _band_kernel(block: int, first: int, last: int, start: int, stop: int, window: int) -> torch.Tensor:
    """``|Ĝ(j/L - k/M)|²`` ``(J, K)`` for one band's support bins ``j = start..stop`` and
    triangle bins ``k = first..last``."""
    freq = torch.arange(start, stop + 1, dtype=torch.float64)[None, :] / block
    bins = torch.arange(first, last + 1, dtype=torch.float64)[None, :]
    return window_kernel(freq, bins, window)[0]


def apply_plan(waveform: torch.Tensor, plan: Plan, weights: Sequence[tuple[torch.Tensor, torch.Tensor]],
               grid: FrameGrid) -> torch.Tensor:
    """Averaged band energies ``(batch, bands, frames)`` of ``waveform`` ``(batch, samples)``.

    ``weights``: per group of ``plan``, the filter values at its support positions ``(G, J)``
    (complex, divided by the block length) and the averaging kernels ``(G, 2 * taps + 1)``.
    Blocks go through the stages a few at a time (:func:`chunk_rows`), so that their
    intermediates stay in the processor's cache. Each stage runs under a
    :func:`torch.profiler.record_function` label from :data:`STAGES` (``benchmarks`` times them).
    """
    batch, samples = waveform.shape
    total = grid.num_frames(samples)
    with record_function(STAGES["blocks"]):
        blocks = _blocks(waveform, plan, total, grid)  # (batch * n_blocks, L)
    n_blocks = blocks.shape[0] // batch
    rows = chunk_rows(plan, waveform.element_size())
    parts = [_chunk_energies(blocks[first:first + rows], plan, weights, grid.hop)
             for first in range(0, blocks.shape[0], rows)]
    with record_function(STAGES["assemble"]):
        n_bands = len(plan.order)
        out = (parts[0] if len(parts) == 1 else torch.cat(parts))[:, plan.order]
        out = out.reshape(batch, n_blocks, n_bands, plan.frames).permute(0, 2, 1, 3)
        return out.reshape(batch, n_bands, n_blocks * plan.frames)[..., :total]


def chunk_rows(plan: Plan, real_bytes: int) -> int:
    """Blocks per chunk: as many as keep a chunk's complex intermediates (its spectra and every
    group's band signals, ``2 * real_bytes`` bytes a value) within :data:`CHUNK_BYTES`; at least one."""
    values = plan.block // 2 + 1 + sum(len(g.bands) * max(g.bins.shape[1], g.length)
                                       for g in plan.groups)
    return max(1, CHUNK_BYTES // (2 * real_bytes * values))


def _chunk_energies(blocks: torch.Tensor, plan: Plan,
                    weights: Sequence[tuple[torch.Tensor, torch.Tensor]], hop: int) -> torch.Tensor:
    """Averaged energies ``(rows, bands, frames)`` of blocks ``(rows, L)``, bands in group order."""
    with record_function(STAGES["fft"]):
        spectrum = RealFFT.apply(blocks)
    return torch.cat([_group_energies(spectrum, plan, group, response, kernel, hop)
                      for group, (response, kernel) in zip(plan.groups, weights, strict=True)], dim=1)


def _blocks(waveform: torch.Tensor, plan: Plan, total: int, grid: FrameGrid) -> torch.Tensor:
    """Overlapping blocks ``(batch * n_blocks, L)``; block i's frame 0 is frame i * frames."""
    hop = grid.hop
    n_blocks = math.ceil(total / plan.frames)
    left = plan.pre - grid.offset  # block 0 starts at sample offset - pre
    needed = left + hop * plan.frames * (n_blocks - 1) + plan.block
    right = max(needed - left - waveform.shape[1], 0)
    if left < 0:
        waveform = waveform[:, -left:]
        left = 0
    padded = F.pad(waveform, (left, right))
    blocks = padded.unfold(1, plan.block, hop * plan.frames)[:, :n_blocks]
    return blocks.reshape(-1, plan.block)


class RealFFT(torch.autograd.Function):
    """``torch.fft.rfft`` of ``(rows, L)`` real blocks whose backward is one inverse real FFT of
    ``L`` points (torch's own takes a complex FFT of the zero-padded spectrum: four times the
    cost, a tenth of a training step). For a gradient ``G`` of the ``L // 2 + 1`` bins,
    ``dℓ/dx_t = Re Σ_k G_k e^{2πikt/L} = irfft(G')_t`` (``norm="forward"``) with ``G'`` halved
    except at 0 and ``L / 2``, the bins the inverse counts once."""

    @staticmethod
    def forward(ctx: Any, blocks: torch.Tensor) -> torch.Tensor:
        ctx.length = blocks.shape[-1]
        return torch.fft.rfft(blocks)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        length = ctx.length
        halves = torch.full(grad.shape[-1:], 0.5, dtype=grad.real.dtype, device=grad.device)
        halves[0] = 1.0
        if length % 2 == 0:
            halves[-1] = 1.0
        return torch.fft.irfft(grad * halves, n=length, norm="forward")


def _group_energies(spectrum: torch.Tensor, plan: Plan, group: Group, response: torch.Tensor,
                    kernel: torch.Tensor, hop: int) -> torch.Tensor:
    """Averaged energies ``(rows, G, frames)`` of one decimation group."""
    if spectrum.requires_grad or response.requires_grad:
        with record_function(STAGES["gather"]):
            coeffs = _support_coefficients(spectrum, group)
        with record_function(STAGES["filter"]):
            coeffs = fold(coeffs * response, group.length)
    else:
        with record_function(STAGES["filter"]):
            coeffs = _filtered_support(spectrum, group, response)
    with record_function(STAGES["ifft"]):
        band = torch.fft.ifft(coeffs, n=group.length, norm="forward")
    start = plan.pre // group.step - group.taps
    stride = hop // group.step
    stop = start + stride * (plan.frames - 1) + 2 * group.taps + 1
    with record_function(STAGES["modulus"]):
        band = band[..., start:stop]
        energy = band.real.square() + band.imag.square()  # |y|², (rows, G, span), contiguous
    with record_function(STAGES["average"]):
        return F.conv1d(energy, kernel[:, None, :], stride=stride, groups=len(group.bands))


def _filtered_support(spectrum: torch.Tensor, group: Group, response: torch.Tensor) -> torch.Tensor:
    """``fold(_support_coefficients(spectrum, group) * response, group.length)`` without
    gradients, each band's product written straight into its row of the ifft's input
    ``(rows, G, max(J, n))`` (zero beyond ``J``): no copies of the supports, no padding."""
    width, length = group.bins.shape[1], group.length
    coeffs = spectrum.new_empty(spectrum.shape[0], len(group.bands), max(width, length))
    coeffs[..., width:].zero_()
    for row, start in enumerate(group.slices):
        if start >= 0:
            piece = spectrum[:, start:start + width]
        else:
            piece = spectrum.index_select(1, group.bins[row])
            piece = torch.where(group.conj[row], piece.conj(), piece)
        torch.mul(piece, response[row], out=coeffs[:, row, :width])
    return fold(coeffs, length) if width > length else coeffs


def _support_coefficients(spectrum: torch.Tensor, group: Group) -> torch.Tensor:
    """The block spectra at each band's support positions, ``(rows, G, J)``, with
    ``X(-f) = conj X(f)`` at negative frequencies: one gather for the group, whose backward
    (one scatter-add) costs a fraction of per-band slices' (a spectrum-sized gradient each)."""
    coeffs = spectrum.index_select(1, group.bins.flatten()).unflatten(1, group.bins.shape)
    return coeffs if min(group.slices) >= 0 else torch.where(group.conj, coeffs.conj(), coeffs)


def fold(coeffs: torch.Tensor, length: int) -> torch.Tensor:
    """Coefficients ``(..., J)`` summed modulo ``length`` along the last axis when ``J > length``:
    the inverse FFT of the result at ``length`` points gives the band signal exactly at the
    decimated instants, whatever its bandwidth."""
    width = coeffs.shape[-1]
    if width <= length:
        return coeffs
    folds = -(-width // length)
    padded = F.pad(coeffs, (0, folds * length - width))
    return padded.unflatten(-1, (folds, length)).sum(-2)
