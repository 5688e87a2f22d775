"""The examples in the docstrings run and say what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "poptrain.space",
    "poptrain.space.categorical",
    "poptrain.space.dimensions",
    "poptrain.space.numeric",
    "poptrain.space.space",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
