"""The docstring examples in model/ run as doctests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["model.errors", "model.flow", "model.normalise", "model.encoders", "model.library", "model.predictor"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
