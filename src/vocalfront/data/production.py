"""Production-like processing of a voice stem before it is mixed: pitch shift, compression, reverb.

Vocals on records are rarely dry: they are compressed, drenched in plate or room reverb, and
sung in other keys than the training singers sing in. Applied to the voice stem only (the music
keeps its own production), in this order, each with its own probability (0 switches it off):

1. **Pitch shift** by ``s`` semitones drawn uniformly in ``pitch_semitones_range``, tempo kept;
   with ``pitch_keep_formants`` the formants stay too (pedalboard's ``time_stretch``, Rubber
   Band, ``preserve_formants``): the same vocal tract singing in another register, not a larger
   or smaller singer; without it they move with the pitch (pedalboard's ``PitchShift``, how
   models up to 0.9.0 were trained). The labels do not change. The training voices sing high
   (SSVD's sight-singers above all, by their note labels), while a low male voice sits in the
   accompaniment's register and is missed (MIR-1K's lowest singer; docs/data.md); a range
   reaching further down than up gives the detector low voices in mixtures. (Speed changes,
   :mod:`.augment`, shift the whole mixture, voice and music together.)
2. **Compression**: pedalboard's ``Compressor`` with a threshold drawn in
   ``compress_threshold_db_range`` below the voice's peak and a ratio in
   ``compress_ratio_range`` (attack 5 ms, release 100 ms), then the voice's RMS restored.
3. **Reverb**: the voice convolved with an impulse response - a plate (one of the
   :class:`ImpulseResponses` given, e.g. ``shared/data/ir/emt140_plate``) with probability
   ``plate_share``, else a shoebox room simulated by pyroomacoustics (image source method,
   random size, RT60 in ``rt60_range``, random source and microphone) - added to the dry voice
   at a wet level drawn in ``wet_db_range`` (dB of the wet signal's RMS relative to the dry
   voice's). The reverb tail beyond a sung phrase stays labelled as not singing, as lyric-timed
   labels of real songs have it.

The voice-to-music level spread is the remix gain (:mod:`.remix`). Everything random comes from
the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pedalboard
import pyroomacoustics
import scipy.signal

from ..audio import audio_files, load_audio
from ..errors import AudioError, VocalfrontError
from ..grid import SAMPLE_RATE
from .remix import rms

MAX_IR_SECONDS = 4.0
"""Impulse responses are cut to this length (the plates' longest decay is about 4 s)."""
SILENT_PEAK = 1e-6
"""Peak (-120 dBFS) below which a voice stem counts as silence and is left alone: pedalboard's
compressor turns a voice of peak 4e-19 (a silent stretch after resampling) into NaN."""


@dataclass(frozen=True)
class VoiceEffectsConfig:
    """Probabilities and ranges of :func:`process_voice` (see the module docstring)."""

    pitch_probability: float = 0.0
    pitch_semitones_range: tuple[float, float] = (-2.0, 2.0)
    pitch_keep_formants: bool = True
    compress_probability: float = 0.0
    compress_threshold_db_range: tuple[float, float] = (-30.0, -10.0)
    compress_ratio_range: tuple[float, float] = (2.0, 8.0)
    reverb_probability: float = 0.0
    plate_share: float = 0.5
    wet_db_range: tuple[float, float] = (-15.0, -3.0)
    rt60_range: tuple[float, float] = (0.2, 0.8)

    def __post_init__(self) -> None:
        for name in ("pitch_probability", "compress_probability", "reverb_probability", "plate_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise VocalfrontError(f"voice effects {name} must lie in [0, 1]")
        for name, low_bound, high_bound in (("pitch_semitones_range", -12.0, 12.0),
                                            ("compress_threshold_db_range", -60.0, 0.0),
                                            ("compress_ratio_range", 1.0, 100.0),
                                            ("wet_db_range", -60.0, 20.0),
                                            ("rt60_range", 0.05, 3.0)):
            low, high = getattr(self, name)
            if not low_bound <= low <= high <= high_bound:
                raise VocalfrontError(f"voice effects {name} must be (low, high) with "
                                      f"{low_bound:g} <= low <= high <= {high_bound:g}")

    @property
    def enabled(self) -> bool:
        """Whether any effect can happen."""
        return max(self.pitch_probability, self.compress_probability, self.reverb_probability) > 0


class ImpulseResponses:
    """Impulse responses loaded once from a folder of audio files (searched recursively), mono at
    ``sample_rate`` Hz, cut to :data:`MAX_IR_SECONDS` and scaled to unit energy."""

    def __init__(self, folder: str | Path, sample_rate: int = SAMPLE_RATE):
        folder = Path(folder)
        if not folder.is_dir():
            raise AudioError(folder, "impulse response folder not found")
        paths = audio_files(folder)
        if not paths:
            raise AudioError(folder, "no impulse responses (audio files) found")
        keep = round(MAX_IR_SECONDS * sample_rate)
        responses = [load_audio(path, sample_rate)[:keep] for path in paths]
        self.names = tuple(path.name for path in paths)
        self.responses = tuple(_unit_energy(response, path) for response, path in
                               zip(responses, paths, strict=True))

    def __len__(self) -> int:
        return len(self.responses)


def _unit_energy(response: np.ndarray, path: Path) -> np.ndarray:
    energy = float(np.sum(np.square(response, dtype=np.float64)))
    if not np.isfinite(energy) or energy <= 0:
        raise AudioError(path, "impulse response is silent or not finite")
    return (response / np.sqrt(energy)).astype(np.float32)


def room_impulse_response(rng: np.random.Generator, rt60_range: tuple[float, float],
                          sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A simulated shoebox room's impulse response (pyroomacoustics, image sources), unit energy:
    room 3-12 × 3-10 × 2.4-4 m, RT60 uniform in ``rt60_range`` seconds, source and microphone
    at random places at least 0.5 m from the walls."""
    size = rng.uniform([3.0, 3.0, 2.4], [12.0, 10.0, 4.0])
    rt60 = float(rng.uniform(*rt60_range))
    try:
        absorption, max_order = pyroomacoustics.inverse_sabine(rt60, size)
    except ValueError:  # RT60 too long for a room this small: as reverberant as it gets
        absorption, max_order = 0.02, 30
    room = pyroomacoustics.ShoeBox(size, fs=sample_rate, materials=pyroomacoustics.Material(absorption),
                                   max_order=min(int(max_order), 30))
    room.add_source(rng.uniform(0.5, size - 0.5))
    room.add_microphone(rng.uniform(0.5, size - 0.5))
    room.compute_rir()
    response = np.asarray(room.rir[0][0], dtype=np.float32)[: round(MAX_IR_SECONDS * sample_rate)]
    return _unit_energy(response, Path("<simulated room>"))


def process_voice(voice: np.ndarray, rng: np.random.Generator, config: VoiceEffectsConfig,
                  plates: ImpulseResponses | Sequence[np.ndarray] | None = None,
                  sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The voice stem ``(samples,)`` with the effects of the module docstring, float32, same
    length. ``plates``: impulse responses for plate reverb (without any, every reverb is a room).
    A silent voice - peak below :data:`SILENT_PEAK` - is returned unchanged."""
    voice = np.asarray(voice, dtype=np.float32)
    if float(np.max(np.abs(voice), initial=0.0)) < SILENT_PEAK:
        return voice.copy()
    level = rms(voice)
    if rng.random() < config.pitch_probability:
        semitones = float(rng.uniform(*config.pitch_semitones_range))
        if config.pitch_keep_formants:
            shifted = pedalboard.time_stretch(voice, sample_rate, pitch_shift_in_semitones=semitones,
                                              preserve_formants=True)
        else:
            shifted = pedalboard.PitchShift(semitones=semitones)(voice, sample_rate)
        voice = _fit(shifted, len(voice))
    if rng.random() < config.compress_probability:
        peak_db = 20 * np.log10(float(np.max(np.abs(voice))) + 1e-12)
        compressor = pedalboard.Compressor(
            threshold_db=peak_db + float(rng.uniform(*config.compress_threshold_db_range)),
            ratio=float(rng.uniform(*config.compress_ratio_range)), attack_ms=5.0, release_ms=100.0)
        voice = compressor(voice, sample_rate)
        voice = voice * np.float32(level / max(rms(voice), 1e-12))
    if rng.random() < config.reverb_probability:
        responses = plates.responses if isinstance(plates, ImpulseResponses) else plates
        if responses and rng.random() < config.plate_share:
            response = responses[rng.integers(len(responses))]
        else:
            response = room_impulse_response(rng, config.rt60_range, sample_rate)
        wet = scipy.signal.oaconvolve(voice, response)[: len(voice)].astype(np.float32)
        wet_gain = 10 ** (float(rng.uniform(*config.wet_db_range)) / 20) * rms(voice) / max(rms(wet), 1e-12)
        voice = voice + np.float32(wet_gain) * wet
    return np.ascontiguousarray(voice, dtype=np.float32)


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """``audio`` cut or zero-padded to ``length`` samples."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    return audio[:length] if len(audio) >= length else np.pad(audio, (0, length - len(audio)))
