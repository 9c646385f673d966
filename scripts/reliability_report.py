#!/usr/bin/env python3
"""Run the robustness tests and write what they found into ``docs/reliability.md``.

    python scripts/reliability_report.py                  # robustness tests + training resume
    python scripts/reliability_report.py --no-training    # without tests/test_resume.py (~30 s less)

Runs ``tests/test_robustness_{inputs,properties,interrupts,trust}.py`` (and ``tests/test_resume.py``)
with pytest in this process, collecting each test's outcome and the properties it records
(``record_property``: corpus case, expected and actual outcome, hypothesis examples, kill points,
long-file time and memory). The counts replace the part of the document between the two
``reliability-report`` markers (appended if absent) and are printed. Exit status: 0 when every
test passed or failed as expected (strict xfail), 1 otherwise - the document is written either way.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
INPUTS, PROPERTIES, INTERRUPTS, TRUST = (f"tests/test_robustness_{name}.py"
                                         for name in ("inputs", "properties", "interrupts", "trust"))
TRAINING = "tests/test_resume.py"
TRAINING_KILL_POINTS = {
    "test_a_run_stopped_by_an_exception_resumes_to_the_same_weights":
        "exception after update 7, resumed to identical weights",
    "test_a_damaged_latest_checkpoint_is_skipped_with_a_warning":
        "exception after update 11, newest checkpoint truncated: the previous one is used",
    "test_no_readable_checkpoint_is_an_error_not_a_silent_restart":
        "exception after update 5, every checkpoint damaged: an error, no silent restart",
    "test_a_killed_training_process_resumes_to_the_same_weights":
        "SIGKILL at a random moment after the first checkpoint, resumed to identical weights",
}
"""Interruptions of training in tests/test_resume.py (test name -> what is interrupted)."""
START = "<!-- reliability-report:start -->"
END = "<!-- reliability-report:end -->"


@dataclass
class Result:
    """One test: ``outcome`` is passed, failed, error, skipped, xfailed or xpassed."""

    nodeid: str
    outcome: str = "passed"
    properties: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def file(self) -> str:
        return self.nodeid.split("::")[0]

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[1].split("[")[0]

    @property
    def ok(self) -> bool:
        return self.outcome in ("passed", "xfailed")


class Collector:
    """pytest plugin: the outcome and recorded properties of every test."""

    def __init__(self) -> None:
        self.results: dict[str, Result] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.results.setdefault(report.nodeid, Result(report.nodeid))
        result.properties.update(dict(report.user_properties))
        if hasattr(report, "wasxfail"):
            result.outcome = "xfailed" if report.skipped else "xpassed"
            result.reason = report.wasxfail
        elif report.failed:
            result.outcome = "failed" if report.when == "call" else "error"
        elif report.skipped and result.outcome == "passed":
            result.outcome = "skipped"


def run_tests(files: list[str]) -> tuple[list[Result], float]:
    collector = Collector()
    start = time.perf_counter()
    pytest.main([*files, "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}"], plugins=[collector])
    return list(collector.results.values()), time.perf_counter() - start


def _status(results: list[Result]) -> str:
    bad = [r for r in results if not r.ok]
    return f"{len(results) - len(bad)}/{len(results)} pass" if results else "not run"


def _inputs_rows(results: list[Result]) -> tuple[list[str], list[str]]:
    """Summary rows and the per-case table of the bad-input tests."""
    api = [r for r in results if r.name == "test_api_gives_a_correct_result_or_a_one_line_error"]
    cli = [r for r in results if r.name == "test_cli_writes_labels_or_reports_one_line_naming_the_file"]
    batch = [r for r in results if r.name.startswith("test_a_batch_of_the_whole_corpus")]
    long = [r for r in results if r.name.startswith("test_a_three_hour_silent_file")]
    expected = Counter(r.properties.get("expected") for r in api)
    rows = [f"| Bad-input cases (generated corpus) | {len(api)}: {expected['result']} must give a "
            f"result, {expected['error']} an error, {expected['result or error']} either | "
            f"Python API {_status(api)}; CLI {_status(cli)} |"]
    for result in batch:
        props = result.properties
        rows.append(f"| Batch of every regular case in one folder | {props.get('batch_files', '?')} files, "
                    f"{props.get('batch_failed', '?')} reported failed | {_status([result])} |")
    for result in long:
        props = result.properties
        rows.append(f"| 3-hour silent file (8 kHz, 173 MB) through the CLI | "
                    f"{props.get('long_file_seconds', '?')} s, peak memory "
                    f"+{props.get('long_file_rss_growth_mb', '?')} MB | {_status([result])} |")
    cases = ["| Case | Must give | Got | Test |", "|---|---|---|---|"]
    cases += [f"| `{_cell(r.properties.get('bad_input_case', r.nodeid))}` | "
              f"{r.properties.get('expected', '?')} | {_cell(r.properties.get('got', '-'))} | "
              f"{r.outcome} |" for r in api]
    return rows, cases


def _cell(text: str) -> str:
    """``text`` on one line of a table cell (``|`` escaped, undecodable file names too)."""
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


def _property_rows(results: list[Result]) -> list[str]:
    checked = [r for r in results if "examples" in r.properties]
    examples = sum(int(r.properties["examples"]) for r in checked)
    return [f"| Front-end properties (hypothesis) | {len(checked)} (property x front-end), "
            f"{examples} examples | {_status(checked)} |"]


def _trust_rows(results: list[Result]) -> list[str]:
    """One row per issue-18 case (``trust_case`` property), and the 2-hour file's peak memory."""
    sys.path.insert(0, str(ROOT / "tests"))
    from robustness_corpus import TRUST_CASES

    rows = []
    for number, what in TRUST_CASES.items():
        covering = [r for r in results if str(r.properties.get("trust_case")) == str(number)]
        rows.append(f"| Issue 18 case {number}: {what} | {len(covering)} tests | {_status(covering)} |")
    for result in results:
        if "two_hour_peak_mb" in result.properties:
            props = result.properties
            rows.append(f"| 2-hour 44.1 kHz stereo WAV (1.27 GB) through the CLI | "
                        f"{props['two_hour_seconds']} s, peak memory {props['two_hour_peak_mb']} MB "
                        f"(limit 1536 MB) | {_status([result])} |")
    return rows


def _kill_rows(interrupts: list[Result], training: list[Result] | None) -> list[str]:
    points = sum(int(r.properties.get("kill_points", 0)) for r in interrupts)
    rows = [f"| Kill points, batch detection (SIGKILL, SIGINT) | {points} | {_status(interrupts)} |"]
    if training is not None:
        listed = [r for r in training if r.name in TRAINING_KILL_POINTS]
        rows.append(f"| Kill points, training (`{TRAINING}`) | {len(listed)} of "
                    f"{len(TRAINING_KILL_POINTS)} listed | {_status(listed)} |")
    return rows


def summary_lines(results: list[Result], seconds: float, with_training: bool) -> list[str]:
    """The run's one-line total and the counts table (also what goes into the README)."""
    by_file: dict[str, list[Result]] = {}
    for result in results:
        by_file.setdefault(result.file, []).append(result)
    totals = Counter(r.outcome for r in results)
    known = [r for r in results if r.outcome in ("xfailed", "xpassed")]
    summary, _ = _inputs_rows(by_file.get(INPUTS, []))
    training = by_file.get(TRAINING, []) if with_training else None
    return [
        f"Generated by `python scripts/reliability_report.py` on {date.today().isoformat()} "
        f"(Python {platform.python_version()}, {platform.machine()}): "
        + ", ".join(f"{count} {outcome}" for outcome, count in sorted(totals.items()))
        + f" in {seconds:.0f} s.",
        "",
        "| What | Count | Result |",
        "|---|---|---|",
        *summary,
        *_property_rows(by_file.get(PROPERTIES, [])),
        *_kill_rows(by_file.get(INTERRUPTS, []), training),
        *_trust_rows(by_file.get(TRUST, [])),
        f"| Known failures (`xfail(strict=True)`, listed below) | {len(known)} | "
        f"{sum(r.outcome == 'xfailed' for r in known)} still fail as recorded |",
        "",
    ]


def render(results: list[Result], seconds: float, with_training: bool) -> str:
    by_file: dict[str, list[Result]] = {}
    for result in results:
        by_file.setdefault(result.file, []).append(result)
    known = [r for r in results if r.outcome in ("xfailed", "xpassed")]
    _, cases = _inputs_rows(by_file.get(INPUTS, []))
    training = by_file.get(TRAINING, []) if with_training else None
    lines = [START, "## Latest run", "", *summary_lines(results, seconds, with_training)]
    failing = [r for r in results if not r.ok]
    if failing:
        lines += ["**Failing:**", "", *(f"- `{r.nodeid}` ({r.outcome})" for r in failing), ""]
    for reason in dict.fromkeys(r.reason for r in known):
        lines += [f"Known failure (a bug to fix; tests marked `xfail(strict=True)`): {reason}", "",
                  *(f"- `{r.nodeid}` ({r.outcome})" for r in known if r.reason == reason), ""]
    if training is not None:
        lines += [f"Training interruptions in `{TRAINING}`:", ""]
        outcome = {r.name: r.outcome for r in training}
        lines += [f"- {what} (`{name}`: {outcome.get(name, 'not found')})"
                  for name, what in TRAINING_KILL_POINTS.items()]
        lines.append("")
    lines += ["### Every bad-input case", "", *cases, "", END]
    return "\n".join(lines) + "\n"


def write_section(document: Path, section: str) -> None:
    text = document.read_text(encoding="utf-8") if document.exists() else ""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    document.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-training", action="store_true", help=f"leave out {TRAINING}")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "reliability.md",
                        help="markdown file to update (default: docs/reliability.md)")
    parser.add_argument("--readme", type=Path, help="also put the counts table into this README's "
                        "<!-- reliability:start --> ... <!-- reliability:end --> block")
    args = parser.parse_args(argv)
    files = [INPUTS, PROPERTIES, INTERRUPTS, TRUST] + ([] if args.no_training else [TRAINING])
    results, seconds = run_tests([str(ROOT / file) for file in files])
    for result in results:  # node ids relative to the repository, whatever the working directory
        result.nodeid = result.nodeid.removeprefix(f"{ROOT}/")
    section = render(results, seconds, not args.no_training)
    write_section(args.doc, section)
    if args.readme:
        block = "\n".join(summary_lines(results, seconds, not args.no_training))
        text = args.readme.read_text(encoding="utf-8")
        pattern = re.compile(r"(<!-- reliability:start -->\n).*?(<!-- reliability:end -->)", re.DOTALL)
        args.readme.write_text(pattern.sub(lambda m: m.group(1) + block + "\n" + m.group(2), text),
                               encoding="utf-8")
    print(section, end="")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
