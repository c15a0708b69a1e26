"""KeyTable: interpolation over keys and velocities, validation, files; the engine playing one."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    KEY_ANCHORS,
    TIMBRE_INDEX,
    TIMBRE_NAMES,
    VELOCITY_LAYERS,
    Engine,
    KeyTable,
    Theta,
    ThetaError,
    midi_to_hz,
    param,
    render_note,
)
from tests.engine.helpers import envelope_from_sine

T = TIMBRE_INDEX
BASE = Theta.from_dict({"attack_s": 0.0, "decay_s": 0.5, "sustain": 0.0, "release_s": 0.05, "mod_index": 0.0})


def two_key_table(name, low, high, base=BASE):
    """Keys 0 and 120, one velocity layer: ``name`` is ``low`` at 0 and ``high`` at 120."""
    vals = np.stack([base.timbre(), base.timbre()])[:, None, :]
    vals[0, 0, T[name]] = low
    vals[1, 0, T[name]] = high
    return KeyTable([0, 120], [100], vals)


def learn(name, v):
    return float(param(name).to_learning(v))


def unlearn(name, x):
    return float(param(name).from_learning(x))


def test_keys_interpolate_in_learning_space_and_hold_beyond_the_ends():
    t = two_key_table("attack_s", 0.01, 1.0)
    a = T["attack_s"]
    assert t.lookup(0, 100)[a] == 0.01 and t.lookup(120, 100)[a] == 1.0
    assert t.lookup(127, 100)[a] == 1.0  # constant beyond the last anchor
    mid = unlearn("attack_s", 0.5 * (learn("attack_s", 0.01) + learn("attack_s", 1.0)))
    assert t.lookup(60, 100)[a] == pytest.approx(mid, rel=1e-12)
    x = unlearn("attack_s", learn("attack_s", 0.01) + 30 / 120 * (learn("attack_s", 1.0) - learn("attack_s", 0.01)))
    assert t.lookup(30, 100)[a] == pytest.approx(x, rel=1e-12)
    # Linear parameters interpolate linearly.
    s = two_key_table("sustain", 0.2, 0.8)
    assert s.lookup(90, 1)[T["sustain"]] == pytest.approx(0.65)


def test_velocity_layers_interpolate_in_learning_space():
    vals = np.tile(BASE.timbre(), (1, 3, 1))
    i = T["mod_index"]
    vals[0, :, i] = [0.0, 3.0, 15.0]
    t = KeyTable([60], [20, 60, 100], vals)
    assert t.lookup(5, 20)[i] == 0.0 and t.lookup(5, 60)[i] == 3.0 and t.lookup(5, 100)[i] == 15.0
    assert t.lookup(5, 1)[i] == 0.0 and t.lookup(5, 127)[i] == 15.0  # outside: held
    x = unlearn("mod_index", 0.25 * learn("mod_index", 3.0) + 0.75 * learn("mod_index", 15.0))
    assert t.lookup(5, 90)[i] == pytest.approx(x, rel=1e-12)
    # Other parameters unchanged between the layers.
    assert t.lookup(5, 90)[T["decay_s"]] == pytest.approx(0.5, rel=1e-12)


def test_full_anchor_grid_hits_its_anchors_exactly():
    rng = np.random.default_rng(1)
    lo = np.array([param(n).minimum for n in TIMBRE_NAMES])
    hi = np.array([param(n).maximum for n in TIMBRE_NAMES])
    vals = lo + (hi - lo) * rng.uniform(0, 1, (len(KEY_ANCHORS), len(VELOCITY_LAYERS), len(TIMBRE_NAMES)))
    t = KeyTable(KEY_ANCHORS, VELOCITY_LAYERS, vals)
    assert not t.is_flat
    for a, k in enumerate(KEY_ANCHORS):
        for b, v in enumerate(VELOCITY_LAYERS):
            assert np.array_equal(t.lookup(k, v), vals[a, b])
    for k in range(128):
        for v in (1, 33, 77, 127):
            row = t.lookup(k, v)
            assert np.all((row >= lo) & (row <= hi))


def test_flat_and_center_and_with_param():
    theta = BASE.replace(mod_ratio=3.0, noise_level=0.1)
    t = KeyTable.flat(theta)
    assert t.is_flat and t.keys == (60,) and t.velocities == (100,)
    for k, v in ((0, 1), (64, 64), (127, 127)):
        assert np.array_equal(t.lookup(k, v), theta.timbre())
    assert t.center() == dict(zip(TIMBRE_NAMES, theta.timbre().tolist()))
    assert KeyTable.flat(theta.timbre()) == t
    # By name: what is left out takes its default; no values: the default patch.
    assert KeyTable.flat({"mod_ratio": 3.0, "noise_level": 0.1}) == KeyTable.flat(
        Theta().replace(mod_ratio=3.0, noise_level=0.1)
    )
    assert KeyTable.flat() == KeyTable.flat(Theta())
    with pytest.raises(ThetaError, match="not a timbre parameter"):
        KeyTable.flat({"pitch_midi": 60})
    with pytest.raises(ThetaError, match="mod_index must be in range"):
        KeyTable.flat({"mod_index": -1.0})
    u = two_key_table("decay_s", 0.05, 2.0).with_param("decay_s", 0.7)
    assert u.is_flat and u.lookup(0, 100)[T["decay_s"]] == 0.7 and u.lookup(127, 100)[T["decay_s"]] == 0.7
    with pytest.raises(ThetaError, match="decay_s must be in range"):
        u.with_param("decay_s", 99.0)
    with pytest.raises(ThetaError, match="not a timbre parameter"):
        u.with_param("pitch_midi", 60)


def test_validation_names_parameter_key_and_velocity():
    vals = np.tile(BASE.timbre(), (2, 2, 1))
    vals[1, 0, T["sustain"]] = 1.5
    with pytest.raises(ThetaError, match=r"sustain at key 72, velocity 30 must be a finite number in range 0..1, got 1.5"):
        KeyTable([48, 72], [30, 90], vals)
    vals[1, 0, T["sustain"]] = np.nan
    vals[0, 1, T["attack_s"]] = 50.0
    c = KeyTable([48, 72], [30, 90], vals, clamp=True)
    assert c.values[1, 0, T["sustain"]] == 0.7 and c.values[0, 1, T["attack_s"]] == 2.0
    with pytest.raises(ThetaError, match="strictly ascending"):
        KeyTable([72, 48], [30, 90], vals, clamp=True)
    with pytest.raises(ThetaError, match=r"velocities must be in range 1..127"):
        KeyTable([48, 72], [0, 90], vals, clamp=True)
    with pytest.raises(ThetaError, match="must have shape"):
        KeyTable([48, 72], [30], vals, clamp=True)


def test_dict_round_trip_is_compact_json():
    rng = np.random.default_rng(2)
    vals = np.tile(BASE.timbre(), (3, 2, 1))
    vals[:, :, T["decay_s"]] = rng.uniform(0.01, 4.0, (3, 2))
    t = KeyTable([24, 60, 96], [40, 110], vals)
    d = t.to_dict()
    text = json.dumps(d)
    assert set(d) == {"keys", "velocities", "values"} and set(d["values"]) == set(TIMBRE_NAMES)
    assert len(d["values"]["decay_s"]) == 3 and len(d["values"]["decay_s"][0]) == 2
    back = KeyTable.from_dict(json.loads(text))
    assert back.keys == t.keys and back.velocities == t.velocities
    assert np.allclose(back.values, t.values, rtol=5e-6, atol=0)  # 6 significant digits
    assert KeyTable.from_dict(back.to_dict()) == back  # rounding is stable


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("keys"), "field 'keys' is missing"),
        (lambda d: d.update(colour=1), "unknown field"),
        (lambda d: d["values"].update(bogus=[[1.0, 1.0]] * 3), "unknown parameter"),
        (lambda d: d["values"].update(sustain=[[0.5]] * 3), "sustain must be a list of 3 keys"),
        (lambda d: d["values"]["sustain"][2].__setitem__(1, "x"), "sustain at key 96, velocity 110 must be a number"),
        (lambda d: d["values"]["sustain"][0].__setitem__(0, 7.0), "sustain at key 24, velocity 40 must be a finite number"),
        (lambda d: d.update(keys=[24, 24, 96]), "strictly ascending"),
    ],
)
def test_from_dict_refuses_bad_input(change, message):
    d = KeyTable([24, 60, 96], [40, 110], np.tile(BASE.timbre(), (3, 2, 1))).to_dict()
    change(d)
    with pytest.raises(ThetaError, match=message.replace("(", r"\(")):
        KeyTable.from_dict(d)


def test_lookup_returns_read_only_rows():
    t = KeyTable.flat(BASE)
    with pytest.raises(ValueError):
        t.lookup(60, 100)[0] = 1.0


# -- the engine with a key table ------------------------------------------------------------

SR = 48000


def envelope_at(y: np.ndarray, pitch: int, t: float) -> float:
    """Envelope of a pure sine note (index 0, attack 0) at ``t`` s after its note-on,
    as a fraction of full level (centre pan, volume 100, velocity 127)."""
    idx, env = envelope_from_sine(y, float(midi_to_hz(pitch)), SR)
    near = np.abs(idx / SR - t) < 0.001
    return float(np.mean(env[near])) / (np.sqrt(0.5) * (100 / 127) ** 2)


def test_engine_plays_each_key_with_its_own_timbre():
    # Decay 50 ms up to key 36, 2 s from key 96 on (log-interpolated between).
    vals = np.stack([BASE.timbre(), BASE.timbre()])[:, None, :]
    vals[:, 0, T["decay_s"]] = [0.05, 2.0]
    table = KeyTable([36, 96], [100], vals)
    e = Engine(SR, 8)
    e.set_patch(0, table)
    y = {}
    for pitch in (36, 66, 100):
        e.note_on(0, pitch, 127)
        y[pitch] = e.render(int(0.3 * SR))[:, 0]
        e.panic()
        e.render(1024)
    d = {p: table.lookup(p, 127)[T["decay_s"]] for p in y}
    assert d[36] == 0.05 and d[100] == 2.0 and 0.2 < d[66] < 0.5
    # Sustain 0: the level falls as 1 - t / decay, each key with its own decay.
    for p in y:
        for t in (0.02, 0.04):
            assert envelope_at(y[p], p, t) == pytest.approx(max(0.0, 1 - t / d[p]), abs=0.01)
    assert np.max(np.abs(y[36][int(0.06 * SR) :])) == 0.0


def test_engine_plays_velocity_layers():
    vals = np.tile(BASE.timbre(), (1, 2, 1))
    vals[0, :, T["mod_index"]] = [0.0, 8.0]
    table = KeyTable([60], [1, 127], vals)
    e = Engine(SR, 8)
    e.set_patch(3, table)
    e.note_on(3, 60, 1)
    e.note_on(3, 62, 127)
    e.note_on(3, 64, 64)
    e.render(128)
    vb = e.voices
    got = {int(vb.pitch[i]): vb.mod_index_tgt[i] for i in range(vb.n)}
    assert got[60] == 0.0 and got[62] == 8.0
    assert got[64] == pytest.approx(table.lookup(64, 64)[T["mod_index"]]) and 0.0 < got[64] < 8.0


def test_patch_table_travels_by_reference_and_set_param_flattens():
    table = two_key_table("decay_s", 0.05, 2.0)
    e = Engine(SR, 8)
    e.set_patch(0, table)
    e.render(128)
    assert e.tables[0] is table
    e.set_param(0, "decay_s", 0.3)
    e.note_on(0, 10, 100)
    e.note_on(0, 115, 100)
    e.render(128)
    assert list(e.voices.decay_s[: e.voices.n]) == [0.3, 0.3]
    ct = e.channel_table(0)
    assert ct.lookup(0, 1)[T["decay_s"]] == 0.3 and ct.lookup(127, 127)[T["decay_s"]] == 0.3
    assert ct.lookup(0, 1)[T["mod_index"]] == table.lookup(0, 1)[T["mod_index"]]
    # A new patch drops the live change.
    e.set_patch(0, table)
    e.note_on(0, 0, 100)
    e.render(128)
    assert e.voices.decay_s[2] == 0.05
    assert e.channel_table(0) is table
    with pytest.raises(TypeError, match=r"patch must be a KeyTable \(KeyTable.flat"):
        e.set_patch(0, {"decay_s": 1.0})
    with pytest.raises(TypeError, match="patch must be a KeyTable"):
        e.set_patch(0, Theta())


def test_render_note_takes_a_key_table():
    table = two_key_table("decay_s", 0.05, 2.0)
    y = render_note(table, 0, 100, SR, hold_s=0.3, tail_s=0.0)
    z = render_note(KeyTable.flat(BASE.replace(decay_s=0.05)), 0, 100, SR, hold_s=0.3, tail_s=0.0)
    assert np.array_equal(y, z)
    with pytest.raises(TypeError, match="patch must be a KeyTable"):
        render_note(BASE, 60, 100)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_valid_table_stays_in_range_and_round_trips(data):
    keys = sorted(data.draw(st.sets(st.integers(0, 127), min_size=1, max_size=6)))
    vels = sorted(data.draw(st.sets(st.integers(1, 127), min_size=1, max_size=4)))
    lo = np.array([param(n).minimum for n in TIMBRE_NAMES])
    hi = np.array([param(n).maximum for n in TIMBRE_NAMES])
    u = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=len(keys) * len(vels) * len(lo),
                                    max_size=len(keys) * len(vels) * len(lo))))
    vals = (lo + (hi - lo) * u.reshape(len(keys), len(vels), len(lo)))
    t = KeyTable(keys, vels, vals)
    for k in (0, keys[0], 64, keys[-1], 127):
        for v in (0, 1, vels[0], 100, vels[-1], 127):
            row = t.lookup(k, v)
            assert np.all((row >= lo) & (row <= hi))
    assert np.array_equal(t.lookup(keys[-1], vels[0]), vals[-1, 0])
    back = KeyTable.from_dict(json.loads(json.dumps(t.to_dict())))
    assert np.allclose(back.values, t.values, rtol=5e-6, atol=1e-300)
