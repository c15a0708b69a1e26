"""Theta and embedding normalisation: schema learning transform, z-score, std rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import PARAM_NAMES, PARAMS, SCHEMA_VERSION, Theta, to_learning
from model import CheckpointError, Normaliser, ThetaNormaliser
from tests.model.conftest import random_theta


def test_fit_z_scores_and_constant_columns_get_std_one():
    data = np.array([[1.0, 5.0], [3.0, 5.0]])
    norm = Normaliser.fit(data)
    assert norm.mean.tolist() == [2.0, 5.0]
    assert norm.std.tolist() == [1.0, 1.0]  # std 1, and 0 -> 1 for the constant column
    assert np.allclose(norm.transform(data), [[-1.0, 0.0], [1.0, 0.0]])
    assert np.allclose(norm.inverse(norm.transform(data)), data)


def test_theta_normaliser_uses_the_schema_learning_space():
    theta = random_theta(100)
    norm = ThetaNormaliser.fit(theta)
    x = norm.encode(theta)
    learn = to_learning(theta)
    assert np.allclose(x, (learn - learn.mean(0)) / np.where(learn.std(0) < 1e-6, 1, learn.std(0)))
    # sample_rate and duration_s are constant in the data: centred, std kept at 1
    assert norm.std[PARAM_NAMES.index("sample_rate")] == 1.0
    assert norm.std[PARAM_NAMES.index("duration_s")] == 1.0
    assert np.allclose(norm.decode(x), theta)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=10, max_size=10))
def test_decode_always_gives_a_valid_theta(values):
    norm = ThetaNormaliser.fit(random_theta(20))
    physical = norm.decode(np.array(values))
    Theta(physical.tolist())  # validates: in range, finite


def test_dict_round_trip_and_errors():
    norm = ThetaNormaliser.fit(random_theta(10))
    d = norm.to_dict()
    assert d["schema_version"] == SCHEMA_VERSION and d["names"] == list(PARAM_NAMES)
    again = ThetaNormaliser.from_dict(d)
    assert np.array_equal(again.mean, norm.mean) and np.array_equal(again.std, norm.std)
    with pytest.raises(CheckpointError, match="parameters"):
        ThetaNormaliser.from_dict({**d, "names": list(reversed(PARAM_NAMES))})
    with pytest.raises(CheckpointError, match="std > 0"):
        Normaliser.from_dict({"mean": [0.0], "std": [0.0]})
    with pytest.raises(CheckpointError, match="has 1 features, expected 3"):
        Normaliser.from_dict({"mean": [0.0], "std": [1.0]}, size=3)


def test_fit_refuses_bad_data():
    with pytest.raises(ValueError, match="NaN"):
        Normaliser.fit(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="shape"):
        ThetaNormaliser.fit(np.zeros((3, 4)))
    assert len(PARAMS) == 10
