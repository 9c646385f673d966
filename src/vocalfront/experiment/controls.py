"""Experiment arms beyond the registered front-ends: controls for the learned variants.

An *arm* of an experiment file is a named variant of a registered front-end::

    [experiment.arms."fb-random-cf"]
    frontend = "fb"                                   # the registered front-end it builds on
    perturb = { centre = 1.4 }                        # optional: a random-perturbation control
    train = { frontend_lr_multiplier = 1.0 }          # optional: overrides of [base.*] sections

**Random-perturbation control** (``perturb``): the designed filter bank with its centre
frequencies, bandwidths and/or averaging lengths moved at random, then frozen - as far as the
learned variants moved, but in no learned direction. Amounts are what
:func:`vocalfront.frontends.inspection.movement_summary` reports as ``*_median`` (the report's
movement table): ``centre`` and ``bandwidth`` in units of the local band spacing, ``averaging``
as the relative change ``|L − L₀| / L₀``. Each band's change is a standard normal draw (seeded
by the run's seed: every seed a different random bank) times one scale per quantity, chosen so
that the movement measured as for the learned variants has exactly the stated median. The
moved parameters become the front-end options ``centres_mel``, ``half_widths_mel`` and
``averaging_sizes`` of the run (recorded in its ``config.json``); unmoved averaging lengths
stay those designed for the unmoved bands, as in ``fb-learn-cf`` and ``fb-learn-bw``. Centres
are kept inside the bank's range and sorted; bandwidths and averaging lengths inside the ranges
the learnable variants may reach (``bw_range``, ``avg_range``).

**Learning-rate control** (``train = { frontend_lr_multiplier = ... }``): a learned variant at
another front-end learning rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import VocalfrontError
from ..frontends import FilterBank, build_frontend, inspection
from ..melscale import hz_to_mel, mel_to_hz

PERTURBABLE = ("centre", "bandwidth", "averaging")
"""Quantities a perturbation control moves (keys of ``perturb``)."""
PERTURB_STREAM = 11
"""Sub-stream of the run's seed for the perturbation."""
PERTURBED_OPTIONS = ("centres_mel", "half_widths_mel", "averaging_sizes")
"""Front-end options a perturbation control sets."""
ARM_KEYS = ("frontend", "perturb", "data", "model", "train", "eval")


@dataclass(frozen=True)
class Arm:
    """A named variant of ``frontend``: ``perturb`` amounts (empty: none) and ``overrides`` of
    the base configuration's sections (``{"train": {...}, ...}``)."""

    frontend: str
    perturb: Mapping[str, float] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def parse_arm(name: str, table: Any, where: str) -> Arm:
    """An ``[experiment.arms.NAME]`` table as an :class:`Arm`; problems name ``where`` and the arm."""
    if not isinstance(table, dict) or not isinstance(table.get("frontend"), str):
        raise VocalfrontError(f"{where}: arm {name!r} needs frontend = \"NAME\" (a registered front-end)")
    unknown = [key for key in table if key not in ARM_KEYS]
    if unknown:
        raise VocalfrontError(f"{where}: unknown key {unknown[0]!r} in arm {name!r} "
                              f"(known: {', '.join(ARM_KEYS)})")
    perturb = table.get("perturb", {})
    if not isinstance(perturb, dict):
        perturb = {"perturb": perturb}
    bad = [key for key, value in perturb.items() if key not in PERTURBABLE or isinstance(value, bool)
           or not isinstance(value, int | float) or not 0 <= value <= 10]
    if bad:
        raise VocalfrontError(f"{where}: arm {name!r}: perturb takes {', '.join(PERTURBABLE)} = amounts "
                              f"from 0 to 10, got {bad[0]!r}")
    overrides = {key: value for key, value in table.items() if key not in ("frontend", "perturb")}
    if any(not isinstance(value, dict) for value in overrides.values()):
        raise VocalfrontError(f"{where}: arm {name!r}: {', '.join(overrides)} must be tables")
    return Arm(table["frontend"], {key: float(value) for key, value in perturb.items()}, overrides)


def perturbed_options(frontend: str, options: Mapping[str, Any], amounts: Mapping[str, float],
                      seed: int) -> dict[str, Any]:
    """``options`` with ``centres_mel``, ``half_widths_mel`` and ``averaging_sizes`` (samples) of
    the designed bank ``frontend`` moved at random by ``amounts`` (see the module docstring),
    rounded to 9 significant digits so that the run's ``config.json`` reads back the same."""
    bank = build_frontend(frontend, **options)
    if not isinstance(bank, FilterBank) or bank.learn or bank.averaging == "none":
        raise VocalfrontError(f"a perturbation control needs a fixed filter bank with averaging, "
                              f"not {frontend!r}")
    rng = np.random.default_rng((seed, PERTURB_STREAM))
    designed = _Bands(bank.centres_mel().numpy().copy(), bank.half_widths_mel().numpy().copy(),
                      bank.averaging_sizes().numpy().copy())
    spacing = np.gradient(designed.centres) if len(designed.centres) > 1 else 2 * designed.halves
    shapes = {key: rng.standard_normal(len(spacing)) for key in PERTURBABLE}  # all drawn: fixed streams
    low, top = hz_to_mel(bank.fmin), 0.999 * bank.mel_top
    bw_low, bw_high = bank.bw_range
    avg_low, avg_high = bank.avg_range

    def moved(scales: Mapping[str, float]) -> _Bands:
        centres = np.sort(np.clip(designed.centres + spacing * scales["centre"] * shapes["centre"], low, top))
        halves = np.clip(designed.halves + spacing * scales["bandwidth"] * shapes["bandwidth"] / 2,
                         bw_low * designed.halves, bw_high * designed.halves)
        sizes = np.clip(designed.sizes * (1 + scales["averaging"] * shapes["averaging"]), avg_low, avg_high)
        return _Bands(centres, halves, sizes)

    scales = dict.fromkeys(PERTURBABLE, 0.0)
    for key in PERTURBABLE:  # centres first: moving them changes the bandwidths in Hz too
        if amounts.get(key, 0.0) > 0:
            scales[key] = _scale_for(amounts[key], lambda x, key=key: designed.movement(
                moved({**scales, key: x}))[f"{key}_median"])
    result = moved(scales)
    return {**options, "centres_mel": _rounded(result.centres), "half_widths_mel": _rounded(result.halves),
            "averaging_sizes": _rounded(result.sizes)}


@dataclass(frozen=True)
class _Bands:
    """Per-band centres and half-widths (mel) and averaging sizes (samples) of a filter bank."""

    centres: np.ndarray
    halves: np.ndarray
    sizes: np.ndarray

    def parameters(self) -> dict[str, list[float]]:
        """The keys of :func:`~vocalfront.frontends.inspection.frontend_parameters` that movement uses
        (the averaging size in samples: only relative changes are compared)."""
        return {"centre_hz": mel_to_hz(self.centres).tolist(),
                "bandwidth_hz": (mel_to_hz(self.centres + self.halves)
                                 - mel_to_hz(self.centres - self.halves)).tolist(),
                "averaging_length_ms": self.sizes.tolist()}

    def movement(self, other: _Bands) -> dict[str, float]:
        """:func:`~vocalfront.frontends.inspection.movement_summary` from these bands to ``other``."""
        return inspection.movement_summary(self.parameters(), other.parameters())


def _scale_for(target: float, measure: Callable[[float], float]) -> float:
    """The scale ``x`` with ``measure(x) ≈ target`` (bisection; ``measure`` grows with ``x``)."""
    low, high = 0.0, 1.0
    while measure(high) < target and high < 1e3:
        high *= 2
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if measure(middle) < target else (low, middle)
    return (low + high) / 2


def _rounded(values: np.ndarray) -> list[float]:
    return [float(f"{value:.9g}") for value in values]


def control_movement(frontend: str, options: Mapping[str, Any]) -> dict[str, float]:
    """How far a perturbation control's bank (``options`` holding :data:`PERTURBED_OPTIONS`) lies
    from the designed one (the same options without them), measured as
    :func:`~vocalfront.frontends.inspection.movement_summary` measures the learned variants; empty
    for other runs."""
    if not set(PERTURBED_OPTIONS) <= set(options):
        return {}
    designed = build_frontend(frontend, **unperturbed(options))
    return inspection.movement_summary(inspection.frontend_parameters(designed),
                                    inspection.frontend_parameters(build_frontend(frontend, **options)))


def unperturbed(options: Mapping[str, Any]) -> dict[str, Any]:
    """Front-end options without a perturbation control's :data:`PERTURBED_OPTIONS`: the
    designed bank's."""
    return {key: value for key, value in options.items() if key not in PERTURBED_OPTIONS}
