"""Schema v3's third operator against the formulas of docs/engine.md, evaluated directly
in float64 numpy, sample by sample; and its live behaviour (glides, layout changes)."""

import numpy as np
import pytest

from engine import (
    CC,
    TIMBRE_INDEX,
    Engine,
    KeyTable,
    Theta,
    midi_to_hz,
    render_note,
    render_notes,
    velocity_to_amp,
)
from tests.engine.test_v2_sound import BASE, SR, held_envelope, two_sounding

OP3 = BASE.replace(op3_ratio=3.0, op3_index=1.2, op3_peak=5.0, index_peak=2.0, index_decay_s=0.15)


def formula(theta: Theta, pitch: int, velocity: int, n: int, sr: int = SR) -> np.ndarray:
    """The voice held for n samples (no release, no noise), straight from the definition."""
    t = np.arange(n) / sr
    fc = midi_to_hz(pitch)
    env = held_envelope(theta, t, sr)
    decay = np.maximum(0.0, 1 - t / theta.index_decay_s)
    index = theta.mod_index + theta.index_peak * decay
    i3 = theta.op3_index + theta.op3_peak * decay
    ph_c = 2 * np.pi * fc * t
    ph_m = 2 * np.pi * theta.mod_ratio * fc * t
    ph_3 = 2 * np.pi * theta.op3_ratio * fc * t
    s3 = i3 * np.sin(ph_3)
    layout = round(theta.op3_layout)
    if layout == 0:
        tone = np.sin(ph_c + index * np.sin(ph_m) + s3)
    elif layout == 1:
        tone = np.sin(ph_c + index * np.sin(ph_m + s3))
    else:
        mod = index * np.sin(ph_m)
        tone = np.sin(ph_c + mod) + i3 / 16 * np.sin(ph_3 + mod)
    return velocity_to_amp(velocity) * env * tone


@pytest.mark.parametrize("layout", [0, 1, 2])
def test_each_layout_is_its_formula(layout):
    theta = OP3.replace(op3_layout=layout)
    y = render_note(KeyTable.flat(theta), 57, 110, SR, hold_s=0.5, tail_s=0.0)
    ref = formula(theta, 57, 110, len(y))
    assert np.max(np.abs(y - ref)) < 1e-6
    # And the operator does something: not the schema-2 sound of the same patch.
    plain = formula(theta.replace(op3_index=0.0, op3_peak=0.0), 57, 110, len(y))
    assert np.max(np.abs(ref - plain)) > 0.1


def test_the_layouts_sound_different():
    ys = [render_note(KeyTable.flat(OP3.replace(op3_layout=v)), 60, 100, SR, 0.3, 0.0) for v in (0, 1, 2)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.max(np.abs(ys[a] - ys[b])) > 0.1


@pytest.mark.parametrize("layout, ratio", [(0, 1.0), (1, 7.0), (2, 0.5), (1.6, 3.0)])
def test_an_operator_that_is_off_is_the_schema_2_sound_exactly(layout, ratio):
    """op3_index and op3_peak at 0 (every patch of schema 1 and 2): whatever the ratio and
    layout, the very samples of the default."""
    off = BASE.replace(index_peak=3.0, noise_level=0.1, op3_ratio=ratio, op3_layout=layout)
    plain = BASE.replace(index_peak=3.0, noise_level=0.1)
    a = render_note(KeyTable.flat(off), 64, 90, SR, 0.4, 0.2)
    b = render_note(KeyTable.flat(plain), 64, 90, SR, 0.4, 0.2)
    assert np.array_equal(a, b)


def test_a_block_of_mixed_layouts_renders_each_voice_as_alone():
    """Voices of every layout and one without the operator, in one bank: each row as its
    own render (each voice runs its own layout's loop)."""
    rows = [OP3.replace(op3_layout=2), BASE, OP3.replace(op3_layout=1), OP3, OP3.replace(op3_layout=2, op3_ratio=5.0)]
    timbres = np.stack([r.timbre() for r in rows])
    pitch = np.array([48.0, 60.0, 67.0, 72.0, 55.0])
    vel = np.array([100.0, 80.0, 127.0, 60.0, 90.0])
    together = render_notes(timbres, pitch, vel, SR, 0.3, 0.1)
    for i in range(len(rows)):
        alone = render_notes(timbres[i : i + 1], pitch[i : i + 1], vel[i : i + 1], SR, 0.3, 0.1)[0]
        assert np.max(np.abs(together[i] - alone)) < 1e-5, i
        assert np.max(np.abs(alone)) > 0.05


def test_mod_wheel_scales_the_operators_index_but_not_a_second_carriers_level():
    for layout, scaled in ((0, True), (1, True), (2, False)):
        theta = OP3.replace(op3_layout=layout, mod_index=0.0, index_peak=0.0)
        a, b = Engine(48000, 2), Engine(48000, 2)
        b.set_patch(0, KeyTable.flat(theta))
        b.set_expression(0, wheel_vibrato_cents=0.0)  # the wheel's index scale alone
        b.control_change(0, CC.MOD_WHEEL, 127)  # doubles the indices
        twice = theta.replace(op3_index=2 * theta.op3_index, op3_peak=2 * theta.op3_peak)
        a.set_patch(0, KeyTable.flat(twice if scaled else theta))
        for e in (a, b):
            e.note_on(0, 60, 100)
        assert np.allclose(a.render(2048), b.render(2048), atol=1e-4), layout


def test_turning_the_operator_up_live_glides():
    """A sounding plain tone gets op3_index 4: the change comes in over the 10 ms glide,
    not on the next sample (a click on stage); the ratio glides too."""
    theta = BASE.replace(attack_s=0.0, sustain=1.0, mod_index=0.0, op3_ratio=2.0)
    a, b = two_sounding(theta)
    b.set_param(0, "op3_index", 4.0)
    diff = np.abs(b.render(1024)[:, 0] - a.render(1024)[:, 0])
    assert diff[-128:].max() > 0.3  # it did come in
    assert diff[:16].max() < 0.05 * diff[-128:].max()  # but gradually
    b.render(4800)
    vb = b.voices
    assert vb.op3_index[0] == pytest.approx(4.0, rel=1e-3)
    b.set_param(0, "op3_ratio", 3.0)
    b.render(4800)
    assert vb.op3_ratio[0] == pytest.approx(3.0, rel=1e-3)
    # Turned back down, it glides out and is then off (0 exactly: the engine skips it again).
    b.set_param(0, "op3_index", 0.0)
    b.render(9600)
    assert vb.op3_index[0] == 0.0
    with pytest.raises(ValueError, match="op3_index must be in range 0..16"):
        b.set_param(0, "op3_index", 17.0)


def test_a_layout_change_applies_from_the_next_note():
    """Switching a sounding voice's layout would jump its waveform: it keeps its own, a
    retrigger included; the channel's next note takes the new one."""
    e = Engine(48000, 4)
    e.set_patch(0, KeyTable.flat(OP3))
    e.note_on(0, 60, 100)
    e.render(256)
    e.set_param(0, "op3_layout", 1.0)
    e.render(256)
    vb = e.voices
    assert vb.op3_layout[0] == 0.0
    e.note_on(0, 60, 100)  # the same key again: the voice is retriggered, its layout kept
    e.note_on(0, 64, 100)
    e.render(256)
    assert vb.n == 2 and vb.op3_layout[0] == 0.0 and vb.op3_layout[1] == 1.0
    assert e.channel_table(0).center()["op3_layout"] == 1.0


def test_a_fractional_layout_is_rounded():
    a = render_note(KeyTable.flat(OP3.replace(op3_layout=1.4)), 60, 100, SR, 0.2, 0.0)
    b = render_note(KeyTable.flat(OP3.replace(op3_layout=1.0)), 60, 100, SR, 0.2, 0.0)
    assert np.array_equal(a, b)


def test_a_table_never_plays_a_layout_between_two_of_its_own():
    """The layout is a choice: read between two key anchors or velocity layers it is the
    nearer one's (0 then 2, never the stack, 1, that interpolation would make), while the
    operator's amounts still interpolate."""
    lay, i3 = TIMBRE_INDEX["op3_layout"], TIMBRE_INDEX["op3_index"]
    keys = KeyTable([36, 84], [64], [[[0.0, 1.0]], [[2.0, 3.0]]], names=["op3_layout", "op3_index"])
    layouts = [keys.lookup(k, 100)[lay] for k in range(128)]
    assert layouts == [0.0] * 60 + [2.0] * 68  # the midpoint, key 60, takes the upper anchor
    assert 1.0 < keys.lookup(59, 100)[i3] < 3.0
    vels = KeyTable([60], [32, 96], [[[2.0], [1.0]]], names=["op3_layout"])
    assert [vels.lookup(60, v)[lay] for v in (1, 32, 63, 64, 96, 127)] == [2.0, 2.0, 2.0, 1.0, 1.0, 1.0]
    # What the engine plays on key 59: the parallel layout, the lower anchor's.
    e = Engine(SR, max_voices=1)
    e.set_patch(0, keys)
    e.note_on(0, 59, 100)
    e.render(64)
    assert e.voices.op3_layout[0] == 0.0


def test_a_morph_switches_the_layout_halfway_and_glides_the_rest():
    lay, i3 = TIMBRE_INDEX["op3_layout"], TIMBRE_INDEX["op3_index"]
    a = KeyTable.flat(OP3.replace(op3_layout=0))
    b = KeyTable.flat(OP3.replace(op3_layout=2, op3_index=4.0))
    got = [KeyTable.morph(a, b, t).lookup(60, 100) for t in (0.0, 0.3, 0.49, 0.5, 0.8, 1.0)]
    assert [g[lay] for g in got] == [0.0, 0.0, 0.0, 2.0, 2.0, 2.0]
    assert got[0][i3] < got[1][i3] < got[2][i3] < got[3][i3] < got[4][i3] < got[5][i3]
