#!/usr/bin/env python3
"""Synthesise the packaged example clip: ~20 s of a sung melody over a small band, plus labels.

    python scripts/make_example_clip.py src/vocalfront/examples/example.flac

writes ``example.flac`` (22050 Hz, mono, 16-bit FLAC) and ``example.lab`` beside it (Jamendo
style ``start end sing|nosing``: where the voice sings). Everything is generated here from a
fixed seed, so the clip is ours to redistribute (MIT, like the project) and the same on every run.

The voice is a source-filter formant synthesiser: a Rosenberg glottal pulse train (computed at
4x the sample rate and decimated, so it does not alias) with period jitter, shimmer, a slow pitch
drift, vibrato (about 5.5 Hz, +-0.5 semitone, fading in on long notes), scoops into phrases,
overshooting glides between notes and a fall at phrase ends; breath noise pulsed by the glottal
flow; a cascade of five formant resonators moving between the vowels a/e/i/o/u of the syllables
(first formant raised to the pitch on high notes, as singers do); consonants as voiceless gaps
with fricative noise (s), plosive bursts with aspiration (t, k), or nasal/liquid murmurs
(m, n, l, r). The band is Karplus-Strong plucked arpeggios and bass, a soft pad and noise-based
drums; a synthetic room reverb goes over the mix. Tempo 96 BPM, 8 bars of 4/4 = 20 s:
instrumental intro (2 bars), sung phrase, instrumental bar, sung phrase with a breath, outro.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from vocalfront.segments import Segment, format_lab

SR = 22050
"""Sample rate of the clip in Hz."""
OVERSAMPLE = 4
"""The glottal source is computed at ``OVERSAMPLE * SR`` Hz."""
BEAT = 60 / 96
"""Seconds per beat (96 BPM)."""
BARS = 8
DURATION = BARS * 4 * BEAT
SEED = 20200214

# Soprano formants (Hz), bandwidths (Hz) for the vowels: standard textbook values.
VOWELS = {
    "a": ((800, 1150, 2900, 3900, 4950), (80, 90, 120, 130, 140)),
    "e": ((400, 1900, 2700, 3600, 4950), (60, 100, 120, 150, 200)),
    "i": ((300, 2200, 2950, 3900, 4950), (60, 90, 100, 120, 120)),
    "o": ((450, 800, 2830, 3800, 4950), (70, 80, 100, 130, 135)),
    "u": ((325, 700, 2700, 3800, 4950), (50, 60, 170, 180, 200)),
}
# Voiced consonant murmurs: formants, bandwidth factor, voicing level, seconds before the vowel.
MURMURS = {
    "m": ((250, 1100, 2500, 3600, 4950), 1.8, 0.45, 0.08),
    "n": ((250, 1700, 2600, 3600, 4950), 1.8, 0.45, 0.08),
    "l": ((360, 1050, 2900, 3800, 4950), 1.3, 0.7, 0.06),
    "r": ((450, 1300, 2100, 3500, 4950), 1.5, 0.35, 0.03),
}
# Voiceless consonants: noise band (Hz), noise seconds, closure seconds before the noise.
NOISES = {"s": ((4200, 9500), 0.10, 0.0), "t": ((2800, 8000), 0.035, 0.045),
          "k": ((1400, 4200), 0.045, 0.04)}

# Chords per bar (MIDI notes of the arpeggio, bass root).
CHORDS = [((45, 52, 57, 60, 64), 33), ((41, 48, 53, 57, 60), 29), ((48, 52, 55, 60, 64), 36),
          ((43, 50, 55, 59, 62), 31), ((45, 52, 57, 60, 64), 33), ((41, 48, 53, 57, 60), 29),
          ((43, 50, 55, 59, 62), 31), ((45, 52, 57, 60, 64), 33)]
ARPEGGIO = (0, 2, 3, 4, 3, 2, 1, 2)
"""Chord-note index of each eighth note of a bar."""


@dataclass(frozen=True)
class Note:
    """A sung syllable: vowel onset (beats from the start), length (beats), MIDI pitch, syllable."""

    beat: float
    beats: float
    pitch: float
    syllable: str

    @property
    def start(self) -> float:
        return self.beat * BEAT

    @property
    def end(self) -> float:
        return (self.beat + self.beats) * BEAT

    @property
    def consonant(self) -> str:
        return self.syllable[:-1]

    @property
    def vowel(self) -> str:
        return self.syllable[-1]

    @property
    def lead(self) -> float:
        """Seconds the consonant sounds before the vowel onset."""
        if self.consonant in MURMURS:
            return MURMURS[self.consonant][3]
        if self.consonant in NOISES:
            return NOISES[self.consonant][1] + NOISES[self.consonant][2]
        return 0.0


def _phrase(*notes: tuple[float, float, int, str]) -> list[Note]:
    return [Note(*note) for note in notes]


PHRASES = [
    _phrase((8.0, 1.0, 64, "sa"), (9.0, 0.5, 67, "no"), (9.5, 0.5, 69, "ri"), (10.0, 1.5, 67, "ma"),
            (11.5, 0.5, 64, "le"), (12.0, 1.0, 62, "to"), (13.0, 0.5, 64, "mi"),
            (13.5, 0.5, 62, "na"), (14.0, 1.75, 62, "lo")),
    _phrase((20.0, 0.5, 65, "ta"), (20.5, 0.5, 67, "li"), (21.0, 1.5, 69, "a"),
            (22.5, 0.5, 67, "ne"), (23.0, 0.75, 65, "si")),
    _phrase((24.0, 0.5, 67, "ko"), (24.5, 0.5, 71, "ra"), (25.0, 1.0, 69, "mo"),
            (26.0, 0.5, 67, "te"), (26.5, 2.5, 64, "u")),
]
"""The melody; the second and third phrases are one sung line with a breath between them."""
RELEASE = 0.12
"""Seconds over which the voice fades at the end of a phrase."""


def hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69) / 12)


def smooth(track: np.ndarray, seconds: float) -> np.ndarray:
    """Moving Hann-window average (edges held)."""
    width = max(3, int(seconds * SR) | 1)
    window = np.hanning(width)
    padded = np.pad(track, width // 2, mode="edge")
    return np.convolve(padded, window / window.sum(), mode="valid")


def lowpass_noise(rng: np.random.Generator, n: int, cutoff: float, rate: int = SR) -> np.ndarray:
    """Gaussian noise low-passed at ``cutoff`` Hz, scaled to unit standard deviation."""
    b, a = signal.butter(2, cutoff / (rate / 2))
    noise = signal.lfilter(b, a, rng.standard_normal(n + rate // 2))[rate // 2 :]
    return noise / noise.std()


def band_noise(rng: np.random.Generator, n: int, band: tuple[float, float]) -> np.ndarray:
    sos = signal.butter(2, [band[0] / (SR / 2), min(band[1] / (SR / 2), 0.99)], "bandpass", output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n))


# ----------------------------------------------------------------------------- the voice
def pitch_track(phrase: list[Note], t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """f0 in Hz at times ``t`` (seconds): scoop in, overshooting glides, vibrato, drift, fall."""
    target = np.full(len(t), phrase[0].pitch - 2.0)  # scoop into the first note
    depth = np.zeros(len(t))
    for note in phrase:
        inside = t >= note.start
        target[inside] = note.pitch
        held = (t >= note.start) & (t < note.end)
        depth[held] = 0.5 * np.clip((t[held] - note.start - 0.18) / 0.35, 0, 1)
    target[t >= phrase[-1].end - RELEASE] = phrase[-1].pitch - 0.8  # fall at the release
    # a damped second-order glide (~9 Hz, damping 0.55) overshoots a little like a singer
    b, a = signal.bilinear([(2 * np.pi * 9) ** 2], [1, 2 * 0.55 * 2 * np.pi * 9, (2 * np.pi * 9) ** 2], SR)
    glide = signal.lfilter(b, a, target - target[0]) + target[0]
    rate = 5.5 + 0.25 * lowpass_noise(rng, len(t), 0.5)
    vibrato = smooth(depth, 0.06) * np.sin(2 * np.pi * np.cumsum(rate) / SR + rng.uniform(0, 2 * np.pi))
    drift = 0.08 * lowpass_noise(rng, len(t), 1.5)
    jitter = 0.06 * lowpass_noise(rng, len(t), 150.0)  # ~0.35 % period jitter
    return hz(glide + vibrato + drift + jitter)


def glottal_source(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg pulses at ``f0`` (Hz per sample): derivative of the flow (the radiated source)
    and the flow itself (0..1), both at ``SR``; generated at 4x the rate and decimated."""
    rate = OVERSAMPLE * SR
    fine = np.interp(np.arange(len(f0) * OVERSAMPLE) / OVERSAMPLE, np.arange(len(f0)), f0)
    phase = np.cumsum(fine / rate) % 1.0
    rise, fall = 0.42, 0.16  # opening and closing phases as fractions of a period
    flow = np.where(phase < rise, 0.5 * (1 - np.cos(np.pi * phase / rise)),
                    np.where(phase < rise + fall, np.cos(0.5 * np.pi * (phase - rise) / fall), 0.0))
    derivative = np.diff(flow, prepend=0.0) * rate / 1000
    return (signal.resample_poly(derivative, 1, OVERSAMPLE), signal.resample_poly(flow, 1, OVERSAMPLE))


def articulation(phrase: list[Note], t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voicing level, formant tracks ``(5, samples)`` and bandwidth tracks of a phrase."""
    level = np.zeros(len(t))
    formants = np.empty((5, len(t)))
    bandwidths = np.empty((5, len(t)))
    for index, note in enumerate(phrase):
        stop = phrase[index + 1].start - phrase[index + 1].lead if index + 1 < len(phrase) else note.end
        vowel = (t >= note.start) & (t < stop)
        loudness = (hz(note.pitch) / 330.0) ** 0.6 * (1.12 if note.beat % 2 == 0 else 1.0)
        level[vowel] = loudness
        formants[:, vowel] = np.array(VOWELS[note.vowel][0])[:, None]
        bandwidths[:, vowel] = np.array(VOWELS[note.vowel][1])[:, None]
        span = (t >= note.start - note.lead) & (t < note.start)
        if note.consonant in MURMURS:
            shape, widen, voicing, _ = MURMURS[note.consonant]
            level[span] = voicing * loudness
            formants[:, span] = np.array(shape)[:, None]
            bandwidths[:, span] = widen * np.array(VOWELS[note.vowel][1])[:, None]
        else:
            formants[:, span] = np.array(VOWELS[note.vowel][0])[:, None]
            bandwidths[:, span] = np.array(VOWELS[note.vowel][1])[:, None]
    first, last = np.searchsorted(t, [phrase[0].start - phrase[0].lead, phrase[-1].end])
    for track in (formants, bandwidths):  # hold the first and last vowel outside the phrase
        track[:, :first] = track[:, first, None]
        track[:, last:] = track[:, last - 1, None]
    release = np.clip((phrase[-1].end - t) / RELEASE, 0, 1)
    return smooth(level, 0.025) * release, np.array([smooth(f, 0.05) for f in formants]), \
        np.array([smooth(b, 0.05) for b in bandwidths])


def formant_cascade(source: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray,
                    block: int = 32) -> np.ndarray:
    """Klatt-style cascade of unit-DC-gain resonators whose frequencies and bandwidths (Hz,
    ``(5, samples)``) are updated every ``block`` samples."""
    out = source.copy()
    states = np.zeros((len(formants), 2))
    for start in range(0, len(source), block):
        stop = min(start + block, len(source))
        centre = (start + stop) // 2
        for k in range(len(formants)):
            r = np.exp(-np.pi * bandwidths[k, centre] / SR)
            c1, c2 = 2 * r * np.cos(2 * np.pi * formants[k, centre] / SR), -r * r
            out[start:stop], states[k] = signal.lfilter([1 - c1 - c2], [1, -c1, -c2],
                                                        out[start:stop], zi=states[k])
    return out


def consonant_noise(phrase: list[Note], n: int, t0: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fricative/burst noise added after the tract, and aspiration level fed through it."""
    noise = np.zeros(n)
    aspiration = np.zeros(n)
    for note in phrase:
        if note.consonant not in NOISES:
            continue
        band, seconds, _ = NOISES[note.consonant]
        first = int((note.start - seconds - t0) * SR)
        length = int(seconds * SR)
        if note.consonant == "s":
            envelope = np.sin(np.linspace(0, np.pi, length)) ** 1.5
            noise[first : first + length] += 0.35 * envelope * band_noise(rng, length, band)
        else:
            burst = int(0.012 * SR)
            noise[first : first + burst] += 0.6 * np.exp(-np.arange(burst) / (0.003 * SR)) * \
                band_noise(rng, burst, band)
            aspiration[first + burst : first + length] = np.linspace(1.0, 0.3, length - burst)
    return noise, aspiration


def sing(phrase: list[Note], rng: np.random.Generator) -> tuple[int, np.ndarray, Segment]:
    """Synthesise one phrase: (first sample, samples, where it sings in seconds)."""
    t0 = phrase[0].start - phrase[0].lead - 0.05
    n = int((phrase[-1].end + 0.05 - t0) * SR)
    t = t0 + np.arange(n) / SR
    f0 = pitch_track(phrase, t, rng)
    level, formants, bandwidths = articulation(phrase, t)
    formants[0] = np.maximum(formants[0], 1.08 * f0)  # F1 tuned to f0 on high notes
    pulses, flow = glottal_source(f0)
    shimmer = 1 + 0.05 * lowpass_noise(rng, n, 120.0)
    tremolo = 1 + 0.5 * (f0 / smooth(f0, 0.25) - 1)  # amplitude follows the vibrato a little
    breath = rng.standard_normal(n) * (0.25 + flow)
    frication, aspiration = consonant_noise(phrase, n, t0, rng)
    drive = pulses * level * shimmer * tremolo + breath * (0.05 * level + 0.5 * aspiration)
    voice = formant_cascade(drive, formants, bandwidths)
    voice = voice / np.sqrt(np.mean(voice[level > 0.5] ** 2)) + 0.6 * frication
    onset = phrase[0].start - phrase[0].lead
    return round(t0 * SR), voice, Segment(round(onset, 3), round(phrase[-1].end, 3))


# ----------------------------------------------------------------------------- the band
def pluck(frequency: float, seconds: float, t60: float, brightness: float,
          rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong string: a noise burst in a feedback loop of the period, tuned exactly with
    a first-order all-pass; ``t60``: decay time (s); ``brightness`` in (0, 1]: pluck hardness."""
    period = SR / frequency
    delay = int(period - 0.6)
    fraction = period - 0.5 - delay  # all-pass delay in [0.1, 1.1)
    c = (1 - fraction) / (1 + fraction)
    g = 10 ** (-3 / (frequency * t60))
    a = np.zeros(delay + 3)
    a[0], a[1] = 1.0, c
    a[delay : delay + 3] -= 0.5 * g * np.array([c, 1 + c, 1.0])
    burst = signal.lfilter([brightness], [1, brightness - 1], rng.uniform(-1, 1, delay))
    excitation = np.zeros(int(seconds * SR))
    excitation[:delay] = burst - burst.mean()
    return fade_out(signal.lfilter([1.0, c], a, excitation))


def fade_out(sound: np.ndarray, seconds: float = 0.05) -> np.ndarray:
    """``sound`` with a linear fade over its last ``seconds`` (no click where it is cut)."""
    fade = min(len(sound), int(seconds * SR))
    sound[len(sound) - fade :] *= np.linspace(1, 0, fade)
    return sound


def add(mix: np.ndarray, sound: np.ndarray, at: float, gain: float) -> None:
    first = round(at * SR)
    if first >= len(mix):
        return
    piece = sound[: len(mix) - first]
    mix[first : first + len(piece)] += gain * piece


def guitar_and_bass(rng: np.random.Generator, n: int) -> np.ndarray:
    mix = np.zeros(n)
    for bar, (chord, root) in enumerate(CHORDS):
        for eighth, index in enumerate(ARPEGGIO):
            at = (bar * 4 + eighth / 2) * BEAT + rng.normal(0, 0.006)
            velocity = (1.0 if eighth % 2 == 0 else 0.75) * rng.uniform(0.85, 1.0)
            add(mix, pluck(hz(chord[index]), 2.2, 2.0, 0.3, rng), max(at, 0), 0.5 * velocity)
        for beat, interval in ((0, 0), (2, 7), (3.5, 12)):
            add(mix, pluck(hz(root + interval), 1.6 if beat < 3 else 0.7, 1.4, 0.2, rng),
                (bar * 4 + beat) * BEAT, 1.1)
    b, a = signal.butter(1, 4000 / (SR / 2))  # the body and pickup take the edge off
    return signal.lfilter(b, a, mix)


def pad(rng: np.random.Generator, n: int) -> np.ndarray:
    """Soft sustained chords: detuned band-limited sawtooths, low-passed, slow attack."""
    t = np.arange(n) / SR
    mix = np.zeros(n)
    bar_seconds = 4 * BEAT
    for bar, (chord, _) in enumerate(CHORDS):
        inside = (t >= bar * bar_seconds) & (t < (bar + 1) * bar_seconds + 0.3)
        local = t[inside] - bar * bar_seconds
        envelope = np.minimum(1, local / 0.4) * np.clip((bar_seconds + 0.3 - local) / 0.3, 0, 1)
        for midi in chord[1:4]:
            for detune in (-0.07, 0.07):
                f = hz(midi + 12 + detune)
                phase = rng.uniform(0, 2 * np.pi)
                saw = sum(np.sin(2 * np.pi * k * f * local + k * phase) / k
                          for k in range(1, int(3000 / f) + 1))
                mix[inside] += envelope * saw
    b, a = signal.butter(2, 1800 / (SR / 2))
    return signal.lfilter(b, a, mix)


def drums(rng: np.random.Generator, n: int) -> np.ndarray:
    """Kick on beats 1 and 3, brushed snare on 2 and 4, closed hi-hat on the eighths."""
    mix = np.zeros(n)
    t = np.arange(int(0.6 * SR)) / SR
    for beat in range(BARS * 4):
        at = beat * BEAT + rng.normal(0, 0.004)
        if beat % 2 == 0:
            sweep = 45 + 70 * np.exp(-t / 0.03)
            attack = np.minimum(1, t / 0.003)
            kick = np.sin(2 * np.pi * np.cumsum(sweep) / SR) * attack * np.exp(-t / 0.12)
            add(mix, fade_out(kick), max(at, 0), 0.9)
        else:
            snare = band_noise(rng, len(t), (900, 6000)) * np.exp(-t / 0.07) + \
                0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
            add(mix, fade_out(snare), at, 0.25)
        for half in (0, 0.5):
            hat = band_noise(rng, len(t), (7000, 10500)) * np.exp(-t / 0.02)
            add(mix, fade_out(hat), max(at + half * BEAT, 0), 0.1 if half else 0.06)
    return mix


def reverb(sound: np.ndarray, rng: np.random.Generator, rt60: float = 1.1, wet: float = 0.12) -> np.ndarray:
    """A room: exponentially decaying, progressively darker noise impulse response."""
    t = np.arange(int(rt60 * SR)) / SR
    early = signal.lfilter([0.3], [1, -0.7], rng.standard_normal(len(t)))
    response = early * np.exp(-6.9 * t / rt60)
    response[: int(0.015 * SR)] = 0.0  # pre-delay
    tail = signal.fftconvolve(sound, response)[: len(sound)]
    return sound + wet * tail * np.std(sound) / max(np.std(tail), 1e-12)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to unit RMS."""
    return x / rms(x)


def make_clip(seed: int = SEED) -> tuple[np.ndarray, list[Segment]]:
    """The mixed clip (float, mono, ``SR`` Hz, peak 0.9) and its singing segments (seconds)."""
    rng = np.random.default_rng(seed)
    n = int(DURATION * SR)
    band = unit(guitar_and_bass(rng, n)) + 0.25 * unit(pad(rng, n)) + 0.35 * unit(drums(rng, n))
    voice = np.zeros(n)
    segments = []
    for phrase in PHRASES:
        first, sung, segment = sing(phrase, rng)
        voice[first : first + len(sung)] += sung
        segments.append(segment)
    singing = np.zeros(n, dtype=bool)
    for segment in segments:
        singing[int(segment.start * SR) : int(segment.end * SR)] = True
    voice *= 1.4 * rms(band[singing]) / rms(voice[singing])  # voice ~3 dB over the band
    mix = reverb(voice, rng, wet=0.15) + reverb(band, rng, wet=0.08)
    b, a = signal.butter(2, 40 / (SR / 2), "highpass")
    mix = signal.lfilter(b, a, mix)
    return 0.9 * mix / np.max(np.abs(mix)), _merge_breaths(segments)


def _merge_breaths(segments: list[Segment], breath: float = 0.3) -> list[Segment]:
    """Join phrases separated by less than ``breath`` seconds (a breath inside a sung line)."""
    merged = [segments[0]]
    for segment in segments[1:]:
        if segment.start - merged[-1].end < breath:
            merged[-1] = Segment(merged[-1].start, segment.end)
        else:
            merged.append(segment)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output FLAC file; the labels go beside it (.lab)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = parser.parse_args(argv)
    audio, segments = make_clip(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, audio.astype(np.float32), SR, format="FLAC", subtype="PCM_16")
    args.out.with_suffix(".lab").write_text(format_lab(segments, len(audio) / SR), encoding="utf-8")
    sung = sum(s.duration for s in segments)
    print(f"{args.out}: {len(audio) / SR:.2f} s, singing {sung:.2f} s in {len(segments)} segments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
