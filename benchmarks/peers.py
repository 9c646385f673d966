"""Front-ends against the peers users would otherwise pick, timed side by side in one process.

Extraction: ``seconds`` of audio (default 600), forward, inference mode; training batch: 32
excerpts of 1.64 s (36225 samples), forward + backward (to the input and to any trainable
parameters). Ratios are to a plain ``torch.stft`` + power + 80×513 mel-matrix reference measured
in the same run (interleaved, warmed up, median of ``repeats``).

Peers: librosa (extraction only), nnAudio ``MelSpectrogram`` (trainable mel for the batch) and
SpeechBrain ``Leaf`` (80 filters, hop 315). SpeechBrain imports torchaudio, which does not load
beside torch 2.13; its ``Leaf`` itself is pure torch and needs torchaudio only for
``melscale_fbanks`` at construction, so a stand-in module providing that one function (HTK
triangles from :mod:`vocalfront.melscale`, identical to torchaudio's) is installed before the
import. Leaf's extraction is timed on ``leaf_seconds`` and scaled (its full-rate convolutions make
10 minutes at once need tens of GB). A peer that cannot be imported is reported with its error.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vocalfront.frontends import build_frontend
from vocalfront.frontends.mel import mel_weights
from vocalfront.melscale import mel_band_edges, triangular_filterbank

from .timing import median_seconds

SAMPLE_RATE, HOP, WINDOW, BANDS = 22050, 315, 1024, 80
PEERS_DIR = Path(os.environ.get("VOCALFRONT_PEERS", Path(__file__).resolve().parents[1] / ".bench-peers"))
"""Where ``scripts/install_benchmark_peers.sh`` puts SpeechBrain (installed without its deps)."""
BATCH, EXCERPT = 32, 36225


class StftReference(torch.nn.Module):
    """Plain torch.stft, power, 80 × 513 mel matrix (optionally trainable)."""

    def __init__(self, trainable: bool = False):
        super().__init__()
        weights = mel_weights("schlueter", BANDS, WINDOW, SAMPLE_RATE).float()
        self.weights = torch.nn.Parameter(weights, requires_grad=trainable)
        self.register_buffer("window", torch.hann_window(WINDOW))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, WINDOW, HOP, window=self.window, center=False, return_complex=True)
        return self.weights @ (spec.real.square() + spec.imag.square())


def _torchaudio_stand_in() -> None:
    """Provide ``torchaudio.functional.melscale_fbanks`` (all SpeechBrain's Leaf needs of it)."""
    if "torchaudio" in sys.modules:
        return

    def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
                        norm: str | None = None, mel_scale: str = "htk") -> torch.Tensor:
        edges = mel_band_edges(n_mels, f_min, f_max, mel_scale)  # type: ignore[arg-type]
        weights = triangular_filterbank(edges, 2 * (n_freqs - 1), sample_rate,
                                        "slaney" if norm == "slaney" else "none")
        return torch.from_numpy(weights.T).float()

    stand_in = types.ModuleType("torchaudio")
    stand_in.functional = types.SimpleNamespace(melscale_fbanks=melscale_fbanks)  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = stand_in


def build_peers(samples: int) -> tuple[dict[str, torch.nn.Module], dict[str, str]]:
    """Importable peers as modules, and the error of each one that is not."""
    peers: dict[str, torch.nn.Module] = {}
    missing: dict[str, str] = {}
    try:
        from nnAudio.features import MelSpectrogram

        peers["nnAudio MelSpectrogram"] = MelSpectrogram(
            sr=SAMPLE_RATE, n_fft=WINDOW, hop_length=HOP, n_mels=BANDS, fmin=27.5, fmax=8000,
            center=False, trainable_mel=True, verbose=False)
    except Exception as error:
        missing["nnAudio MelSpectrogram"] = f"{type(error).__name__}: {error}"
    if PEERS_DIR.is_dir() and str(PEERS_DIR) not in sys.path:
        sys.path.append(str(PEERS_DIR))
    try:
        _torchaudio_stand_in()
        from speechbrain.lobes.features import Leaf

        peers["SpeechBrain Leaf"] = Leaf(out_channels=BANDS, sample_rate=SAMPLE_RATE,
                                         window_len=25.0, window_stride=1000 * HOP / SAMPLE_RATE,
                                         input_shape=(None, samples))
    except Exception as error:
        missing["SpeechBrain Leaf"] = f"{type(error).__name__}: {error}"
    return peers, missing


def _librosa_forward(audio: np.ndarray) -> Callable[[], object]:
    import librosa

    def run() -> object:
        return librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, n_fft=WINDOW, hop_length=HOP,
                                              center=False, n_mels=BANDS, htk=True, norm=None,
                                              fmin=27.5, fmax=8000)
    return run


def _forward(module: torch.nn.Module, audio: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return module(audio)
    return run


def _train_step(module: torch.nn.Module, batch: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        x = batch.clone().requires_grad_()
        module.zero_grad(set_to_none=True)
        module(x).sum().backward()
    return run


def extraction(seconds: int, leaf_seconds: int, repeats: int) -> dict:
    """Forward times (s) for ``seconds`` of audio; Leaf is timed on ``leaf_seconds`` and scaled."""
    torch.manual_seed(0)
    audio = torch.randn(1, SAMPLE_RATE * seconds) * 0.1
    ours = {name: build_frontend(name) for name in ("mel", "fb", "fb-noavg")}
    functions: dict[str, Callable[[], object]] = {"torch.stft reference": _forward(StftReference(), audio)}
    functions.update({name: _forward(module, audio) for name, module in ours.items()})
    errors: dict[str, str] = {}
    try:
        functions["librosa melspectrogram"] = _librosa_forward(audio[0].numpy())
    except ImportError as error:
        errors["librosa melspectrogram"] = str(error)
    peers, missing = build_peers(SAMPLE_RATE * leaf_seconds)
    errors.update(missing)
    if "nnAudio MelSpectrogram" in peers:
        functions["nnAudio MelSpectrogram"] = _forward(peers["nnAudio MelSpectrogram"], audio)
    times = median_seconds(functions, repeats)
    if "SpeechBrain Leaf" in peers:
        short = audio[:, : SAMPLE_RATE * leaf_seconds]
        leaf = median_seconds({"leaf": _forward(peers["SpeechBrain Leaf"], short)}, max(1, repeats // 2))
        times[f"SpeechBrain Leaf (timed on {leaf_seconds} s, scaled)"] = leaf["leaf"] * seconds / leaf_seconds
    return {"seconds": seconds, "times": times, "unavailable": errors}


def training_batch(repeats: int) -> dict:
    """Forward + backward times (s) of one 32 × 1.64 s batch."""
    torch.manual_seed(0)
    batch = torch.randn(BATCH, EXCERPT) * 0.1
    sizes = build_frontend("fb").averaging_sizes().tolist()
    modules: dict[str, torch.nn.Module] = {
        "torch.stft reference (trainable mel matrix)": StftReference(trainable=True),
        "mel": build_frontend("mel"),
        "fb": build_frontend("fb", averaging_sizes=sizes),
    }
    for name in ("fb-learn-cf", "fb-learn-avg", "fb-learn-bw", "fb-free"):
        modules[name] = build_frontend(name, averaging_sizes=sizes)
    modules["fb, all learnable"] = build_frontend("fb", averaging_sizes=sizes,
                                                  learn=("cf", "bw", "avg", "free"))
    peers, missing = build_peers(EXCERPT)
    if "nnAudio MelSpectrogram" in peers:
        modules["nnAudio MelSpectrogram (trainable mel)"] = peers["nnAudio MelSpectrogram"]
    functions = {name: _train_step(module, batch) for name, module in modules.items()}
    times = median_seconds(functions, repeats)
    if "SpeechBrain Leaf" in peers:
        leaf = median_seconds({"leaf": _train_step(peers["SpeechBrain Leaf"], batch)}, max(1, repeats // 2))
        times["SpeechBrain Leaf"] = leaf["leaf"]
    return {"times": times, "unavailable": missing}
