"""MPE, the lower zone, offline: member channels play the master's patch, their bend (48
semitones), pressure and CC 74 act on their own note, the master's on all; the MPE
Configuration Message (RPN 6 on channel 1) turns it on and off."""

from __future__ import annotations

import numpy as np
import pytest

from engine import CC, Engine, KeyTable, Theta
from tests.engine.helpers import cents, peak_frequency

SR = 48000
PLAIN = Theta.from_dict({"attack_s": 0.0, "decay_s": 0.0, "sustain": 1.0, "release_s": 0.02,
                         "mod_ratio": 1.0, "mod_index": 0.0})


def mpe_engine(members: int = 15) -> Engine:
    e = Engine(SR, 16)
    e.set_patch(0, KeyTable.flat(PLAIN))
    e.set_mpe(members)
    return e


def voice_of(e: Engine, ch: int) -> int:
    vb = e.voices
    return int(np.flatnonzero((vb.chan[: vb.n] == ch) & (vb.released[: vb.n] == 0))[0])


def hz_of(e: Engine, ch: int) -> float:
    return float(e.voices.inc_c[voice_of(e, ch)] * SR / (2 * np.pi))


def test_members_play_the_masters_patch_and_bend_alone_by_48_semitones():
    e = mpe_engine()
    e.set_patch(1, KeyTable.flat(PLAIN.replace(mod_index=5.0)))  # a member's own patch is not played
    e.note_on(1, 69, 100)
    e.note_on(2, 57, 100)
    e.render(128)
    assert e.voices.mod_index[voice_of(e, 1)] == 0.0  # the master's patch
    e.pitch_bend(1, 512)  # 512 / 8192 x 48 = 3 semitones, on channel 2's note only
    e.render(128)
    assert cents(hz_of(e, 1), 440.0) == pytest.approx(300.0, abs=1e-6)
    assert cents(hz_of(e, 2), 220.0) == pytest.approx(0.0, abs=1e-6)
    # The master's bend (2 semitones) moves every note of the zone.
    e.pitch_bend(0, 4096)
    e.render(128)
    assert cents(hz_of(e, 1), 440.0) == pytest.approx(400.0, abs=1e-6)
    assert cents(hz_of(e, 2), 220.0) == pytest.approx(100.0, abs=1e-6)
    # Heard: the rendered note of channel 2 is 3 + 1 semitones up.
    e.note_off(2, 57)
    y = np.concatenate([e.render(128) for _ in range(200)])[-8192:, 0]
    assert cents(peak_frequency(y, SR, 300, 1000), 440.0) == pytest.approx(400.0, abs=0.5)


def test_pressure_and_cc74_of_a_member_act_on_its_note_the_masters_on_all():
    e = mpe_engine()
    e.note_on(1, 60, 100)
    e.note_on(2, 64, 100)
    e.channel_pressure(1, 127)
    e.control_change(2, CC.BRIGHTNESS, 127)
    e.render(128)
    vb = e.voices
    a, b = voice_of(e, 1), voice_of(e, 2)
    assert vb.x_boost_tgt[a] > 0.9 and vb.x_boost_tgt[b] == 0.0
    assert vb.x_index_tgt[a] == 2.0 and vb.x_index_tgt[b] == 3.0
    e.channel_pressure(0, 64)  # the master's: both
    e.render(128)
    assert vb.x_boost_tgt[b] > 0.0 and vb.x_index_tgt[b] == pytest.approx(3.0 + 2.0 * 64 / 127)
    # The members take the master's amounts.
    e.set_expression(0, timbre_index=8.0)
    e.render(128)
    assert vb.x_index_tgt[b] == pytest.approx(8.0 + 2.0 * 64 / 127)


def test_the_configuration_message_turns_mpe_on_and_off():
    e = Engine(SR, 8)
    e.set_patch(0, KeyTable.flat(PLAIN))
    for cc, v in ((CC.RPN_MSB, 0), (CC.RPN_LSB, 6), (CC.DATA_ENTRY_MSB, 7)):
        e.control_change(0, cc, v)
    e.render(128)
    assert e.channels.mpe == 7
    assert list(e.channels.bend_range[:9]) == [2.0] + [48.0] * 7 + [2.0]
    # RPN 0 on a member sets every member's range.
    for cc, v in ((CC.RPN_MSB, 0), (CC.RPN_LSB, 0), (CC.DATA_ENTRY_MSB, 24)):
        e.control_change(3, cc, v)
    e.render(128)
    assert list(e.channels.bend_range[1:8]) == [24.0] * 7
    for cc, v in ((CC.RPN_MSB, 0), (CC.RPN_LSB, 6), (CC.DATA_ENTRY_MSB, 0)):
        e.control_change(0, cc, v)
    e.render(128)
    assert e.channels.mpe == 0 and list(e.channels.bend_range[:16]) == [2.0] * 16
    # Off: a channel plays its own patch again.
    e.note_on(1, 60, 100)
    e.render(128)
    assert e.voices.mod_index[0] == KeyTable.flat().values[0, 0, 5]


def test_the_masters_sustain_pedal_holds_the_zone():
    e = mpe_engine()
    e.control_change(0, CC.SUSTAIN, 127)
    e.note_on(3, 60, 100)
    e.note_off(3, 60)
    e.render(SR // 10)
    assert e.active_voices == 1
    e.control_change(0, CC.SUSTAIN, 0)
    e.render(SR // 10)
    assert e.active_voices == 0


def test_mpe_off_renders_as_before():
    def play(mpe):
        e = Engine(SR, 8)
        for ch in range(16):
            e.set_patch(ch, KeyTable.flat(PLAIN.replace(mod_index=1.0 + ch)))
        if mpe:
            e.set_mpe(3)
            e.set_mpe(0)
        e.note_on(2, 60, 100)
        e.pitch_bend(2, 3000)
        e.note_on(0, 64, 100)
        return e.render(4096)

    assert np.array_equal(play(False), play(True))
