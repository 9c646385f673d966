"""Where the filter bank's time goes: each stage's share of ``fb`` and its ratio to torch.stft mel.

The stages are the :func:`torch.profiler.record_function` labels of
:data:`vocalfront.frontends.multirate.STAGES` (filter weights, blocks, FFT, gathering the support
bins, filter and folding, inverse FFTs, squared modulus, averaging, band order; without
gradients the gathering is part of the filter stage, one pass). A stage's time
is the profiled CPU time of its forward operations plus, for forward + backward, that of their
backward functions (matched by autograd sequence number); what no stage holds (input checks,
planning, autograd bookkeeping, the loss) is ``other``. Shares come from ``repeats`` profiled
runs; the ratio of a stage to torch.stft mel is its share times the unprofiled ratio of ``fb``
to the reference (median of interleaved runs, :func:`benchmarks.timing.median_seconds`), so the
stages' ratios add up to that of ``fb``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import torch
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile

from vocalfront.frontends import build_frontend
from vocalfront.frontends.multirate import STAGES

from .peers import BATCH, EXCERPT, SAMPLE_RATE, StftReference, _forward, _train_step
from .timing import median_seconds

OTHER = "other"
BACKWARD = "autograd::engine::evaluate_function"


def _descendants(event: FunctionEvent) -> Iterator[FunctionEvent]:
    for child in event.cpu_children:
        yield child
        yield from _descendants(child)


def stage_shares(function: Callable[[], object], repeats: int) -> dict[str, float]:
    """Fraction of the wall time of ``repeats`` profiled calls of ``function`` spent in each
    stage label (forward operations and their backward functions), and ``other``."""
    function()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(repeats):
            function()
        wall = time.perf_counter() - start
    events = prof.events()
    seconds = dict.fromkeys(STAGES.values(), 0.0)
    owner: dict[int, str] = {}
    for event in events:
        if event.name in seconds:
            seconds[event.name] += event.cpu_time_total / 1e6
            owner.update((op.sequence_nr, event.name) for op in _descendants(event) if op.sequence_nr >= 0)
    for event in events:
        if event.name.startswith(BACKWARD) and event.sequence_nr in owner:
            seconds[owner[event.sequence_nr]] += event.cpu_time_total / 1e6
    shares = {name: value / wall for name, value in seconds.items()}
    shares[OTHER] = max(0.0, 1.0 - sum(shares.values()))
    return shares


def breakdown(seconds: int, repeats: int) -> dict:
    """Per-stage shares and ratios to torch.stft mel of ``fb`` forward on ``seconds`` of audio
    and of forward + backward on a training batch (``fb``, and with every part learnable):
    ``{"cases": {case: {"seconds", "reference_seconds", "ratio", "shares", "ratios"}}}``."""
    torch.manual_seed(0)
    audio = torch.randn(1, SAMPLE_RATE * seconds) * 0.1
    batch = torch.randn(BATCH, EXCERPT) * 0.1
    fb = build_frontend("fb")
    sizes = fb.averaging_sizes().tolist()
    cases = {
        f"fb forward, {seconds // 60} min": (_forward(fb, audio), _forward(StftReference(), audio)),
        "fb fwd+bwd, batch": (_train_step(build_frontend("fb", averaging_sizes=sizes), batch),
                              _train_step(StftReference(trainable=True), batch)),
        "fb all learnable, fwd+bwd, batch": (
            _train_step(build_frontend("fb", averaging_sizes=sizes, learn=("cf", "bw", "avg", "free")),
                        batch),
            _train_step(StftReference(trainable=True), batch)),
    }
    result: dict[str, dict] = {}
    for name, (ours, reference) in cases.items():
        times = median_seconds({"fb": ours, "reference": reference}, repeats)
        ratio = times["fb"] / times["reference"]
        shares = stage_shares(ours, repeats)
        result[name] = {"seconds": times["fb"], "reference_seconds": times["reference"],
                        "ratio": ratio, "shares": shares,
                        "ratios": {stage: share * ratio for stage, share in shares.items()}}
    return {"cases": result}
