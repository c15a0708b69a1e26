# ruff: noqa: F811 - the tests take the imported fixture rig as their argument
"""Per-note expression over OSC, through the real address space and OSC server (UDP on
this machine) into a real engine rendered offline: id notes, pressure, the amounts."""

from __future__ import annotations

import numpy as np
import pytest

from engine import KeyTable
from engine.expression import Expression
from tests.server.conftest import bundle, message
from tests.server.test_osc_unit import replies, rig  # noqa: F401 - rig: the fixture


def send(server, client, *packets) -> list[tuple[str, list]]:
    for p in packets:
        server.handle_packet(p, client.getsockname())
    return replies(client)


def sounding(host) -> dict[float, int]:
    """The engine's sounding notes after a block: note -> voice."""
    host.engine.render(128)
    vb = host.engine.voices
    return {float(vb.note[i]): i for i in range(vb.n) if vb.fading[i] == 0 and vb.released[i] == 0}


def test_id_notes_play_bend_press_and_end(rig):
    host, server, client = rig
    assert send(server, client, message("/note/id", 5, 60.5, 100.0, 2), message("/note/id", 6.0, 64.0, 90.0)) == []
    notes = sounding(host)
    assert set(notes) == {60.5, 64.0}
    vb = host.engine.voices
    assert vb.chan[notes[60.5]] == 1.0  # channel 2
    assert send(
        server, client, message("/note/id/pitch", 5, -1.5), message("/note/id/pressure", 5, 1.0),
        message("/note/id/timbre", 6, 0.5),
    ) == []
    sounding(host)
    assert vb.n_bend[notes[60.5]] == -1.5 and vb.n_press[notes[60.5]] == 1.0
    assert vb.n_timbre[notes[64.0]] == 0.5 and vb.n_press[notes[64.0]] == 0.0
    assert send(server, client, message("/note/id/off", 5), message("/note/id", 6, 64.0, 0.0)) == []
    assert sounding(host) == {}


@pytest.mark.parametrize(
    "packet, reason",
    [
        (message("/note/id", -1, 60.0, 100.0), "id must be an int in range 0..16777215, got -1"),
        (message("/note/id", 16777216, 60.0, 100.0), "id must be an int in range 0..16777215, got 16777216"),
        (message("/note/id", 1.5, 60.0, 100.0), "id must be an int in range 0..16777215 (a whole number), got 1.5"),
        (message("/note/id", 1, 130.0, 100.0), "pitch must be a number in range 0..127, got 130"),
        (message("/note/id", 1, float("nan"), 100.0), "pitch must be a number in range 0..127, got nan"),
        (message("/note/id", 1, 60.0, 100.0, 17), "channel must be an int in range 1..16, got 17"),
        (message("/note/id/pitch", 1, 97.0), "semitones must be a number in range -96..96, got 97"),
        (message("/note/id/pressure", 1, 1.5), "pressure must be a number in range 0..1, got 1.5"),
        (message("/note/id/timbre", 1, -0.1), "timbre must be a number in range 0..1, got -0.1"),
        (message("/note/id/off"), "takes id; got 0 argument(s)"),
        (message("/pressure", 2.0), "pressure must be a number in range 0..1, got 2"),
        (message("/expression/pressure_db", 30.0), "pressure_db must be a number in range 0..24, got 30"),
        (message("/expression/vibrato_hz", 0.0), "vibrato_hz must be a number in range 0.1..20, got 0"),
    ],
)
def test_bad_arguments_fail_clearly_and_queue_nothing(rig, packet, reason):
    host, server, client = rig
    got = send(server, client, packet)
    assert len(got) == 1 and got[0][0] == "/fail" and got[0][1][1] == reason
    assert host.engine.queue.pending_in_ring() == 0


def test_unknown_ids_fail_and_leave_no_stuck_note(rig):
    host, server, client = rig
    got = send(server, client, message("/note/id/pitch", 42, 1.0), message("/note/id/off", 43),
               message("/note/id", 44, 60.0, 0.0))
    assert [a for a, _ in got] == ["/fail"] * 3
    assert got[0][1] == ["/note/id/pitch", "no note with id 42 is sounding: start it with /note/id first "
                         "(an id ends with /note/id/off, a velocity of 0, /panic and all notes off)"]
    assert got[2][1] == ["/note/id", "no note with id 44 is sounding (a velocity of 0 ends one)"]
    assert host.engine.queue.pending_in_ring() == 0
    # An id ended once is unknown afterwards: its second off fails, nothing sounds.
    send(server, client, message("/note/id", 7, 60.0, 100.0), message("/note/id/off", 7))
    got = send(server, client, message("/note/id/off", 7))
    assert [a for a, _ in got] == ["/fail"]
    assert sounding(host) == {}
    # A bundle that starts a note and bends it applies as one.
    assert send(server, client, bundle(0, message("/note/id", 8, 62.0, 100.0), message("/note/id/pitch", 8, 2.0))) == []
    notes = sounding(host)
    assert list(notes) == [62.0] and host.engine.voices.n_bend[notes[62.0]] == 2.0


@pytest.mark.parametrize(
    "end", [message("/panic"), message("/cc", 123, 0, 3), message("/cc", 120, 0, 3)]
)
def test_panic_and_all_notes_off_end_id_notes(rig, end):
    host, server, client = rig
    send(server, client, message("/note/id", 1, 60.0, 100.0, 3), message("/note/id", 2, 64.0, 100.0, 3))
    assert len(sounding(host)) == 2
    assert send(server, client, end) == []
    assert sounding(host) == {}
    got = send(server, client, message("/note/id/pitch", 1, 1.0))  # the id is gone too
    assert [a for a, _ in got] == ["/fail"]


def test_pressure_and_amounts_over_osc_and_saved_with_the_patch(rig):
    from patches import load_patch

    host, server, client = rig
    assert send(
        server, client, message("/note", 60, 100, 4), message("/expression/pressure_db", 12.0, 4),
        message("/expression/wheel_vibrato_cents", 10.0, 4), message("/pressure", 1.0, 4),
    ) == []
    host.engine.render(128)
    vb = host.engine.voices
    assert vb.x_boost_tgt[0] == pytest.approx(10 ** (12 / 20) - 1)
    assert host.engine.channels.expression[3, 0] == 12.0
    assert send(server, client, message("/pressure/key", 60, 0.0, 4), message("/pressure", 0.0, 4)) == []
    host.engine.render(128)
    assert vb.x_boost_tgt[0] == 0.0
    # /patch/save keeps the channel's amounts; /patch/load brings them back on another channel.
    got = send(server, client, message("/patch/save", "pressed", 4))
    assert got == [("/patch/saved", ["pressed", 4])]
    saved = load_patch(host.bank.folder / "pressed.json")  # the file itself
    assert saved.expression == Expression().replace(pressure_db=12.0, wheel_vibrato_cents=10.0)
    send(server, client, message("/patch/load", "pressed", 9))
    host.engine.render(128)
    assert np.array_equal(host.engine.channels.expression[8], saved.expression.values)
    # A bank patch with the default amounts puts the channel's back to the defaults.
    from patches import Patch

    host.bank.save(Patch("plain", KeyTable.flat()))
    send(server, client, message("/patch/load", "plain", 9))
    host.engine.render(128)
    assert np.array_equal(host.engine.channels.expression[8], Expression().values)
