"""MODEL_CARD.md and CHANGELOG.md agree with the packaged model file.

The card's "Stored record" table (between ``<!-- model-record:start -->`` and ``:end -->``) is
read row by row against the file: whoever replaces ``src/vocalfront/pretrained/default.pt`` updates
the table's values (and the version) and these tests say which row is stale.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from vocalfront import __version__
from vocalfront.detector_file import load_detector_file
from vocalfront.postprocessing import PostProcessing
from vocalfront.pretrained import default_model_path
from vocalfront.provenance import file_digest

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "MODEL_CARD.md"
RECORD = re.compile(r"<!-- model-record:start -->(.*?)<!-- model-record:end -->", re.S)
ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|$")


def card_record(text: str) -> dict[str, str]:
    """``key -> value`` text of the card's record table (header and rule rows left out)."""
    block = RECORD.search(text)
    assert block, "MODEL_CARD.md has no <!-- model-record:start --> ... :end --> table"
    rows = [ROW.match(line.strip()) for line in block.group(1).strip().splitlines()]
    assert all(rows), "every line of the record is a '| key | value |' row"
    return {m.group(1): m.group(2) for m in rows if m and m.group(1) != "key" and "---" not in m.group(1)}


def model_value(key: str, path: Path) -> Any:
    """What the model file says for a key of the card's record."""
    if key == "file sha256":
        return file_digest(path)
    if key == "vocalfront version":
        return __version__
    extra = load_detector_file(path).record
    settings = PostProcessing.from_record(extra, str(path)).to_record()
    if key in settings:
        return settings[key]
    value: Any = extra
    for part in key.split("."):
        assert isinstance(value, dict) and part in value, f"the model's record has no {key!r}"
        value = value[part]
    return value


def agrees(card_text: str, value: Any) -> bool:
    """A number printed with ``d`` decimals agrees within half a unit of its last digit."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return card_text == str(value)
    decimals = len(card_text.partition(".")[2])
    return abs(float(card_text) - value) <= 0.5 * 10.0 ** -decimals + 1e-12


def test_card_record_rows_round_their_numbers_to_the_printed_decimals():
    assert agrees("0.343", 0.3428) and not agrees("0.370", 0.3428)
    assert agrees("56", 56) and not agrees("55", 56)
    assert agrees("b3d4", "b3d4") and not agrees("b3d4", "b3d5")


@pytest.mark.skipif(not default_model_path().is_file(), reason="no packaged model")
def test_every_row_of_the_model_cards_record_matches_the_packaged_model():
    record = card_record(CARD.read_text(encoding="utf-8"))
    assert {"file sha256", "vocalfront version", "threshold", "median_filter", "min_duration",
            "min_gap"} <= set(record)
    stale = {key: (text, model_value(key, default_model_path())) for key, text in record.items()
             if not agrees(text, model_value(key, default_model_path()))}
    assert not stale, f"MODEL_CARD.md rows that disagree with the model (card, model): {stale}"


def test_the_card_states_the_models_threshold_wherever_it_names_the_decision():
    text = CARD.read_text(encoding="utf-8")
    threshold = card_record(text)["threshold"]
    decision = next(line for line in text.splitlines() if line.startswith("- Decision:"))
    assert f"threshold {threshold}" in decision


def test_the_changelog_has_a_section_for_this_version():
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert __version__ in headings
