"""Front-end speed: ``fb`` against ``mel`` (and a plain torch.stft + mel matrix reference).

(a) 10 minutes of audio, forward (inference mode); (b) a training batch of 32 excerpts of
1.64 s (36225 samples), forward + backward to the input (and to the parameters of learnable
front-ends). Prints a markdown table and writes JSON. Run: ``python -m benchmarks.frontends``.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from vocalfront.frontends import build_frontend
from vocalfront.frontends.mel import mel_weights

from .timing import median_seconds

LONG_SECONDS = 600
BATCH, EXCERPT = 32, 36225


def stft_reference(waveform: torch.Tensor, weights: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Plain torch.stft, power, 80 x 513 mel matrix: the reference every ratio is taken against."""
    spec = torch.stft(waveform, 1024, 315, window=window, center=False, return_complex=True)
    return weights @ spec.abs().square()


def measure(names: list[str], repeats: int, seconds: int) -> dict:
    torch.manual_seed(0)
    weights = mel_weights("schlueter", 80, 1024, 22050).float()
    window = torch.hann_window(1024)
    fronts = {name: build_frontend(name) for name in names}
    long_audio = torch.randn(1, 22050 * seconds) * 0.1

    def forward(f):
        def run():
            with torch.inference_mode():
                f(long_audio)
        return run

    long_fns = {"torch.stft reference": forward(lambda x: stft_reference(x, weights, window))}
    long_fns.update({name: forward(f) for name, f in fronts.items()})
    long_times = median_seconds(long_fns, repeats)

    batch = torch.randn(BATCH, EXCERPT) * 0.1

    def train_step(f):
        def run():
            x = batch.clone().requires_grad_()
            f(x).sum().backward()
        return run

    batch_fns = {"torch.stft reference": train_step(lambda x: stft_reference(x, weights, window))}
    batch_fns.update({name: train_step(f) for name, f in fronts.items()})
    batch_times = median_seconds(batch_fns, repeats)
    return {"long_seconds": seconds, "long": long_times, "batch": batch_times,
            "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine()}


def table(result: dict) -> str:
    ref_long = result["long"]["torch.stft reference"]
    ref_batch = result["batch"]["torch.stft reference"]
    mel_long, mel_batch = result["long"].get("mel"), result["batch"].get("mel")
    lines = [f"| front-end | {result['long_seconds']} s forward: s | real time × | ratio to stft ref |"
             " ratio to mel | batch fwd+bwd: s | ratio to stft ref | ratio to mel |",
             "|---|---|---|---|---|---|---|---|"]
    for name in result["long"]:
        long, batch = result["long"][name], result["batch"][name]
        lines.append(
            f"| {name} | {long:.3f} | {result['long_seconds'] / long:.0f} | {long / ref_long:.2f} | "
            f"{long / mel_long:.2f} | {batch:.3f} | {batch / ref_batch:.2f} | {batch / mel_batch:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frontends", nargs="+", default=["mel", "fb", "fb-noavg"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=LONG_SECONDS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = measure(args.frontends, args.repeats, args.seconds)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
