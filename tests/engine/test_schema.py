import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    PARAM_NAMES,
    PARAMS,
    SCHEMA_VERSION,
    TIMBRE_NAMES,
    Theta,
    ThetaError,
    upgrade_theta_dict,
)
from engine.schema import HELD_NAMES, ONSET_NAMES, from_learning, to_learning

V1_NAMES = (
    "pitch_midi",
    "velocity",
    "sample_rate",
    "duration_s",
    "attack_s",
    "decay_s",
    "sustain",
    "release_s",
    "mod_ratio",
    "mod_index",
)


def test_seed_order_and_version():
    assert SCHEMA_VERSION == 5
    # Versions 2 to 5 append: version 1's ten stay first, in the same order.
    assert PARAM_NAMES[:10] == V1_NAMES
    assert PARAM_NAMES[10:14] == ("index_peak", "index_decay_s", "noise_level", "noise_decay_s")
    assert PARAM_NAMES[14:18] == ("op3_ratio", "op3_index", "op3_peak", "op3_layout")
    assert PARAM_NAMES[18:21] == ("band_level", "band_width", "band_centre")
    assert PARAM_NAMES[21:] == (
        *ONSET_NAMES,
        *HELD_NAMES,
        "onset_s",
        "darken_db",
        "darken_s",
        "env_curve",
    )
    assert ONSET_NAMES == tuple(f"onset_h{k}" for k in range(1, 33))
    assert HELD_NAMES == tuple(f"held_h{k}" for k in range(1, 33))
    assert TIMBRE_NAMES[:17] == (
        "attack_s",
        "decay_s",
        "sustain",
        "release_s",
        "mod_ratio",
        "mod_index",
        "index_peak",
        "index_decay_s",
        "noise_level",
        "noise_decay_s",
        "op3_ratio",
        "op3_index",
        "op3_peak",
        "op3_layout",
        "band_level",
        "band_width",
        "band_centre",
    )
    assert TIMBRE_NAMES[17:] == PARAM_NAMES[21:]


def test_v2_declarations():
    from engine import param

    expect = {
        "index_peak": ("radians", 0.0, 16.0, 0.0, "log", 1.0),
        "index_decay_s": ("s", 0.001, 8.0, 0.3, "log", 1e-3),
        "noise_level": ("amplitude relative to the tone", 0.0, 1.0, 0.0, "log", 0.01),
        "noise_decay_s": ("s", 0.001, 8.0, 0.2, "log", 1e-3),
    }
    for name, (unit, lo, hi, default, scale, offset) in expect.items():
        p = param(name)
        assert (p.unit, p.minimum, p.maximum, p.default, p.scale, p.offset, p.timbre) == (
            unit,
            lo,
            hi,
            default,
            scale,
            offset,
            True,
        )


def test_v3_declarations():
    from engine import param

    expect = {
        "op3_ratio": (0.25, 16.0, 1.0, "log", 0.0),
        "op3_index": (0.0, 16.0, 0.0, "log", 1.0),
        "op3_peak": (0.0, 16.0, 0.0, "log", 1.0),
        "op3_layout": (0.0, 2.0, 0.0, "linear", 0.0),
    }
    for name, (lo, hi, default, scale, offset) in expect.items():
        p = param(name)
        assert (p.minimum, p.maximum, p.default, p.scale, p.offset, p.timbre) == (
            lo,
            hi,
            default,
            scale,
            offset,
            True,
        )


def test_v4_declarations():
    from engine import param

    expect = {
        "band_level": (0.0, 2.0, 0.0, "log", 0.01),
        "band_width": (0.05, 4.0, 0.5, "log", 0.0),
        "band_centre": (0.0, 8.0, 1.0, "linear", 0.0),
    }
    for name, (lo, hi, default, scale, offset) in expect.items():
        p = param(name)
        assert (p.minimum, p.maximum, p.default, p.scale, p.offset, p.timbre) == (
            lo,
            hi,
            default,
            scale,
            offset,
            True,
        )


def test_v3_dict_upgrades_to_a_noise_band_that_is_off():
    v3 = {"op3_index": 2.0, "op3_layout": 1.0, "noise_level": 0.1}
    up = upgrade_theta_dict(v3, 3)
    assert up == v3
    t = Theta.from_dict(up)
    assert t.band_level == 0.0 and t.op3_index == 2.0 and t.op3_layout == 1.0


def test_v2_dict_upgrades_to_a_third_operator_that_is_off():
    v2 = {"attack_s": 0.05, "index_peak": 3.0, "noise_level": 0.1}
    up = upgrade_theta_dict(v2, 2)
    assert up == v2
    t = Theta.from_dict(up)
    assert t.op3_index == 0.0 and t.op3_peak == 0.0 and t.index_peak == 3.0


def test_v1_dict_upgrades_to_defaults_that_are_off():
    v1 = {"attack_s": 0.05, "mod_index": 2.0, "pitch_midi": 64}
    up = upgrade_theta_dict(v1, 1)
    assert up == v1
    t = Theta.from_dict(up)
    assert t.index_peak == 0.0 and t.noise_level == 0.0
    assert t.attack_s == 0.05 and t.mod_index == 2.0


def test_unknown_old_version_is_refused():
    with pytest.raises(ThetaError, match="unknown"):
        upgrade_theta_dict({}, 0)


def test_defaults_are_in_range():
    for p in PARAMS:
        assert p.minimum <= p.default <= p.maximum, p.name


def test_dict_round_trip():
    t = Theta.from_dict({"attack_s": 0.05, "mod_ratio": 3.0})
    assert Theta.from_dict(t.to_dict(), strict=True) == t
    assert t.attack_s == 0.05 and t["mod_ratio"] == 3.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"attack_s": 5.0}, "attack_s must be in range 0..2, got 5"),
        ({"sustain": float("nan")}, "sustain must be a finite number"),
        ({"mod_index": "3"}, "mod_index must be a number"),
        ({"release_s": True}, "release_s must be a number"),
        ({"bogus": 1.0}, "unknown parameter(s) 'bogus'"),
    ],
)
def test_bad_values_name_the_parameter(values, message):
    with pytest.raises(ThetaError) as e:
        Theta.from_dict(values)
    assert message in str(e.value)


def test_strict_requires_every_name():
    with pytest.raises(ThetaError, match="missing parameter"):
        Theta.from_dict({"attack_s": 0.1}, strict=True)


def test_immutable():
    t = Theta()
    with pytest.raises(AttributeError):
        t.attack_s = 1.0


def test_newer_schema_is_refused_plainly():
    with pytest.raises(ThetaError, match="newer than this promptsynth"):
        upgrade_theta_dict({}, SCHEMA_VERSION + 1)


def test_clamp_handles_nan_and_range():
    arr = np.array(
        [
            200.0,
            0.0,
            16000,
            4,
            -1.0,
            100.0,
            float("nan"),
            0.3,
            100.0,
            float("inf"),
            -3.0,
            100.0,
            float("nan"),
            0.0,
            40.0,
            -1.0,
            float("nan"),
            7.0,
            5.0,
            0.0,
            float("nan"),
        ]
    )
    # Schema 5: the spectra (one NaN, one too loud, one too quiet), the times and the curve.
    spectra = np.full(64, -20.0)
    spectra[[0, 1, 40]] = (float("nan"), 6.0, -200.0)
    arr = np.concatenate([arr, spectra, [0.0, 60.0, float("nan"), 2.0]])
    t = Theta.from_array(arr, clamp=True)
    assert t.onset_h1 == 0.0 and t.onset_h2 == 0.0 and t.held_h9 == -80.0 and t.held_h32 == -20.0
    assert t.onset_s == 0.001 and t.darken_db == 48.0 and t.darken_s == 1.0 and t.env_curve == 1.0
    assert t.pitch_midi == 127 and t.attack_s == 0.0 and t.decay_s == 5.0
    assert t.sustain == 0.7  # NaN -> default
    assert t.mod_index == 16.0
    assert t.index_peak == 0.0 and t.index_decay_s == 8.0 and t.noise_level == 0.0
    assert t.noise_decay_s == 0.001
    assert t.op3_ratio == 16.0 and t.op3_index == 0.0 and t.op3_peak == 0.0 and t.op3_layout == 2.0
    assert t.band_level == 2.0 and t.band_width == 0.05 and t.band_centre == 1.0
    with pytest.raises(ThetaError, match=r"shape \(89,\)"):
        Theta.from_array(arr[:10])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_learning_transform_round_trips(data):
    vals = [data.draw(st.floats(p.minimum, p.maximum, allow_nan=False)) for p in PARAMS]
    arr = np.array(vals)
    back = from_learning(to_learning(arr))
    assert np.allclose(back, arr, rtol=1e-9, atol=1e-9)
    assert all(math.isfinite(x) for x in to_learning(arr))


def test_snap_ratio_takes_the_nearest_grid_ratio_on_a_log_scale():
    from engine import RATIO_GRID, snap_ratio

    assert snap_ratio(1.02) == 1.0 and snap_ratio(2.9) == 3.0 and snap_ratio(0.1) == 0.5
    assert snap_ratio(9.3) == 8.0  # log-nearest: 9.3/8 < 11/9.3
    assert snap_ratio(9.5) == 11.0
    out = snap_ratio(np.array([1.3, 16.0]))
    assert out.tolist() == [1.5, 14.0] and set(out) <= set(RATIO_GRID)
