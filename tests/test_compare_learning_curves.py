"""scripts/compare_learning_curves.py: two runs' validations side by side."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_learning_curves.py"


def _load_script():
    """Import the script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("compare_learning_curves", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


compare = _load_script()


def fake_run(folder: Path, rows: dict[int, tuple[float, float, float]]) -> Path:
    """A run folder whose log holds one validation per ``update: (loss, error, auroc)``."""
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    entries = [{"event": "start", "update": 0}]
    entries += [{"event": "validation", "update": update, "train_loss": loss,
                 "valid": {"error": error, "auroc": auroc}} for update, (loss, error, auroc) in rows.items()]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return folder


def test_rows_are_the_common_updates_in_range_with_second_minus_first(tmp_path, capsys):
    a = fake_run(tmp_path / "a", {250: (0.5, 0.30, 0.80), 500: (0.4, 0.20, 0.90), 750: (0.3, 0.1, 0.95)})
    b = fake_run(tmp_path / "b", {500: (0.41, 0.2125, 0.8975), 750: (0.31, 0.1, 0.96)})
    assert compare.main([str(a), str(b), "--first", "300", "--last", "600", "--names", "bf16", "fp32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| update | loss bf16 | loss fp32 | error % bf16 | error % fp32 |")
    assert lines[2:] == ["| 500 | 0.4000 | 0.4100 | 20.00 | 21.25 | 0.9000 | 0.8975 | +1.25 | -0.0025 |"]


def test_a_folder_that_is_no_run_is_a_one_line_error(tmp_path, capsys):
    a = fake_run(tmp_path / "a", {250: (0.5, 0.3, 0.8)})
    assert compare.main([str(a), str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: not a run folder (no config.json)\n"


def test_runs_without_a_common_validation_are_an_error(tmp_path, capsys):
    a = fake_run(tmp_path / "a", {250: (0.5, 0.3, 0.8)})
    b = fake_run(tmp_path / "b", {500: (0.5, 0.3, 0.8)})
    assert compare.main([str(a), str(b)]) == 2
    assert "no validated update in common" in capsys.readouterr().err
