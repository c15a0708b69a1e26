"""Theta and embedding normalisation: schema learning transform, z-score, std rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import PARAM_NAMES, PARAMS, SCHEMA_VERSION, TIMBRE_NAMES, Theta, to_learning
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
@given(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64),
        min_size=len(PARAMS),
        max_size=len(PARAMS),
    )
)
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
    assert len(PARAMS) == 89


def test_a_timbre_normaliser_names_its_columns_and_fills_the_rest():
    cols = [PARAM_NAMES.index(n) for n in TIMBRE_NAMES]
    theta = random_theta(50)
    norm = ThetaNormaliser.fit(theta[:, cols], TIMBRE_NAMES)
    assert norm.size == len(TIMBRE_NAMES) and norm.names == TIMBRE_NAMES
    x = norm.encode(theta[:, cols])
    assert np.allclose(norm.decode(x), theta[:, cols])
    full = norm.full(norm.decode(x))
    assert full.shape == (50, len(PARAM_NAMES))
    assert np.allclose(full[:, cols], theta[:, cols])
    assert (full[:, PARAM_NAMES.index("pitch_midi")] == 60).all()  # the default
    again = ThetaNormaliser.from_dict(norm.to_dict())
    assert again.names == TIMBRE_NAMES and np.array_equal(again.mean, norm.mean)


def test_a_schema_1_normaliser_still_loads():
    """Checkpoints of theta schema 1 name its 10 parameters; version 2 kept them all."""
    v1 = list(PARAM_NAMES[:10])
    d = {"schema_version": 1, "names": v1, "mean": [0.0] * 10, "std": [1.0] * 10}
    norm = ThetaNormaliser.from_dict(d)
    assert list(norm.names) == v1
    full = norm.full(np.zeros((1, 10)) + np.array([60, 100, 16000, 4, 0.1, 0.2, 0.5, 0.3, 2, 1]))
    assert full[0, PARAM_NAMES.index("noise_level")] == 0.0  # v2's additions at their defaults
    with pytest.raises(CheckpointError, match="unknown_param"):
        ThetaNormaliser.from_dict({**d, "names": v1[:-1] + ["unknown_param"]})
