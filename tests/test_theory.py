"""The theory check: feature comparison, operator-norm bounds, and the command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalfront.cli import main
from vocalfront.cli.theory import MAX_HOP, MIN_HOP
from vocalfront.frontends import FilterBank
from vocalfront.theory import compare_features, operator_bounds, reference_signals


def test_identical_features_have_zero_error_and_a_scaled_copy_its_relative_error():
    mel = torch.rand(5, 40, dtype=torch.float64) + 0.1
    assert compare_features(mel, mel)[:2] == (0.0, 0.0)
    relative, _, bands = compare_features(mel, 1.1 * mel)
    assert relative == pytest.approx(0.1)
    np.testing.assert_allclose(bands, 0.1)


@pytest.fixture(scope="module")
def small_banks() -> dict[str, FilterBank]:
    layout = {"n_bands": 6, "fmin": 300.0, "fmax": 3000.0}
    return {name: FilterBank(averaging=averaging, **layout)
            for name, averaging in (("fb", "hann2"), ("fb-noavg", "none"))}


def test_operator_bounds_are_small_with_averaging_and_large_without(small_banks):
    with_averaging = operator_bounds(small_banks["fb"], domain=2048, grid=8192)
    without = operator_bounds(small_banks["fb-noavg"], domain=2048, grid=8192)
    assert with_averaging.shape == (6,)
    assert with_averaging.max() < 0.1
    assert without.min() > 3 * with_averaging.max()


def test_reference_signals_are_finite_and_of_the_requested_length():
    signals = reference_signals(seconds=1.5)
    assert set(signals) == {"white noise", "chirp", "harmonic tones"}
    for audio in signals.values():
        assert audio.shape == (33075,) and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_theory_command_prints_the_table_for_every_design(capsys):
    assert main(["theory", "--seconds", "2", "--hops", "315", "--no-bounds"]) == 0
    out = capsys.readouterr().out
    for design in ("| fb | 315 |", "| fb-gauss | 315 |", "| fb-noavg | 315 |"):
        assert design in out
    assert "worst bands" in out


def test_theory_command_measures_at_the_shortest_and_longest_hops_without_the_default_one(
        capsys, tmp_path):
    # the worst bands and the plot were of hop 315 only: without it, an IndexError
    plot = tmp_path / "theory.png"
    assert main(["theory", "--seconds", "1", "--hops", str(MAX_HOP), str(MIN_HOP), "--no-bounds",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert f"| fb | {MAX_HOP} |" in out and f"| fb | {MIN_HOP} |" in out
    assert "fb: worst bands: " in out and "nan" not in out  # two frames at the longest hop
    assert plot.stat().st_size > 0


def test_measuring_shows_progress_when_asked(capsys):
    from vocalfront.theory import measure_signals, reference_signals

    signals = dict(list(reference_signals(1.0).items())[:1])
    measure_signals(signals, designs=["fb"], hops=[315], progress=True)
    assert "features" in capsys.readouterr().err
    measure_signals(signals, designs=["fb"], hops=[315])
    assert capsys.readouterr().err == ""
