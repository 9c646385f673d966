"""Collecting audio files, sharding them, and running a batch that survives failures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vocalfront.batch import (
    BatchReport,
    check_unique_outputs,
    collect_audio_files,
    parse_shard,
    run_batch,
    shard,
)
from vocalfront.errors import AudioError, VocalfrontError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folders_are_searched_recursively_for_audio_extensions_only(tmp_path: Path):
    expected = [
        touch(tmp_path / "a.wav"),
        touch(tmp_path / "b.FLAC"),
        touch(tmp_path / "sub" / "deeper" / "c.mp3"),
        touch(tmp_path / "sub" / "d.aif"),
    ]
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "sub" / "._c.mp3")
    touch(tmp_path / ".cache" / "e.wav")
    (tmp_path / "folder.wav").mkdir()
    assert collect_audio_files([tmp_path]) == sorted(expected)


def test_named_files_are_taken_whatever_their_extension_and_listed_once(tmp_path: Path):
    song = touch(tmp_path / "music" / "song.wav")
    odd = touch(tmp_path / "odd.audio")
    files = collect_audio_files([odd, tmp_path / "music", song, str(song)])
    assert files == sorted([song, odd])


def test_a_missing_path_is_a_clear_error(tmp_path: Path):
    with pytest.raises(VocalfrontError, match=r"missing\.wav: no such file or folder"):
        collect_audio_files([tmp_path / "missing.wav"])


def test_finding_no_audio_is_a_clear_error(tmp_path: Path):
    touch(tmp_path / "readme.txt")
    with pytest.raises(VocalfrontError, match="no audio files found"):
        collect_audio_files([tmp_path])


FILES = [Path(f"dir{k % 3}/song{k:02d}.wav") for k in range(11)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 11, 20])
def test_shards_are_a_disjoint_cover_of_the_files(count: int):
    shards = [shard(FILES, index, count) for index in range(count)]
    together = [file for part in shards for file in part]
    assert sorted(together) == sorted(FILES)
    assert len(together) == len(set(together))


def test_shards_do_not_depend_on_the_order_files_were_given():
    shuffled = FILES.copy()
    random.Random(0).shuffle(shuffled)
    for index in range(3):
        assert shard(shuffled, index, 3) == shard(FILES, index, 3)


def test_file_k_in_sorted_order_goes_to_shard_k_mod_count():
    ordered = sorted(FILES)
    assert shard(FILES, 1, 4) == [ordered[1], ordered[5], ordered[9]]


def test_shard_specs_are_parsed_as_index_slash_count():
    assert parse_shard("0/1") == (0, 1)
    assert parse_shard(" 3 / 4 ") == (3, 4)


@pytest.mark.parametrize("spec", ["4/4", "1/0", "-1/3", "1", "a/b", "1/2/3", ""])
def test_bad_shard_specs_are_rejected_with_the_spec_named(spec: str):
    with pytest.raises(VocalfrontError, match="shard"):
        parse_shard(spec)


def test_shard_rejects_an_index_outside_the_count():
    with pytest.raises(VocalfrontError, match="index must be 0 to 1"):
        shard(FILES, 2, 2)


def fail_on(bad: dict[str, Exception], seen: list[Path]):
    def process(file: Path) -> None:
        seen.append(file)
        if file.name in bad:
            raise bad[file.name]

    return process


def test_a_batch_goes_on_after_failures_and_reports_them():
    files = [Path("a.wav"), Path("b.wav"), Path("c.wav"), Path("d.wav")]
    bad = {"b.wav": AudioError("b.wav", "cannot decode"), "c.wav": RuntimeError("bug\nhere")}
    seen: list[Path] = []
    report = run_batch(files, fail_on(bad, seen), progress=False)
    assert seen == files
    assert report.done == [Path("a.wav"), Path("d.wav")]
    assert report.failed == ["b.wav: cannot decode", "c.wav: RuntimeError: bug here"]
    assert report.exit_status() == 1
    assert report.summary().splitlines() == [
        "2 done, 0 skipped (outputs exist), 2 failed",
        "  b.wav: cannot decode",
        "  c.wav: RuntimeError: bug here",
    ]


def test_os_errors_are_reported_with_the_file_named():
    report = run_batch(
        [Path("x.wav")], fail_on({"x.wav": PermissionError("denied")}, []), progress=False
    )
    assert report.failed == ["x.wav: denied"]


def test_a_clean_batch_exits_zero():
    report = run_batch([Path("a.wav")], lambda file: None, progress=True)
    assert (report.done, report.failed, report.exit_status()) == ([Path("a.wav")], [], 0)


def test_an_interrupt_stops_the_batch():
    process = fail_on({"a.wav": KeyboardInterrupt()}, [])
    with pytest.raises(KeyboardInterrupt):
        run_batch([Path("a.wav"), Path("b.wav")], process, progress=False)


def test_skip_existing_skips_files_whose_outputs_exist():
    files = [Path("a.wav"), Path("b.wav"), Path("c.wav")]
    seen: list[Path] = []
    exists = {Path("b.wav")}.__contains__
    report = run_batch(files, fail_on({}, seen), exists, skip_existing=True, progress=False)
    assert seen == report.done == [Path("a.wav"), Path("c.wav")]
    assert report.skipped == [Path("b.wav")]
    assert report.exit_status() == 0


def test_without_skip_existing_every_file_is_processed():
    files = [Path("a.wav"), Path("b.wav")]
    report = run_batch(
        files, lambda file: None, lambda file: True, skip_existing=False, progress=False
    )
    assert (report.done, report.skipped) == (files, [])


def test_skip_existing_needs_a_way_to_tell_which_outputs_exist():
    with pytest.raises(ValueError, match="outputs_exist"):
        run_batch([Path("a.wav")], lambda file: None, skip_existing=True)


def test_an_empty_report_summarises_to_zero_counts():
    assert BatchReport().summary() == "0 done, 0 skipped (outputs exist), 0 failed"


def test_inputs_that_would_write_the_same_output_are_rejected():
    def output_for(file: Path) -> Path:
        return Path("out") / (file.stem + ".lab")

    check_unique_outputs([Path("a/one.wav"), Path("a/two.wav")], output_for)
    with pytest.raises(VocalfrontError, match=r"a/song\.wav and b/song\.flac would both write"):
        check_unique_outputs([Path("a/song.wav"), Path("b/song.flac")], output_for)


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os
    import stat

    from vocalfront.fileio import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644
