"""Claims about two front-ends from per-file test results: clustered paired differences, a
two-way bootstrap, equivalence tests (TOST) with fixed margins, Holm's correction and a verdict.

A *file table* is a sequence of mappings, one per (run, test file): ``frontend`` (the arm's
name), ``seed``, ``song`` (the cluster: files of one song, or one recording, are not
independent), ``frames`` and per-file metric values (``None``/NaN when undefined, e.g. AUROC of
a file with one class). Per run and song a metric is the frame-weighted mean of its files'
finite values; the paired difference ``D[seed, song] = A − B`` needs both.

Seeds and songs are *crossed*: every seed's trained model is scored on every song. Both are
sources of variation a claim must survive - a new training run (seed) and new music (song) -
so the bootstrap resamples both at once, independently (the two-way "pigeonhole" bootstrap,
Owen 2007, Ann. Appl. Stat. 1:502): each replicate draws seeds and songs with replacement and
takes the mean of ``D`` over the drawn grid (cells without a pair are left out). Averaging over
seeds and bootstrapping songs alone would treat the trained models as fixed and hide the
training-to-training spread, which in this comparison is the larger one. With a single seed it
is the ordinary cluster bootstrap over songs. The estimate is the mean of ``D`` over all
paired cells (with every pair present: the mean over songs of the mean over seeds).

Tests, at level :data:`ALPHA`, from the bootstrap distribution ``θ*`` (percentile method, the
``+1`` correction keeps p-values above 0):

- difference: two-sided ``p = 2 min(P*(θ* ≤ 0), P*(θ* ≥ 0))``;
- equivalence within ``±margin`` (TOST): ``p = max(P*(θ* ≤ −margin), P*(θ* ≥ margin))``; for
  one claim ``p < α`` is the same as the ``1 − 2α`` percentile interval lying inside the margins.

Holm's step-down correction is applied within each family: the difference tests of one metric
over all claims, and the equivalence tests of one metric over all claims. A claim is
``better``/``worse`` when its corrected difference p is below α (direction by the metric:
AUROC higher is better, error lower), ``equivalent within the margin`` when its corrected TOST
p is, ``undecided`` otherwise; both at once (a real but small difference) reads e.g.
``better, within the margin``. With fewer than :data:`MIN_SEEDS` seeds every claim stays
``undecided`` (with the reason), whatever its p-values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import VocalfrontError

ALPHA = 0.05
"""Level of every test (after Holm's correction)."""
MIN_SEEDS = 10
"""Fewest seeds for a verdict other than ``undecided``: the bootstrap's seed level has only as
many distinct values as there are seeds and understates their spread by ``(S − 1) / S``."""
BOOTSTRAP = 10_000
"""Bootstrap replicates."""
LOWER_IS_BETTER = frozenset({"error", "final_error"})
"""Metrics where a negative difference A − B favours A."""
VERDICTS = ("better", "worse", "equivalent within the margin", "undecided")

Row = Mapping[str, object]


@dataclass(frozen=True)
class Claim:
    """``a − b`` in ``metric`` on the test files (see the module docstring).

    ``seeds``: seeds with at least one paired song; ``songs``: songs with at least one paired
    seed; ``cells``: paired (seed, song) cells. ``ci_low``/``ci_high``: 95 % percentile
    interval. ``p_difference``/``p_equivalence``: bootstrap p-values before correction
    (``p_equivalence`` NaN without a margin); ``holm_difference``/``holm_equivalence``: after
    Holm's correction in their family (equal to the raw ones until :func:`decide` runs).
    """

    metric: str
    a: str
    b: str
    seeds: tuple[int, ...]
    songs: int
    cells: int
    estimate: float
    ci_low: float
    ci_high: float
    margin: float
    p_difference: float
    p_equivalence: float
    holm_difference: float = math.nan
    holm_equivalence: float = math.nan
    verdict: str = "undecided"


def song_values(rows: Sequence[Row], frontend: str, metric: str) -> dict[tuple[int, str], float]:
    """``(seed, song) → value``: the frame-weighted mean of ``metric`` over the song's files in
    the runs of ``frontend`` (files without a finite value left out; songs with none too)."""
    sums: dict[tuple[int, str], list[float]] = {}
    for row in rows:
        if row["frontend"] != frontend:
            continue
        value, frames = _number(row.get(metric)), _number(row.get("frames"))
        if math.isfinite(value) and math.isfinite(frames) and frames > 0:
            total = sums.setdefault((int(row["seed"]), str(row["song"])), [0.0, 0.0])
            total[0] += frames * value
            total[1] += frames
    return {key: weighted / frames for key, (weighted, frames) in sums.items()}


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def difference_grid(rows: Sequence[Row], a: str, b: str, metric: str
                    ) -> tuple[tuple[int, ...], tuple[str, ...], np.ndarray]:
    """``(seeds, songs, D)``: ``D[i, j] = a − b`` of seed ``seeds[i]`` on song ``songs[j]``
    (NaN where either is missing); only seeds and songs with at least one pair."""
    ours, theirs = song_values(rows, a, metric), song_values(rows, b, metric)
    paired = sorted(set(ours) & set(theirs))
    seeds = tuple(sorted({seed for seed, _ in paired}))
    songs = tuple(sorted({song for _, song in paired}))
    grid = np.full((len(seeds), len(songs)), np.nan)
    seed_index = {seed: i for i, seed in enumerate(seeds)}
    song_index = {song: j for j, song in enumerate(songs)}
    for seed, song in paired:
        grid[seed_index[seed], song_index[song]] = ours[seed, song] - theirs[seed, song]
    return seeds, songs, grid


def bootstrap_means(grid: np.ndarray, replicates: int = BOOTSTRAP, rng_seed: int = 0) -> np.ndarray:
    """``(replicates,)`` means of ``grid`` ``(seeds, songs)`` (NaN cells left out) over seeds and
    songs drawn with replacement, independently (the two-way bootstrap); NaN where a replicate
    drew no paired cell."""
    if grid.ndim != 2 or grid.size == 0:
        raise VocalfrontError(f"bootstrap needs a non-empty (seeds, songs) grid, got shape {grid.shape}")
    rng = np.random.default_rng(rng_seed)
    present = np.isfinite(grid)
    values = np.where(present, grid, 0.0)
    seed_counts = rng.multinomial(grid.shape[0], np.full(grid.shape[0], 1 / grid.shape[0]), replicates)
    song_counts = rng.multinomial(grid.shape[1], np.full(grid.shape[1], 1 / grid.shape[1]), replicates)
    totals = ((seed_counts @ values) * song_counts).sum(axis=1)
    weights = ((seed_counts @ present.astype(np.float64)) * song_counts).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / weights


def bootstrap_p(replicates: np.ndarray, margin: float = 0.0) -> tuple[float, float]:
    """``(P*(θ* ≤ −margin), P*(θ* ≥ margin))`` with the ``+1`` correction, over finite replicates."""
    kept = replicates[np.isfinite(replicates)]
    count = kept.size + 1
    return (float(np.sum(kept <= -margin) + 1) / count, float(np.sum(kept >= margin) + 1) / count)


def claim(rows: Sequence[Row], a: str, b: str, metric: str, margin: float | None = None,
          replicates: int = BOOTSTRAP, rng_seed: int = 0) -> Claim:
    """The clustered paired difference ``a − b`` in ``metric`` with its bootstrap interval and
    p-values (see the module docstring); ``rng_seed`` fixes the bootstrap draws. No pair at all
    is an error naming the two."""
    seeds, songs, grid = difference_grid(rows, a, b, metric)
    if not songs:
        raise VocalfrontError(f"{a} − {b}: no test file scored for both in {metric!r}")
    means = bootstrap_means(grid, replicates, rng_seed)
    low, high = np.nanquantile(means, [ALPHA / 2, 1 - ALPHA / 2])
    below, above = bootstrap_p(means)
    equivalence = math.nan if margin is None else max(bootstrap_p(means, margin))
    return Claim(metric, a, b, seeds, len(songs), int(np.isfinite(grid).sum()), float(np.nanmean(grid)),
                 float(low), float(high), math.nan if margin is None else float(margin),
                 min(1.0, 2 * min(below, above)), equivalence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count): the ``k``-th
    smallest of ``m`` becomes ``max_{i ≤ k} min(1, (m − i + 1) p_(i))``."""
    finite = [(p, i) for i, p in enumerate(p_values) if math.isfinite(p)]
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(sorted(finite)):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[index] = running
    return adjusted


def decide(claims: Sequence[Claim], alpha: float = ALPHA) -> list[Claim]:
    """``claims`` with Holm-corrected p-values (families: per metric, difference and equivalence
    tests apart) and their verdicts (see the module docstring), in the same order."""
    out = list(claims)
    for metric in dict.fromkeys(c.metric for c in claims):
        family = [i for i, c in enumerate(claims) if c.metric == metric]
        differences = holm([claims[i].p_difference for i in family])
        equivalences = holm([claims[i].p_equivalence for i in family])
        for i, p_difference, p_equivalence in zip(family, differences, equivalences, strict=True):
            c = claims[i]
            decided = verdict(c.metric, c.estimate, p_difference, p_equivalence, alpha)
            if len(c.seeds) < MIN_SEEDS:
                decided = f"undecided ({len(c.seeds)} seeds, {MIN_SEEDS} needed; else: {decided})"
            out[i] = dataclasses.replace(c, holm_difference=p_difference, holm_equivalence=p_equivalence,
                                         verdict=decided)
    return out


def verdict(metric: str, estimate: float, p_difference: float, p_equivalence: float,
            alpha: float = ALPHA) -> str:
    """One of :data:`VERDICTS` (``better``/``worse`` with ``, within the margin`` when the
    equivalence test also passes) from corrected p-values; ``metric`` gives the direction."""
    equivalent = p_equivalence < alpha  # False for NaN (no margin)
    if p_difference < alpha:
        favours_a = (estimate < 0) if metric in LOWER_IS_BETTER else (estimate > 0)
        side = "better" if favours_a else "worse"
        return f"{side}, within the margin" if equivalent else side
    return "equivalent within the margin" if equivalent else "undecided"
