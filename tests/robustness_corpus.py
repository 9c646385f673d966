"""The corpus of hostile audio inputs used by the robustness tests, generated on demand.

Nothing here is committed as a binary: :func:`write_corpus` writes every case into a folder
(a test's ``tmp_path``) from a few seconds of synthetic signal. Each :class:`Case` says what
``vocalfront.detect`` must do with its file:

- ``RESULT``: give a detection. When the case knows the signal the file holds (``reference``,
  mono samples at ``rate`` Hz), the detection must match the one of that array within ``atol``
  (per-frame probabilities); otherwise it must have ``samples`` samples (at the model rate).
- ``ERROR``: raise a one-line :class:`~vocalfront.errors.VocalfrontError` naming the file and
  matching ``problem``.
- ``EITHER``: damaged compressed data, which a decoder may partly recover or refuse: a detection
  no longer than the intact file, or a one-line error naming the file.

Cases that are no regular file (a pipe, a folder, a dangling link, a missing path) have
``regular=False``: folder scans skip them, so batch tests leave them out, and the CLI refuses them
before it starts, with an error matching ``cli_problem``.
"""

from __future__ import annotations

import enum
import io
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np
import soundfile as sf

from vocalfront.grid import DEFAULT_GRID

SR = DEFAULT_GRID.sample_rate
SECONDS = 2.0
"""Length of the corpus signals (s): 137 frames at 22050 Hz, cheap to detect."""
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
           "mp3": ("MP3", "MPEG_LAYER_III")}
"""File extension -> (soundfile format, subtype) of the intact file of each container."""
NOT_READABLE = "not a readable audio file"
DAMAGED = f"{NOT_READABLE}|contains no samples|too short"
"""What the error for a damaged file may say (``EITHER`` cases): undecodable, or nothing left."""


class Outcome(enum.Enum):
    RESULT = "result"
    ERROR = "error"
    EITHER = "result or error"


def reference_signal(seconds: float = SECONDS, rate: int = SR, seed: int = 0) -> np.ndarray:
    """Noise with a 440 Hz tone switching on and off every 0.5 s, float64 ``(samples,)`` in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    return 0.05 * rng.standard_normal(len(t)) + 0.4 * ((t // 0.5) % 2) * np.sin(2 * np.pi * 440 * t)


@dataclass(frozen=True)
class Case:
    """One hostile input: how to write it and what detection must do with it (module docstring)."""

    name: str
    write: Callable[[Path], None]
    outcome: Outcome
    problem: str = ""
    reference: Callable[[], np.ndarray] | None = None
    rate: int = SR
    atol: float = 1e-4
    samples: int | None = None
    regular: bool = True
    cli_problem: str = ""


def _soundfile(data: np.ndarray | Callable[[], np.ndarray], rate: int = SR, fmt: str = "WAV",
               subtype: str = "PCM_16") -> Callable[[Path], None]:
    def write(path: Path) -> None:
        sf.write(path, data() if callable(data) else data, rate, format=fmt, subtype=subtype)
    return write


def _bytes(make: Callable[[], bytes]) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(make())


@cache
def _intact_bytes(extension: str) -> bytes:
    """The bytes of the intact corpus file of one container."""
    buffer = io.BytesIO()
    fmt, subtype = FORMATS[extension]
    sf.write(buffer, reference_signal(), SR, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _flipped(data: bytes, seed: int = 0, count: int = 200) -> bytes:
    """``data`` with ``count`` bytes inverted, all after the first quarter (headers stay intact)."""
    damaged = bytearray(data)
    for index in np.random.default_rng(seed).integers(len(data) // 4, len(data), count):
        damaged[index] ^= 0xFF
    return bytes(damaged)


def wav_header(rate: int, channels: int = 1, bits: int = 16, data_bytes: int = 0,
               codec: int = 1) -> bytes:
    """A canonical 44-byte RIFF/WAVE header; fields may lie about the data that follows."""
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", (36 + data_bytes) & 0xFFFFFFFF) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, codec, channels, rate, (rate * block) & 0xFFFFFFFF,
                          block, bits)
            + b"data" + struct.pack("<I", data_bytes & 0xFFFFFFFF))


def _pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _container_cases(extension: str) -> list[Case]:
    """Intact, empty, text, random, header-only, truncated and bit-flipped files of one container."""
    intact = partial(_intact_bytes, extension)
    lossless = extension in ("wav", "flac")
    cases = [
        Case(f"{extension}-intact.{extension}", _bytes(intact), Outcome.RESULT,
             reference=reference_signal if lossless else None, atol=2e-3,
             samples=None if lossless else round(SECONDS * SR)),
        Case(f"{extension}-empty.{extension}", _bytes(lambda: b""), Outcome.ERROR,
             r"empty file \(0 bytes\)"),
        Case(f"{extension}-text.{extension}", _bytes(lambda: b"this is not audio\n" * 200),
             Outcome.ERROR, NOT_READABLE),
        Case(f"{extension}-random-bytes.{extension}",
             _bytes(lambda: np.random.default_rng(1).bytes(6000)), Outcome.ERROR, NOT_READABLE),
        Case(f"{extension}-header-only.{extension}", _bytes(lambda: intact()[:44]), Outcome.ERROR, DAMAGED),
    ]
    if extension == "wav":
        # a cut WAV is a shorter WAV: the samples before the cut, exactly
        half = len(intact()) // 2
        kept = (half - 44) // 2
        cases += [
            Case("wav-truncated.wav", _bytes(lambda: intact()[:half]), Outcome.RESULT,
                 reference=lambda: reference_signal()[:kept], atol=2e-3),
            Case("wav-corrupt.wav", _bytes(lambda: _flipped(intact())), Outcome.RESULT,
                 samples=round(SECONDS * SR)),
        ]
    else:
        cases += [
            Case(f"{extension}-truncated.{extension}", _bytes(lambda: intact()[: len(intact()) // 2]),
                 Outcome.EITHER, DAMAGED),
            Case(f"{extension}-corrupt.{extension}", _bytes(lambda: _flipped(intact())),
                 Outcome.EITHER, DAMAGED),
        ]
    return cases


def _with_sample(value: float, subtype: str = "FLOAT") -> Callable[[Path], None]:
    def data() -> np.ndarray:
        samples = reference_signal()
        samples[SR // 2] = value
        return samples
    return _soundfile(data, subtype=subtype)


def _scaled(gain: float) -> Callable[[], np.ndarray]:
    return lambda: gain * reference_signal()


def _six_channels() -> np.ndarray:
    gains = np.array([1.0, 0.5, -0.25, 0.8, 0.0, 1.2])
    return reference_signal()[:, None] * gains[None, :]


def _special_cases() -> list[Case]:
    n = round(SECONDS * SR)
    return [
        Case("nan-sample.wav", _with_sample(np.nan), Outcome.ERROR, "contains NaN or Inf samples"),
        Case("inf-sample.wav", _with_sample(np.inf), Outcome.ERROR, "contains NaN or Inf samples"),
        Case("huge-float-samples.wav", _soundfile(_scaled(1e30), subtype="FLOAT"), Outcome.ERROR,
             "features are not finite"),
        Case("dc-offset.wav", _soundfile(lambda: 0.1 * reference_signal() + 0.8), Outcome.RESULT,
             reference=lambda: 0.1 * reference_signal() + 0.8, atol=2e-3),
        Case("full-scale-clipping.wav", _soundfile(lambda: np.clip(10 * reference_signal(), -1, 1)),
             Outcome.RESULT, reference=lambda: np.clip(10 * reference_signal(), -1, 1), atol=2e-3),
        Case("float-beyond-full-scale.wav", _soundfile(_scaled(10.0), subtype="FLOAT"),
             Outcome.RESULT, reference=_scaled(10.0)),
        Case("single-sample.wav", _soundfile(np.array([0.5])), Outcome.ERROR,
             "too short: 1 samples"),
        Case("one-sample-short-of-a-frame.wav", _soundfile(lambda: reference_signal()[:1023]),
             Outcome.ERROR, "too short: 1023 samples"),
        Case("exactly-one-frame.wav", _soundfile(lambda: reference_signal()[:1024], subtype="FLOAT"),
             Outcome.RESULT, reference=lambda: reference_signal()[:1024]),
        Case("silence.wav", _soundfile(np.zeros(n)), Outcome.RESULT, reference=lambda: np.zeros(n)),
        Case("subnormal-samples.wav", _soundfile(_scaled(1e-40), subtype="FLOAT"), Outcome.RESULT,
             samples=n),
        Case("pcm-8bit.wav", _soundfile(reference_signal, subtype="PCM_U8"), Outcome.RESULT,
             reference=reference_signal, atol=0.05),
        Case("pcm-24bit.wav", _soundfile(reference_signal, subtype="PCM_24"), Outcome.RESULT,
             reference=reference_signal),
        Case("float64.wav", _soundfile(reference_signal, subtype="DOUBLE"), Outcome.RESULT,
             reference=reference_signal),
        Case("six-channels.wav", _soundfile(_six_channels, subtype="FLOAT"), Outcome.RESULT,
             reference=lambda: _six_channels().mean(axis=1)),
        Case("rate-8000.wav", _soundfile(lambda: reference_signal(rate=8000), 8000, subtype="FLOAT"),
             Outcome.RESULT, reference=lambda: reference_signal(rate=8000), rate=8000),
        Case("rate-96000.wav", _soundfile(lambda: reference_signal(rate=96000), 96000, subtype="FLOAT"),
             Outcome.RESULT, reference=lambda: reference_signal(rate=96000), rate=96000),
        Case("header-rate-1hz.wav", _bytes(lambda: wav_header(1, data_bytes=8000) + bytes(8000)),
             Outcome.ERROR, "sample rate 1 Hz is below"),
        Case("header-rate-2ghz.wav", _bytes(lambda: wav_header(2_000_000_000, data_bytes=8000) + bytes(8000)),
             Outcome.ERROR, "sample rate 2000000000 Hz is above 768000 Hz"),
        Case("header-rate-0hz.wav", _bytes(lambda: wav_header(0, data_bytes=8000) + bytes(8000)),
             Outcome.ERROR, NOT_READABLE),
        Case("header-zero-channels.wav",
             _bytes(lambda: wav_header(SR, channels=0, data_bytes=8000) + bytes(8000)),
             Outcome.ERROR, NOT_READABLE),
        Case("header-unknown-codec.wav",
             _bytes(lambda: wav_header(SR, codec=99, data_bytes=8000) + bytes(8000)),
             Outcome.ERROR, NOT_READABLE),
        Case("header-data-beyond-file.wav",
             _bytes(lambda: wav_header(SR, data_bytes=0xFFFFFF00) + _pcm16(reference_signal())),
             Outcome.RESULT, reference=reference_signal, atol=2e-3),
        Case("latin1-name-caf\udce9.wav", lambda path: path.write_bytes(_intact_bytes("wav")),
             Outcome.ERROR, "file name is not valid UTF-8"),
        Case("named-pipe.wav", lambda path: os.mkfifo(path), Outcome.ERROR, "not a file",
             regular=False, cli_problem="not a regular file or folder"),
        Case("folder.wav", lambda path: path.mkdir(), Outcome.ERROR, "not a file", regular=False,
             cli_problem="no audio files found"),
        Case("dangling-link.wav", lambda path: path.symlink_to(path.with_name("nowhere.wav")),
             Outcome.ERROR, "file not found", regular=False, cli_problem="no such file or folder"),
        Case("missing.wav", lambda path: None, Outcome.ERROR, "file not found", regular=False,
             cli_problem="no such file or folder"),
    ]


CASES: tuple[Case, ...] = (
    *(case for extension in FORMATS for case in _container_cases(extension)),
    *_special_cases(),
)
"""Every case, with unique file names and unique stems (one output file per input)."""


def write_corpus(folder: Path, cases: tuple[Case, ...] = CASES) -> dict[str, Path]:
    """Write ``cases`` into ``folder`` (created): case name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in cases:
        paths[case.name] = folder / case.name
        case.write(paths[case.name])
    return paths


def write_silent_wav(path: Path, seconds: float, rate: int = 8000) -> None:
    """A 16-bit mono WAV of ``seconds`` of silence, written as a sparse file (no data written):
    a 3-hour file at 8 kHz is 173 MB long but takes no time and no disk space to create."""
    data_bytes = 2 * round(seconds * rate)
    with path.open("wb") as handle:
        handle.write(wav_header(rate, data_bytes=data_bytes))
        handle.truncate(44 + data_bytes)


TRUST_CASES: dict[int, str] = {
    1: "training never writes into a folder that is not a run, or holds another run",
    2: "two trainings in one run folder: the second stops before touching it (folder lock)",
    3: "an empty path argument (PATH, --out, --model) is refused, not taken as the current folder",
    4: "model files checked whole at load: devices, pipes, size, payload, stored config ranges, "
       "finite weights",
    5: "training settings bounded, each range named in its error; config files checked before "
       "they are read whole",
    6: "front-end API: empty batch, half precision, parameter types and ranges, one-frame norm",
    7: "detect() on arrays: numpy scalars, sample rates, low precision, smoothing length",
    8: "CLI options checked before any file is processed, each with its allowed range",
    9: "SIGTERM during detection leaves no temporary files (handled like SIGINT)",
    10: "unreadable folders are reported, not skipped silently",
    11: "a 2-hour 44.1 kHz stereo file is decoded blockwise: peak memory at most 1.5 GB",
    12: "detect never replaces a file it did not write (a ground-truth label file beside the song)",
}
"""Cases of issue 18 (number -> what must hold); ``tests/test_robustness_trust.py`` checks each
(a test records its case as the ``trust_case`` property) and the reliability report counts them."""
