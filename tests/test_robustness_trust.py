"""Trust (issue 18): a user's files are never lost, two runs never mix, memory stays bounded on
any input and no value gives a traceback. Each test covers one case of
:data:`robustness_corpus.TRUST_CASES` and records it for the reliability report."""

from __future__ import annotations

import pytest
from robustness_corpus import TRUST_CASES
from test_process_lock import hold_in_another_process
from test_training import make_tiny_mir1k, tiny_config

from vocalfront.errors import VocalfrontError
from vocalfront.training import prepare_run, train
from vocalfront.training.trainer import LOCK_FILE


@pytest.fixture
def trust_case(record_property):
    """Record which issue-18 case a test covers: ``trust_case(number)``."""
    def record(number: int) -> None:
        assert number in TRUST_CASES
        record_property("trust_case", number)
    return record


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_tiny_mir1k(tmp_path_factory.mktemp("mir1k"))


def folder_contents(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize("files", [{"config.json": b"my notes\n", "model.pt": b"mine"},
                                   {"config.json": b'{"train": {"lr": "x"}}'},
                                   {"model.pt": b"mine", "metrics.csv": b"a,b\n"}],
                         ids=["text-config", "foreign-config", "no-config"])
@pytest.mark.parametrize("resume", [None, False])
def test_training_never_writes_into_a_folder_that_is_not_a_run(files, resume, tiny_data, tmp_path,
                                                               trust_case):
    trust_case(1)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(VocalfrontError, match="not a vocalfront run folder"):
        train(tiny_config(tiny_data), tmp_path, resume=resume, progress=False)
    assert folder_contents(tmp_path) == files


def test_a_folder_with_another_runs_config_but_no_state_is_refused(tiny_data, tmp_path, trust_case):
    trust_case(1)
    prepare_run(tiny_config(tiny_data, "train.lr=0.01"), tmp_path)  # a run killed before its first state
    before = folder_contents(tmp_path)
    with pytest.raises(VocalfrontError, match=r"different config \(train.lr differ\)"):
        prepare_run(tiny_config(tiny_data), tmp_path)
    assert folder_contents(tmp_path) == before
    assert prepare_run(tiny_config(tiny_data), tmp_path, resume=False) is None  # asked for


def test_a_second_training_in_a_locked_run_folder_stops_before_touching_it(tiny_data, tmp_path,
                                                                           trust_case):
    trust_case(2)
    holder = hold_in_another_process(tmp_path / LOCK_FILE)
    try:
        with pytest.raises(VocalfrontError, match=f"another training is running in this folder "
                                                  f"\\(process {holder.pid} "):
            train(tiny_config(tiny_data, "train.updates=2"), tmp_path, progress=False)
    finally:
        holder.kill()
        holder.communicate()
    assert [path.name for path in tmp_path.iterdir()] == [LOCK_FILE]
