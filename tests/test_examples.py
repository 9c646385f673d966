"""The Example blocks of the front-end modules' docstrings run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["compression", "design", "filterbank", "mel", "multirate", "registry"]


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_a_front_end_module_give_what_they_show(name):
    module = importlib.import_module(f"vocalfront.frontends.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
