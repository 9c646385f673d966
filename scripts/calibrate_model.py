"""Choose a detector's decision settings on its run's validation set and store them in a copy.

What training does at its end (``Trainer._finish``), for a model file made without it:

    python scripts/calibrate_model.py --config configs/default.toml --model runs/default/best.pt \\
        --out runs/default/model.pt data.root=/data/mir1k data.ssvd=... data.instrumental=...

With ``--average STATE...`` the model's weights are first replaced by the mean of those training
states' weights (:mod:`vocalfront.training.averaging`; e.g. every 250th state of the last third
of a run, or the best states of several fine-tunes from one start: a "model soup"), and the
record says which updates were averaged and gives the average's own validation metrics
(``valid``, at the run's median filter and its best threshold there).

``--hysteresis`` also tries a lower threshold with a peak threshold (:mod:`vocalfront.calibration`,
step 3), which training does not.

The validation set is the run's (:func:`vocalfront.training.validation.heldout_set`, split
``valid``, seed ``train.seed``); the settings come from
:func:`vocalfront.training.validation.calibrate_clips` (median filter, threshold, shortest gap
and segment minimising the final frame error there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vocalfront.calibration import PEAK_THRESHOLDS
from vocalfront.detector_file import load_detector_file, save_detector
from vocalfront.errors import VocalfrontError
from vocalfront.training import load_config, resolve_config, separate_overrides
from vocalfront.training.averaging import average_run_states
from vocalfront.training.validation import calibrate_clips, heldout_set, predict_clips, score_clips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the run's configuration (TOML)")
    parser.add_argument("--model", type=Path, required=True, help="detector file to calibrate")
    parser.add_argument("--out", type=Path, required=True, help="calibrated copy to write")
    parser.add_argument("--average", type=Path, nargs="+", metavar="STATE",
                        help="training states (runs of the model's network) whose mean weights replace it")
    parser.add_argument("--hysteresis", action="store_true",
                        help="also try a lower threshold with a peak threshold (off in training: "
                        "its validation gain did not carry over for the 0.11 model)")
    parser.add_argument("overrides", nargs="*", help="section.key=value settings")
    args = parser.parse_args(argv)
    if args.average:
        args.average, misplaced = separate_overrides(args.average)
        args.overrides = [*args.overrides, *misplaced]
    try:
        if args.out.resolve() == args.model.resolve():
            raise VocalfrontError(f"{args.out}: give another file than --model (it is kept as it is)")
        config = resolve_config(load_config(args.config, args.overrides))
        model = load_detector_file(args.model)
        detector, extra = model.detector, dict(model.record)
        if args.average:
            weights, updates = average_run_states(args.average)
            detector.load_state_dict(weights)
            extra.update(update=max(updates), averaged_updates=updates)
        clips, problems = heldout_set(config, "valid", detector.grid, progress=sys.stderr.isatty())
    except VocalfrontError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    probabilities = predict_clips(detector.eval(), clips)  # once, for both records below
    record = calibrate_clips(probabilities, clips, config.eval.median_filter, detector.grid,
                             PEAK_THRESHOLDS if args.hysteresis else ())
    if args.average:
        record["valid"] = score_clips(probabilities, clips, config.eval.median_filter,
                                      grid=detector.grid)
    save_detector(args.out, detector, {**extra, **record})
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
