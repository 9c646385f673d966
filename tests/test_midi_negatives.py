"""scripts/render_midi_negatives.py: the generated MIDI (pure Python) and, with fluidsynth, the rendering."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("mido")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "render_midi_negatives.py"


def _load_script():
    """Import the script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("render_midi_negatives", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


rmn = _load_script()
SEEDS = range(24)
HAVE_FLUIDSYNTH = shutil.which("fluidsynth") is not None and rmn.DEFAULT_SOUNDFONT.is_file()


def _lead(seed: int):
    """A lead instrument for a test seed (cycling through the set)."""
    return rmn.LEADS[seed % len(rmn.LEADS)]


def _messages(piece) -> list[tuple[int, str]]:
    """Every (tick, message) of a piece as comparable text."""
    return [(tick, str(message)) for events in piece.tracks.values() for tick, message in events]


def test_deterministic_for_a_seed() -> None:
    for seed in (0, 7):
        first, second = rmn.generate_piece(seed, _lead(seed)), rmn.generate_piece(seed, _lead(seed))
        assert _messages(first) == _messages(second)
        assert (first.style, first.tempo, first.lead) == (second.style, second.tempo, second.lead)
    assert _messages(rmn.generate_piece(0, rmn.LEADS[0])) != _messages(rmn.generate_piece(1, rmn.LEADS[0]))


def test_leads_alternate_with_accompaniment_and_cover_the_set() -> None:
    leads = [rmn.lead_for(index) for index in range(2 * len(rmn.LEADS))]
    assert leads[1::2] == [None] * len(rmn.LEADS)
    assert {lead.program for lead in leads[::2]} == rmn.LEAD_PROGRAMS


def test_melody_in_vocal_range_and_lead_is_voice_like() -> None:
    low, high = rmn.VOCAL_RANGE
    assert (low, high) == (48, 79)
    assert 78 not in rmn.LEAD_PROGRAMS  # no whistle
    assert not rmn.LEAD_PROGRAMS & {52, 53, 54, 85, 91}  # no choir or voice patches
    for seed in SEEDS:
        piece = rmn.generate_piece(seed, _lead(seed))
        assert piece.lead.program in rmn.LEAD_PROGRAMS
        assert all(piece.lead.low <= note.pitch <= piece.lead.high for note in piece.melody)
        assert piece.melody
        assert all(low <= note.pitch <= high for note in piece.melody)
        programs = [msg.program for _, msg in piece.tracks["lead"] if msg.type == "program_change"]
        assert programs == [piece.lead.program]
        lead_notes = {msg.note for _, msg in piece.tracks["lead"] if msg.type == "note_on"}
        assert all(low <= note <= high for note in lead_notes)


def test_lead_uses_pitch_bend_and_expression() -> None:
    piece = rmn.generate_piece(3, rmn.LEADS[3])
    kinds = {(msg.type, getattr(msg, "control", None)) for _, msg in piece.tracks["lead"]}
    assert ("pitchwheel", None) in kinds
    assert ("control_change", 11) in kinds


def test_phrases_are_2_to_8_seconds_separated_by_rests() -> None:
    for seed in SEEDS:
        piece = rmn.generate_piece(seed, _lead(seed))
        spt = piece.seconds_per_tick
        assert piece.phrases
        for start, end in piece.phrases:
            assert 2.0 <= (end - start) * spt <= 8.0
            notes = [n for n in piece.melody if start <= n.start < end]
            assert notes[0].start == start and notes[-1].start + notes[-1].length == end
        for (_, end), (start, _) in zip(piece.phrases, piece.phrases[1:], strict=False):
            assert (start - end) * spt >= rmn.REST_SECONDS[0]
            assert not [n for n in piece.melody if n.start < start and n.start + n.length > end]


def test_accompaniment_only_and_lengths() -> None:
    for seed in SEEDS:
        piece = rmn.generate_piece(seed, None)
        assert piece.lead is None and "lead" not in piece.tracks and not piece.melody
        assert {"drums", "bass", "comp"} <= set(piece.tracks)
        assert rmn.MIN_SECONDS <= piece.seconds + rmn.TAIL_SECONDS <= rmn.MAX_SECONDS
        assert piece.style in rmn.STYLE_NAMES


def test_midi_file_round_trip(tmp_path: Path) -> None:
    import mido

    piece = rmn.generate_piece(5, rmn.LEADS[5])
    path = tmp_path / "piece.mid"
    rmn.piece_to_midi(piece).save(path)
    loaded = mido.MidiFile(path)
    assert abs(loaded.length - piece.seconds) < 1.0
    assert len(loaded.tracks) == 1 + len(piece.tracks)


def test_missing_soundfont_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = rmn.main([str(tmp_path / "out"), "--minutes", "0.1", "--soundfont", str(tmp_path / "no.sf2")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and ("soundfont" in err or "fluidsynth" in err)


@pytest.mark.skipif(not HAVE_FLUIDSYNTH, reason="needs fluidsynth and FluidR3_GM.sf2")
def test_render_writes_normalised_flac_and_readme(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    assert rmn.main([str(tmp_path), "--minutes", "0.5", "--seed", "1"]) == 0
    files = sorted(tmp_path.glob("*.flac"))
    assert files
    for path in files:
        audio, rate = sf.read(path)
        assert rate == rmn.SAMPLE_RATE
        assert rmn.MIN_SECONDS <= len(audio) / rate <= rmn.MAX_SECONDS
        assert abs(20 * np.log10(np.max(np.abs(audio))) - rmn.PEAK_DBFS) < 0.2
        assert np.sqrt(np.mean(audio**2)) > 0.01
    readme = (tmp_path / "README.txt").read_text()
    assert "MIT" in readme and all(path.name in readme for path in files)
