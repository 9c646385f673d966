"""The learnable front-end parameters of a detector in training, as the run's logs record them.

Each validation entry of ``metrics.jsonl`` (:mod:`.runfolder`) carries ``frontend``
(:func:`learnable_parameters`) and, for a learnable filter bank, ``frontend_moved``: how far
its parameters moved from their initial values (:func:`frontend_report`).
"""

from __future__ import annotations

from typing import Any

from ..frontends import FilterBank, inspection
from ..model import Detector


def learnable_parameters(detector: Detector) -> dict[str, list[float]]:
    """The learnable front-end and compression parameters, in physical units where known.

    A filter bank with learnable parts gives all its per-band parameters
    (:func:`vocalfront.frontends.inspection.frontend_parameters`: ``centre_hz``, ``bandwidth_hz``,
    averaging size in ms, ``free_correction_max``); other learnable front-end parameters are
    listed as flat lists under their names, learnable compression parameters under
    ``compression.<name>``. Empty for fixed front-ends.
    """
    out = filterbank_parameters(detector) or {
        name: param.detach().flatten().tolist()
        for name, param in detector.frontend.named_parameters() if param.requires_grad}
    out.update({f"compression.{name}": param.detach().flatten().tolist()
                for name, param in detector.compression.named_parameters() if param.requires_grad})
    return out


def filterbank_parameters(detector: Detector) -> dict[str, list[float]] | None:
    """Per-band parameters of a learnable filter-bank front-end, else ``None`` (what a run keeps
    as its initial values, to measure movement against)."""
    frontend = detector.frontend
    if isinstance(frontend, FilterBank) and any(p.requires_grad for p in frontend.parameters()):
        return inspection.frontend_parameters(frontend)
    return None


def frontend_report(detector: Detector, initial: dict[str, list[float]] | None) -> dict[str, Any]:
    """``frontend``: learnable parameters now; ``frontend_moved`` (only with ``initial``, the
    :func:`filterbank_parameters` at the start): how far a learnable filter bank moved from its
    initialisation (:func:`vocalfront.frontends.inspection.movement_summary`)."""
    params = learnable_parameters(detector)
    if initial is None:
        return {"frontend": params}
    current = {key: params[key] for key in initial}
    return {"frontend": params, "frontend_moved": inspection.movement_summary(initial, current)}
