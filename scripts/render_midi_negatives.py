#!/usr/bin/env python3
"""Render hard-negative instrumental music: General-MIDI band plus voice-like lead instruments.

    python scripts/render_midi_negatives.py DEST --minutes 40 --seed 0 [--soundfont PATH]

writes ``DEST/<name>.flac`` (22050 Hz mono, 16 bit, 20-60 s each, peaks at -1 dBFS) and
``DEST/README.txt`` (per file: seed, style, tempo, key, lead instrument; the licences). Every
piece is generated here as General MIDI from a per-file seed (``seed * 100000 + index``) and
rendered with fluidsynth and a GM soundfont (FluidR3_GM from Debian's ``fluid-soundfont-gm``).

The pieces are meant to be *negatives* for singing-voice detection that look like singing to a
detector: every other file (even indices) has a lead instrument, cycling through a voice-like set
(saxophones, violin, viola, cello, flute, clarinet, oboe, trumpet, trombone, synth leads,
clean/overdriven/distorted electric guitar, harmonica; no whistle, no choir or "voice" patches)
playing legato phrases of 2-8 s separated by rests, in the vocal range (MIDI 48-79), with
expressive pitch bends (scoops, slides, falls), pitch-bend vibrato, modulation wheel and
expression swells. The odd files are accompaniment only. The band has drums, bass and chord
comping (piano, e-piano, organ, guitars, accordion) and sometimes a pad, in one of nine styles
(pop, rock, ballad, jazz swing, bossa, funk, waltz, electronic, blues shuffle) at style-typical
tempi. Files that already exist are kept, so a short run can be extended by a longer one with
the same seed. The generation (``generate_piece``, ``piece_to_midi``) is pure Python (``mido``);
only ``render`` needs fluidsynth.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

try:
    import mido
except ImportError:  # reported by main() as a one-line message
    mido = None

DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
"""Where Debian's ``fluid-soundfont-gm`` installs the soundfont."""
SAMPLE_RATE = 22050
"""Sample rate of the written files in Hz."""
PEAK_DBFS = -1.0
"""Peak level the files are normalised to."""
PPQ = 480
"""MIDI ticks per quarter note."""
VOCAL_RANGE = (48, 79)
"""Lowest and highest MIDI note of the lead melodies (C3-G5: a singer's range, roughly)."""
BEND_RANGE = 2
"""Pitch-bend range in semitones (set on the lead channel by RPN 0)."""
MIN_SECONDS, MAX_SECONDS = 20.0, 60.0
"""Bounds on a file's length."""
TAIL_SECONDS = 1.5
"""Release and reverb tail kept after the last bar."""
PHRASE_SECONDS = (2.0, 8.0)
"""Bounds on the length of a lead phrase."""
REST_SECONDS = (0.6, 3.0)
"""Bounds on the rest between two lead phrases."""

# Channels (0-based; 9 is the GM drum channel).
BASS_CH, COMP_CH, PAD_CH, LEAD_CH, DRUM_CH = 0, 1, 2, 3, 9


@dataclass(frozen=True)
class LeadInstrument:
    """A voice-like lead: GM program (0-based), name, playable part of the vocal range, vibrato depth."""

    program: int
    name: str
    low: int
    high: int
    vibrato: float
    """Typical pitch-bend vibrato depth in semitones (peak)."""


LEADS: tuple[LeadInstrument, ...] = (
    LeadInstrument(64, "soprano_sax", 56, 79, 0.25),
    LeadInstrument(65, "alto_sax", 50, 77, 0.3),
    LeadInstrument(66, "tenor_sax", 48, 72, 0.3),
    LeadInstrument(40, "violin", 55, 79, 0.3),
    LeadInstrument(41, "viola", 48, 74, 0.3),
    LeadInstrument(42, "cello", 48, 72, 0.3),
    LeadInstrument(73, "flute", 60, 79, 0.2),
    LeadInstrument(71, "clarinet", 50, 79, 0.1),
    LeadInstrument(68, "oboe", 58, 79, 0.2),
    LeadInstrument(56, "trumpet", 54, 79, 0.2),
    LeadInstrument(57, "trombone", 48, 70, 0.2),
    LeadInstrument(80, "square_lead", 48, 79, 0.3),
    LeadInstrument(81, "saw_lead", 48, 79, 0.3),
    LeadInstrument(27, "clean_electric_guitar", 48, 79, 0.25),
    LeadInstrument(29, "overdriven_guitar", 48, 79, 0.35),
    LeadInstrument(30, "distortion_guitar", 48, 79, 0.35),
    LeadInstrument(22, "harmonica", 60, 79, 0.25),
)
"""The voice-like lead instruments (no whistle 78, no choir/voice patches 52-54, 85, 91)."""
LEAD_PROGRAMS = frozenset(lead.program for lead in LEADS)

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}
"""Scales (semitones above the key) the melodies use."""
CHORD_TONES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
}
"""Chord qualities as semitones above the root."""

Chord = tuple[int, str]
"""A chord: root in semitones above the key, quality (a key of ``CHORD_TONES``)."""


@dataclass(frozen=True)
class Progression:
    """A chord loop (one chord per bar) and the scale melodies over it use."""

    mode: str
    chords: tuple[Chord, ...]


def _prog(mode: str, text: str) -> Progression:
    """Parse ``"0:maj 7:maj 9:min 5:maj"`` (root semitones:quality per bar) into a progression."""
    chords = tuple((int(root), quality) for root, quality in (item.split(":") for item in text.split()))
    return Progression(mode, chords)


@dataclass(frozen=True)
class Style:
    """How a style's band plays: meter, tempo range, swing, programs, chords and patterns."""

    name: str
    beats: int
    tempo: tuple[int, int]
    swing: bool
    drum_kits: tuple[int, ...]
    bass_programs: tuple[int, ...]
    comp_programs: tuple[int, ...]
    pad_programs: tuple[int, ...]
    progressions: tuple[Progression, ...]
    drums: tuple[tuple[float, int, int], ...]
    """Drum hits per bar: (beat, GM drum note, velocity)."""
    bass: tuple[tuple[float, float, int], ...]
    """Bass notes per bar: (beat, length in beats, interval above the chord root; 12 = octave)."""
    comp: tuple[tuple[float, float], ...]
    """Chord hits per bar: (beat, length in beats); an empty pattern means arpeggios."""
    walking_bass: bool = False


KICK, SNARE, RIM, CLAP, HAT, PEDAL_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 37, 39, 42, 44, 46, 51, 49
TOMS = (50, 48, 47, 45, 43, 41)


def _eighths(note: int, velocity: int, beats: int = 4) -> tuple[tuple[float, int, int], ...]:
    """A hit on every eighth note of a bar, accented on the beats."""
    return tuple((i / 2, note, velocity if i % 2 == 0 else velocity - 20) for i in range(2 * beats))


STYLES: tuple[Style, ...] = (
    Style(
        "pop", 4, (88, 122), False, (0, 8), (33, 34), (0, 4, 25, 27), (48, 89, 88),
        (_prog("major", "0:maj 7:maj 9:min 5:maj"), _prog("major", "9:min 5:maj 0:maj 7:maj"),
         _prog("major", "0:maj 9:min 5:maj 7:maj"), _prog("minor", "0:min 8:maj 3:maj 10:maj")),
        ((0, KICK, 100), (2.5, KICK, 85), (1, SNARE, 100), (3, SNARE, 100), *_eighths(HAT, 75)),
        ((0, 1.5, 0), (1.5, 0.5, 0), (2, 1.5, 0), (3.5, 0.5, 7)),
        ((0, 1.5), (1.5, 1.0), (2.5, 1.5)),
    ),
    Style(
        "rock", 4, (100, 145), False, (16, 0), (34, 33), (29, 30, 18), (),
        (_prog("major", "0:maj 10:maj 5:maj 0:maj"), _prog("major", "0:maj 5:maj 7:maj 5:maj"),
         _prog("minor", "0:min 8:maj 10:maj 0:min"), _prog("mixolydian", "0:maj 7:maj 5:maj 5:maj")),
        ((0, KICK, 110), (1.5, KICK, 90), (2, KICK, 105), (1, SNARE, 110), (3, SNARE, 110),
         *_eighths(HAT, 85)),
        tuple((i / 2, 0.5, 0) for i in range(8)),
        tuple((i / 2, 0.45) for i in range(8)),
    ),
    Style(
        "ballad", 4, (60, 80), False, (0, 40), (33, 35), (0, 1, 4, 24), (48, 49, 89, 88),
        (_prog("major", "0:maj 7:maj 9:min 4:min 5:maj 0:maj 5:maj 7:maj"),
         _prog("major", "0:maj 9:min 5:maj 7:maj"), _prog("minor", "0:min 5:min 10:maj 3:maj")),
        ((0, KICK, 80), (2.5, KICK, 65), (1, RIM, 70), (3, RIM, 75), *_eighths(HAT, 50)),
        ((0, 2.0, 0), (2, 1.5, 0), (3.5, 0.5, 7)),
        (),
    ),
    Style(
        "jazz", 4, (110, 190), True, (32, 40), (32,), (0, 26, 4), (),
        (_prog("major", "2:m7 7:7 0:maj7 9:7"), _prog("major", "0:maj7 9:m7 2:m7 7:7"),
         _prog("major", "4:m7 9:7 2:m7 7:7"), _prog("minor", "2:m7 7:7 0:m7 0:m7")),
        ((0, RIDE, 80), (1, RIDE, 90), (1.5, RIDE, 65), (2, RIDE, 80), (3, RIDE, 90), (3.5, RIDE, 65),
         (1, PEDAL_HAT, 70), (3, PEDAL_HAT, 70), (0, KICK, 45)),
        (),
        ((0, 0.9), (1.5, 0.4), (3.5, 0.5)),
        walking_bass=True,
    ),
    Style(
        "bossa", 4, (120, 150), False, (0, 40), (32, 33), (24, 0, 4), (48, 89),
        (_prog("major", "0:maj7 2:7 2:m7 7:7"), _prog("major", "2:m7 7:7 0:maj7 0:maj7"),
         _prog("minor", "0:m7 5:m7 10:7 3:maj7")),
        ((0, KICK, 75), (1.5, KICK, 60), (2, KICK, 75), (3.5, KICK, 60), (0, RIM, 70), (1.5, RIM, 70),
         (3, RIM, 70), (2.5, RIM, 65), *_eighths(HAT, 55)),
        ((0, 1.5, 0), (1.5, 0.5, 7), (2, 1.5, 7), (3.5, 0.5, 0)),
        ((0, 0.5), (1.5, 1.0), (3, 0.5), (3.5, 0.5)),
    ),
    Style(
        "funk", 4, (90, 112), False, (0, 8), (36, 37, 33), (7, 28, 4), (),
        (_prog("dorian", "0:m7 0:m7 5:7 5:7"), _prog("mixolydian", "0:7 0:7 5:7 0:7"),
         _prog("dorian", "0:m7 5:7 0:m7 10:maj")),
        ((0, KICK, 110), (0.75, KICK, 85), (2.5, KICK, 95), (1, SNARE, 110), (3, SNARE, 110),
         (1.75, SNARE, 45), (3.25, SNARE, 45),
         *tuple((i / 4, HAT, 80 if i % 2 == 0 else 55) for i in range(16))),
        ((0, 0.5, 0), (0.75, 0.25, 12), (1.5, 0.25, 0), (2.5, 0.5, 0), (3, 0.25, 10), (3.5, 0.25, 12)),
        ((0.5, 0.2), (1.25, 0.2), (2.5, 0.2), (3.0, 0.2), (3.75, 0.2)),
    ),
    Style(
        "waltz", 3, (84, 150), False, (0, 40), (32, 33), (21, 0, 24, 25), (48, 49),
        (_prog("major", "0:maj 5:maj 7:maj 0:maj"), _prog("major", "0:maj 9:min 2:min 7:maj"),
         _prog("minor", "0:min 5:min 7:maj 0:min")),
        ((0, KICK, 85), (1, HAT, 65), (2, HAT, 65), (1, RIM, 55), (2, RIM, 55)),
        ((0, 1.0, 0), (1, 0.9, 7), (2, 0.9, 12)),
        ((1, 0.8), (2, 0.8)),
    ),
    Style(
        "electronic", 4, (116, 130), False, (24, 25), (38, 39), (4, 90, 81), (88, 89, 90, 95),
        (_prog("minor", "0:min 8:maj 3:maj 10:maj"), _prog("major", "9:min 5:maj 0:maj 7:maj"),
         _prog("minor", "0:min 0:min 8:maj 10:maj")),
        ((0, KICK, 110), (1, KICK, 110), (2, KICK, 110), (3, KICK, 110), (1, CLAP, 95), (3, CLAP, 95),
         *tuple((i + 0.5, OPEN_HAT, 75) for i in range(4)), *tuple((i / 4, HAT, 50) for i in range(16))),
        tuple((i + 0.5, 0.45, 0 if i % 2 else 12) for i in range(4)),
        (),
    ),
    Style(
        "blues", 4, (76, 120), True, (0, 32), (33, 32), (0, 16, 17, 26), (),
        (_prog("mixolydian", "0:7 0:7 0:7 0:7 5:7 5:7 0:7 0:7 7:7 5:7 0:7 7:7"),
         _prog("mixolydian", "0:7 5:7 0:7 0:7 5:7 5:7 0:7 0:7 7:7 5:7 0:7 7:7")),
        ((0, KICK, 95), (2, KICK, 85), (1, SNARE, 95), (3, SNARE, 95), *_eighths(HAT, 70)),
        ((0, 0.5, 0), (0.5, 0.5, 4), (1, 0.5, 7), (1.5, 0.5, 9), (2, 0.5, 10), (2.5, 0.5, 9),
         (3, 0.5, 7), (3.5, 0.5, 4)),
        ((0, 0.4), (1.5, 0.4), (2, 0.4), (3.5, 0.4)),
    ),
)
"""The accompaniment styles."""
STYLE_NAMES = tuple(style.name for style in STYLES)


@dataclass
class MelodyNote:
    """A lead note: start and length in ticks, MIDI pitch, velocity."""

    start: int
    length: int
    pitch: int
    velocity: int


@dataclass
class Piece:
    """A generated piece: what it is, its timed MIDI messages per track and (if any) its lead melody."""

    seed: int
    style: str
    tempo: int
    beats_per_bar: int
    key: int
    bars: int
    lead: LeadInstrument | None
    programs: dict[str, int]
    """GM program per accompaniment part (drums: kit number)."""
    band_volume: int = 100
    """Channel volume (CC 7) of drums and bass; comping and pad a little lower, the lead at 127."""
    tracks: dict[str, list[tuple[int, object]]] = field(default_factory=dict)
    """Per track: (absolute tick, message) pairs."""
    melody: list[MelodyNote] = field(default_factory=list)
    phrases: list[tuple[int, int]] = field(default_factory=list)
    """Lead phrases as (first tick, last tick)."""

    @property
    def seconds_per_tick(self) -> float:
        """Length of a tick in seconds at the piece's tempo."""
        return 60.0 / (self.tempo * PPQ)

    @property
    def seconds(self) -> float:
        """Length of the music (without the release tail) in seconds."""
        return self.bars * self.beats_per_bar * PPQ * self.seconds_per_tick


def _msg(kind: str, **kwargs: int) -> object:
    """A mido message (kept apart so the type checker sees one place that needs mido)."""
    return mido.Message(kind, **kwargs)


def _swung(beat: float, swing: bool) -> float:
    """Move off-beat eighths to the last third of the beat when the style swings."""
    whole = math.floor(beat)
    if swing and abs(beat - whole - 0.5) < 1e-6:
        return whole + 2 / 3
    return beat


def _add_note(track: list, channel: int, start: int, length: int, pitch: int, velocity: int) -> None:
    """Append a note-on/note-off pair to a track."""
    velocity = max(1, min(127, velocity))
    track.append((max(0, start), _msg("note_on", channel=channel, note=pitch, velocity=velocity)))
    track.append((max(1, start + length), _msg("note_off", channel=channel, note=pitch, velocity=0)))


def _chord_at_bar(progression: Progression, bar: int) -> Chord:
    """The chord of a bar (the progression loops)."""
    return progression.chords[bar % len(progression.chords)]


def _voicing(key: int, chord: Chord, low: int = 52) -> list[int]:
    """Close-position chord notes from ``low`` upwards (roughly E3-E4)."""
    root, quality = chord
    notes = []
    for interval in CHORD_TONES[quality]:
        pitch = (key + root + interval) % 12
        pitch += low - low % 12
        if pitch < low:
            pitch += 12
        notes.append(pitch)
    return sorted(notes)


def _bass_root(key: int, chord: Chord) -> int:
    """The chord root in the bass octave (E1-D#2)."""
    return 28 + (key + chord[0] - 28) % 12


def _jitter(rng: random.Random, ticks: int = 12) -> int:
    """A small random timing offset (humanisation)."""
    return rng.randint(-ticks, ticks)


def _beat_tick(bar_start: int, beat: float, swing: bool) -> int:
    """Tick of a (possibly swung) beat within a bar."""
    return bar_start + round(_swung(beat, swing) * PPQ)


def _drum_track(piece: Piece, style: Style, rng: random.Random) -> list:
    """Drums: the style's pattern with a crash and a tom fill every four bars."""
    track: list = [(0, _msg("program_change", channel=DRUM_CH, program=piece.programs["drums"])),
                   (0, _msg("control_change", channel=DRUM_CH, control=7, value=piece.band_volume))]
    bar_ticks = style.beats * PPQ
    for bar in range(piece.bars):
        start = bar * bar_ticks
        fill = bar % 4 == 3 and bar < piece.bars - 1
        for beat, note, velocity in style.drums:
            if fill and beat >= style.beats - 1 and note != KICK:
                continue
            tick = _beat_tick(start, beat, style.swing) + _jitter(rng, 6)
            _add_note(track, DRUM_CH, tick, PPQ // 4, note, velocity + rng.randint(-8, 8))
        if bar % 4 == 0:
            _add_note(track, DRUM_CH, start, PPQ, CRASH, 100)
        if fill:
            for i in range(4):
                tick = start + (style.beats - 1) * PPQ + i * PPQ // 4
                tom = TOMS[i + rng.randint(0, 2)]
                _add_note(track, DRUM_CH, tick, PPQ // 4, tom, 90 + rng.randint(-10, 10))
    return track


def _walking_line(piece: Piece, style: Style, progression: Progression, rng: random.Random) -> list:
    """Jazz walking bass: quarter notes on chord tones with chromatic approaches to the next root."""
    track: list = []
    pitch = _bass_root(piece.key, _chord_at_bar(progression, 0))
    for bar in range(piece.bars):
        chord = _chord_at_bar(progression, bar)
        next_root = _bass_root(piece.key, _chord_at_bar(progression, bar + 1))
        root = _bass_root(piece.key, chord)
        tones = [root + interval for interval in CHORD_TONES[chord[1]]] + [root + 12]
        for beat in range(style.beats):
            if beat == 0:
                pitch = root
            elif beat == style.beats - 1:
                pitch = next_root + rng.choice((-1, 1, 7 - 12))
            else:
                pitch = min(tones, key=lambda p, prev=pitch: (p == prev, abs(p - prev) + rng.random() * 5))
            tick = bar * style.beats * PPQ + beat * PPQ + _jitter(rng, 8)
            _add_note(track, BASS_CH, tick, int(PPQ * 0.9), pitch, 90 + rng.randint(-10, 10))
    return track


def _bass_track(piece: Piece, style: Style, progression: Progression, rng: random.Random) -> list:
    """Bass: the style's rhythm on the chord roots (or a walking line)."""
    track: list = [(0, _msg("program_change", channel=BASS_CH, program=piece.programs["bass"])),
                   (0, _msg("control_change", channel=BASS_CH, control=7, value=piece.band_volume))]
    if style.walking_bass:
        return track + _walking_line(piece, style, progression, rng)
    for bar in range(piece.bars):
        root = _bass_root(piece.key, _chord_at_bar(progression, bar))
        for beat, length, interval in style.bass:
            tick = _beat_tick(bar * style.beats * PPQ, beat, style.swing) + _jitter(rng, 8)
            velocity = 95 + rng.randint(-10, 8)
            _add_note(track, BASS_CH, tick, int(length * PPQ * 0.95), root + interval, velocity)
    return track


def _comp_track(piece: Piece, style: Style, progression: Progression, rng: random.Random) -> list:
    """Chord comping: the style's rhythm on close voicings, or eighth-note arpeggios."""
    track: list = [(0, _msg("program_change", channel=COMP_CH, program=piece.programs["comp"])),
                   (0, _msg("control_change", channel=COMP_CH, control=7, value=piece.band_volume - 8))]
    power_chords = style.name == "rock"
    for bar in range(piece.bars):
        chord = _chord_at_bar(progression, bar)
        voicing = _voicing(piece.key, chord)
        if power_chords:
            root = 40 + (piece.key + chord[0] - 40) % 12
            voicing = [root, root + 7, root + 12]
        start = bar * style.beats * PPQ
        if not style.comp:
            for i in range(2 * style.beats):
                pitch = voicing[ARPEGGIO[i % 8] % len(voicing)] + 12 * (i % 4 == 2)
                tick = start + i * PPQ // 2 + _jitter(rng, 6)
                _add_note(track, COMP_CH, tick, PPQ, pitch, 70 + rng.randint(-8, 8))
            continue
        for beat, length in style.comp:
            tick = _beat_tick(start, beat, style.swing)
            for pitch in voicing:
                velocity = 75 + rng.randint(-10, 10)
                _add_note(track, COMP_CH, tick + _jitter(rng, 5), int(length * PPQ), pitch, velocity)
    return track


ARPEGGIO = (0, 1, 2, 1, 3, 1, 2, 0)
"""Order of chord notes (indices, wrapped) in an eighth-note arpeggio bar."""


def _pad_track(piece: Piece, style: Style, progression: Progression) -> list:
    """A soft sustained pad: the chord of each bar held through it."""
    track: list = [(0, _msg("program_change", channel=PAD_CH, program=piece.programs["pad"])),
                   (0, _msg("control_change", channel=PAD_CH, control=7, value=piece.band_volume - 25))]
    bar_ticks = style.beats * PPQ
    for bar in range(piece.bars):
        for pitch in _voicing(piece.key, _chord_at_bar(progression, bar), low=55):
            _add_note(track, PAD_CH, bar * bar_ticks, bar_ticks - 10, pitch, 60)
    return track


def _phrase_spans(piece: Piece, rng: random.Random) -> list[tuple[int, int]]:
    """Lead phrases (start tick, end tick): 2-8 s long, separated by rests of 0.6-3 s, on the beat grid."""
    spt = piece.seconds_per_tick
    half_beat = PPQ // 2
    intro = rng.choice((1, 2)) * piece.beats_per_bar * PPQ
    end_limit = (piece.bars - 1) * piece.beats_per_bar * PPQ
    spans: list[tuple[int, int]] = []
    tick = intro
    while True:
        length = round(rng.uniform(*PHRASE_SECONDS) / spt / half_beat) * half_beat
        length = max(length, math.ceil(PHRASE_SECONDS[0] / spt / half_beat) * half_beat)
        length = min(length, math.floor(PHRASE_SECONDS[1] / spt / half_beat) * half_beat)
        if tick + length > end_limit:
            break
        spans.append((tick, tick + length))
        rest = math.ceil(rng.uniform(*REST_SECONDS) / spt / half_beat) * half_beat
        tick += length + rest
    return spans


INTERVAL_WEIGHTS = {0: 0.4, 1: 3.0, 2: 3.0, 3: 1.6, 4: 1.6, 5: 1.0, 7: 0.7}
"""Relative likelihood of melodic intervals (semitones); other leaps up to an octave: 0.15."""


def _next_pitch(rng: random.Random, last: int, lead: LeadInstrument, scale: list[int], chord_tones: set[int],
                strong: bool) -> int:
    """Next melody pitch: mostly steps, sometimes leaps; chord tones on strong beats; inside the range."""
    candidates = [p for p in scale if lead.low <= p <= lead.high]
    centre = (lead.low + lead.high) / 2

    def weight(pitch: int) -> float:
        interval = abs(pitch - last)
        w = INTERVAL_WEIGHTS.get(interval, 0.15 if interval <= 12 else 0.0)
        if strong and pitch % 12 in chord_tones:
            w *= 3.0
        return w * math.exp(-(((pitch - centre) / 9.0) ** 2))

    weights = [weight(p) for p in candidates]
    if sum(weights) <= 0:
        return min(candidates, key=lambda p: abs(p - last))
    return rng.choices(candidates, weights)[0]


def _phrase_notes(piece: Piece, progression: Progression, span: tuple[int, int], last: int,
                  rng: random.Random) -> list[MelodyNote]:
    """Legato notes filling one phrase; each note lasts until the next starts."""
    assert piece.lead is not None
    scale_pcs = {(piece.key + step) % 12 for step in MODES[progression.mode]}
    scale = [p for p in range(VOCAL_RANGE[0], VOCAL_RANGE[1] + 1) if p % 12 in scale_pcs]
    slow = piece.tempo < 90
    durations = (0.5, 1.0, 1.5, 2.0, 3.0) if slow else (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
    weights = (3, 4, 2, 2, 1) if slow else (2, 3, 2, 3, 1.5, 1)
    bar_ticks = piece.beats_per_bar * PPQ
    notes: list[MelodyNote] = []
    tick, end = span
    while tick < end:
        length = min(round(rng.choices(durations, weights)[0] * PPQ), end - tick)
        if end - tick - length < PPQ // 2:
            length = end - tick
        chord = _chord_at_bar(progression, tick // bar_ticks)
        tones = {(piece.key + chord[0] + i) % 12 for i in CHORD_TONES[chord[1]]}
        last = _next_pitch(rng, last, piece.lead, scale, tones, strong=tick % PPQ == 0)
        notes.append(MelodyNote(tick, length, last, rng.randint(88, 120)))
        tick += length
    return notes


def _bend_value(semitones: float) -> int:
    """Pitch-bend message value for an offset in semitones (clipped to the bend range)."""
    return max(-8192, min(8191, round(semitones / BEND_RANGE * 8192)))


def _note_bends(note: MelodyNote, piece: Piece, rng: random.Random, first: bool, last: bool,
                previous: int | None) -> list[tuple[int, float]]:
    """Pitch-bend curve of one note as (tick, semitones): scoop or slide in, vibrato, fall at phrase ends."""
    assert piece.lead is not None
    step = max(1, round(0.02 / piece.seconds_per_tick))  # a bend message every 20 ms
    seconds = note.length * piece.seconds_per_tick
    curve: list[tuple[int, float]] = []
    attack = 0
    if first and rng.random() < 0.6:
        attack, offset = round(rng.uniform(0.06, 0.16) / piece.seconds_per_tick), -rng.uniform(0.5, 1.5)
    elif previous is not None and abs(previous - note.pitch) <= BEND_RANGE and rng.random() < 0.35:
        attack, offset = round(rng.uniform(0.04, 0.1) / piece.seconds_per_tick), float(previous - note.pitch)
    if attack:
        for t in range(0, attack, step):
            curve.append((note.start + t, offset * (1 - t / attack) ** 2))
    rate, depth = rng.uniform(4.5, 6.5), piece.lead.vibrato * rng.uniform(0.6, 1.4)
    delay = rng.uniform(0.12, 0.35)
    fall = last and rng.random() < 0.35
    fall_ticks = round(rng.uniform(0.15, 0.3) / piece.seconds_per_tick) if fall else 0
    for t in range(attack, note.length, step):
        time = t * piece.seconds_per_tick
        ramp = min(1.0, max(0.0, (time - delay) / 0.4)) if seconds > 0.45 else 0.0
        value = depth * ramp * math.sin(2 * math.pi * rate * (time - delay))
        if fall and t > note.length - fall_ticks:
            value -= rng.uniform(1.2, 2.0) * ((t - note.length + fall_ticks) / fall_ticks) ** 2
        curve.append((note.start + t, value))
    return curve


def _lead_setup(program: int) -> list:
    """Program, volume and pitch-bend range (RPN 0) of the lead channel."""
    setup = [("program_change", {"program": program})]
    for control, value in ((7, 127), (101, 0), (100, 0), (6, BEND_RANGE), (38, 0), (101, 127), (100, 127)):
        setup.append(("control_change", {"control": control, "value": value}))
    return [(0, _msg(kind, channel=LEAD_CH, **kwargs)) for kind, kwargs in setup]


def _expression(span: tuple[int, int], step: int, use_mod: bool, rng: random.Random) -> list:
    """Expression (CC 11) swell over a phrase and, for some pieces, rising modulation wheel (CC 1)."""
    start, end = span
    low, high = rng.randint(70, 95), rng.randint(105, 127)
    peak = rng.uniform(0.3, 0.7)
    track = []
    for tick in range(start, end, step):
        x = (tick - start) / (end - start)
        shape = x / peak if x < peak else (1 - x) / (1 - peak)
        value = round(low + (high - low) * shape)
        track.append((tick, _msg("control_change", channel=LEAD_CH, control=11, value=value)))
        if use_mod:
            value = min(127, round(90 * x))
            track.append((tick, _msg("control_change", channel=LEAD_CH, control=1, value=value)))
    track.append((end, _msg("control_change", channel=LEAD_CH, control=1, value=0)))
    return track


def _lead_track(piece: Piece, progression: Progression, rng: random.Random) -> list:
    """The lead: phrases of legato notes with bends, vibrato and expression; fills ``piece.melody``."""
    assert piece.lead is not None
    track = _lead_setup(piece.lead.program)
    use_mod = rng.random() < 0.4
    overlap = round(0.015 / piece.seconds_per_tick)
    last = rng.randint(piece.lead.low + 4, piece.lead.high - 4)
    piece.phrases = _phrase_spans(piece, rng)
    for span in piece.phrases:
        notes = _phrase_notes(piece, progression, span, last, rng)
        last = notes[-1].pitch
        track += _expression(span, round(0.1 / piece.seconds_per_tick), use_mod, rng)
        previous = None
        for i, note in enumerate(notes):
            is_last = i == len(notes) - 1
            length = note.length + (0 if is_last else overlap)  # legato: held into the next note
            _add_note(track, LEAD_CH, note.start, length, note.pitch, note.velocity)
            for tick, semitones in _note_bends(note, piece, rng, i == 0, is_last, previous):
                track.append((tick, _msg("pitchwheel", channel=LEAD_CH, pitch=_bend_value(semitones))))
            previous = note.pitch
        track.append((span[1], _msg("pitchwheel", channel=LEAD_CH, pitch=0)))
        piece.melody += notes
    return track


def _length_in_bars(rng: random.Random, tempo: int, beats: int) -> int:
    """A number of bars giving 20-60 s including the release tail (aiming at 25-55 s)."""
    bar_seconds = 60.0 * beats / tempo
    bars = round(rng.uniform(25.0, 55.0) / bar_seconds)
    lowest = math.ceil((MIN_SECONDS + 0.5) / bar_seconds)
    highest = math.floor((MAX_SECONDS - TAIL_SECONDS - 0.5) / bar_seconds)
    return max(lowest, min(highest, bars))


def piece_seed(seed: int, index: int) -> int:
    """The seed of file ``index`` of a run with master seed ``seed``."""
    return seed * 100000 + index


def lead_for(index: int) -> LeadInstrument | None:
    """The lead of file ``index``: even files cycle through ``LEADS``, odd files have none."""
    return None if index % 2 else LEADS[(index // 2) % len(LEADS)]


def generate_piece(seed: int, lead: LeadInstrument | None) -> Piece:
    """Generate one piece (all of its MIDI) from its seed, with ``lead`` playing or accompaniment only."""
    if mido is None:
        raise RuntimeError("mido is not installed (pip install mido)")
    rng = random.Random(seed)
    style = rng.choice(STYLES)
    progression = rng.choice(style.progressions)
    tempo = rng.randint(*style.tempo)
    programs = {"drums": rng.choice(style.drum_kits), "bass": rng.choice(style.bass_programs),
                "comp": rng.choice(style.comp_programs)}
    if style.pad_programs and rng.random() < 0.5:
        programs["pad"] = rng.choice(style.pad_programs)
    key, bars = rng.randrange(12), _length_in_bars(rng, tempo, style.beats)
    piece = Piece(seed=seed, style=style.name, tempo=tempo, beats_per_bar=style.beats, key=key, bars=bars,
                  lead=lead, programs=programs, band_volume=rng.randint(66, 92) if lead else 100)
    piece.tracks["drums"] = _drum_track(piece, style, rng)
    piece.tracks["bass"] = _bass_track(piece, style, progression, rng)
    piece.tracks["comp"] = _comp_track(piece, style, progression, rng)
    if "pad" in programs:
        piece.tracks["pad"] = _pad_track(piece, style, progression)
    if piece.lead is not None:
        piece.tracks["lead"] = _lead_track(piece, progression, rng)
    return piece


def _order(item: tuple[int, object]) -> tuple[int, int]:
    """Sort key of timed messages: by tick; note-offs, then controls/bends, then note-ons at one tick."""
    tick, message = item
    kind = message.type
    rank = 0 if kind == "note_off" else 2 if kind == "note_on" else 1
    return tick, rank


def piece_to_midi(piece: Piece) -> mido.MidiFile:
    """A type-1 MIDI file of the piece: a tempo/meter track plus one track per part."""
    midi = mido.MidiFile(type=1, ticks_per_beat=PPQ)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(piece.tempo), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=piece.beats_per_bar, denominator=4, time=0))
    midi.tracks.append(meta)
    for name, events in piece.tracks.items():
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        now = 0
        for tick, message in sorted(events, key=_order):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    return midi


def gm_name(program: int) -> str:
    """Name of a lead program (or the program number)."""
    return next((lead.name for lead in LEADS if lead.program == program), f"program {program}")


def render(midi: mido.MidiFile, soundfont: Path, seconds: float, out: Path) -> np.ndarray:
    """Render a MIDI file with fluidsynth, downmix, trim, fade, peak-normalise and write a 16-bit FLAC."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        midi.save(mid)
        command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SAMPLE_RATE), "-F", str(wav),
                   str(soundfont), str(mid)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        audio, _ = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)[: round(seconds * SAMPLE_RATE)]
    fade = min(len(audio), round(0.3 * SAMPLE_RATE))
    audio[len(audio) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = audio * (10 ** (PEAK_DBFS / 20) / peak)
    sf.write(out, audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    return audio


def file_name(index: int, seed: int, piece: Piece) -> str:
    """File stem: index, master seed, style and lead (or ``accomp``)."""
    lead = piece.lead.name if piece.lead else "accomp"
    return f"midi_s{seed}_{index:04d}_{piece.style}_{lead}"


NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def readme_text(rows: list[str], seed: int, minutes: float, soundfont: Path) -> str:
    """README.txt: what the files are, how they were made, their licences, and one line per file."""
    header = f"""\
Hard-negative instrumental music for singing-voice detection (vocalfront).

Generated by scripts/render_midi_negatives.py (vocalfront):
    python scripts/render_midi_negatives.py DEST --minutes {minutes:g} --seed {seed}
Every piece is General MIDI generated from its per-file seed (master seed * 100000 + index) and
rendered with fluidsynth ({SAMPLE_RATE} Hz, downmixed to mono, peak -1 dBFS, 16-bit FLAC) using
the soundfont
    {soundfont}
Even indices have a voice-like lead instrument (cycling through the leads' list; melodies in
MIDI {VOCAL_RANGE[0]}-{VOCAL_RANGE[1]}, legato phrases of 2-8 s separated by rests, pitch-bend
scoops/slides/falls and vibrato, modulation and expression swells); odd indices are
accompaniment only (drums, bass, chord comping, sometimes a pad). No voices or choir patches.

Licences:
- The MIDI and the audio are generated by the script; like vocalfront they are under the MIT licence.
- The sounds come from the Fluid (R3) General MIDI soundfont, FluidR3_GM.sf2 by Frank Wen
  (Copyright 2000-2002, 2008 Frank Wen; 2008 Toby Smithe), Debian package fluid-soundfont-gm.
  Its Debian copyright file quotes the upstream README: "I hereby release Fluid under the MIT
  license, as described in COPYING." and gives the MIT licence text (the Debian packaging itself
  is GPL-2+). If another soundfont was used (see above), its own licence applies instead.
- fluidsynth (LGPL-2.1) is only the renderer; its licence does not cover the rendered audio.

Columns: file, seed, seconds, style, tempo (BPM), meter, key, lead (GM program, 0-based), band programs
"""
    return header + "\n".join(rows) + "\n"


def readme_row(name: str, piece: Piece, seconds: float) -> str:
    """One README line for a file."""
    lead = f"{piece.lead.program} {piece.lead.name}" if piece.lead else "none (accompaniment only)"
    band = ", ".join(f"{part}={program}" for part, program in piece.programs.items())
    return (f"{name}.flac\tseed={piece.seed}\t{seconds:.1f}s\t{piece.style}\t{piece.tempo}\t"
            f"{piece.beats_per_bar}/4\t{NOTE_NAMES[piece.key]}\tlead={lead}\t{band}")


def missing_tool(soundfont: Path) -> str | None:
    """A one-line message naming what is missing (mido, fluidsynth, the soundfont), or None."""
    if mido is None:
        return "mido is not installed: pip install mido"
    if shutil.which("fluidsynth") is None:
        return "fluidsynth is not installed: apt-get install fluidsynth (or your system's package)"
    if not soundfont.is_file():
        return (f"soundfont {soundfont} not found: apt-get install fluid-soundfont-gm, "
                "or pass --soundfont PATH to a General MIDI .sf2")
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="output folder")
    parser.add_argument("--minutes", type=float, default=40.0, help="total length to render (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    parser.add_argument("--soundfont", type=Path, default=DEFAULT_SOUNDFONT,
                        help=f"General MIDI .sf2 (default {DEFAULT_SOUNDFONT})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate and render pieces until ``--minutes`` of audio exist in DEST; write README.txt."""
    args = parse_args(argv)
    problem = missing_tool(args.soundfont)
    if problem:
        print(f"render_midi_negatives: {problem}", file=sys.stderr)
        return 2
    args.dest.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    total, index = 0.0, 0
    while total < args.minutes * 60:
        piece = generate_piece(piece_seed(args.seed, index), lead_for(index))
        name = file_name(index, args.seed, piece)
        out = args.dest / f"{name}.flac"
        seconds = piece.seconds + TAIL_SECONDS
        if out.exists():
            seconds = sf.info(out).duration
        else:
            seconds = len(render(piece_to_midi(piece), args.soundfont, seconds, out)) / SAMPLE_RATE
            print(f"{out.name}: {seconds:.1f} s", flush=True)
        rows.append(readme_row(name, piece, seconds))
        total += seconds
        index += 1
    (args.dest / "README.txt").write_text(readme_text(rows, args.seed, args.minutes, args.soundfont))
    print(f"{index} files, {total / 60:.1f} min in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
