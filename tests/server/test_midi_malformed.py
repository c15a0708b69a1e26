"""Malformed MIDI through real JACK ports into a real `promptsynth play`: nothing a source
sends can make the keyboard deaf or leave a note stuck.

A probe JACK client (tests/server/jackprobe.py) writes raw events, exactly as given, zero-
length and long ones included, into the host's virtual MIDI input, and reads the host's
audio output in the same JACK graph: "the next message acts within one block" is
measured in JACK frames against the same note sent alone (the control).
"""

from __future__ import annotations

import statistics
import time

import pytest

from tests.conftest import assert_within
from tests.server.conftest import HostProcess, OscClient
from tests.server.jackprobe import JackProbe, jack_port
from tests.server.playing import short_envelopes, status, wait_silent

pytestmark = [pytest.mark.jack, pytest.mark.slow]

PORT = "ps-malformed"
NOTE_ON = bytes([0x90, 60, 100])
NOTE_OFF = bytes([0x80, 60, 0])
MIDI_ERRORS = 10  # /status.reply's midi_errors

#: Each case: the events sent before a well-formed message in the same JACK cycle, and
#: whether they are malformed (counted in midi_errors).
CASES = {
    "truncated SysEx": ([bytes([0xF0, 0x7E, 0x01])], True),
    "SysEx interrupted by a status byte": ([bytes([0xF0, 0x7E, 0x01, 0x90, 61])], True),
    "data bytes with no status": ([bytes([0xF7]), bytes([60, 100, 62])], True),
    "undefined status bytes": ([bytes([0xF4]), bytes([0xF5, 1]), bytes([0xF9]), bytes([0xFD])], True),
    "a zero-length event": ([b""], True),
    # Status bytes that end each other unfinished, then data bytes that belong to nothing
    # (the F7 before them has cancelled running status), 12 times over: cut to 1024.
    "a very long event of junk": ([(bytes(range(0x80, 0x100)) + bytes(range(0x80))) * 12], True),
    "a very long SysEx dump": ([bytes([0xF0]) + bytes(range(1, 128)) * 40 + bytes([0xF7])], False),
    "a cut note-on": ([bytes([0x90, 64])], True),
}


@pytest.fixture(scope="module")
def host(jack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("malformed")
    h = HostProcess(["--no-model", "--bank", str(tmp / "bank"), "--midi-virtual", PORT])
    yield h
    h.stop()


@pytest.fixture(scope="module")
def osc(host):
    c = OscClient(host.port)
    short_envelopes(c)
    yield c
    c.close()


@pytest.fixture(scope="module")
def probe(host, osc):

    # The host's MIDI input and its render process's left output, whatever JACK named
    # their clients (this module's other host may have come and gone before).
    p = JackProbe(jack_port(f".*:{PORT}$", midi=True), jack_port(r"^promptsynth-audio[-0-9]*:out_0$"))
    yield p
    p.close()


@pytest.fixture(scope="module")
def control(probe, osc):
    """Key to sound of a well-formed note-on alone (frames), 8 times: what every case
    is held to, within one block."""
    delays = []
    for _ in range(8):
        delays.append(probe.key_to_sound([NOTE_ON]))
        probe.send([NOTE_OFF])
        wait_silent(osc)
    return delays


@pytest.mark.parametrize("case", list(CASES))
def test_the_next_note_on_acts_within_one_block(case, probe, osc, control):
    before, malformed = CASES[case], CASES[case][1]
    errors0 = status(osc)[MIDI_ERRORS]
    delay = probe.key_to_sound([*before[0], NOTE_ON])
    bound = max(control) + probe.blocksize
    assert delay <= bound, (
        f"after {case}: the note-on sounded {delay} frames after its cycle began; alone it "
        f"takes {min(control)}-{max(control)} (median {statistics.median(control)}): more "
        f"than one block ({probe.blocksize}) later"
    )
    probe.send([NOTE_OFF])
    wait_silent(osc)
    errors = status(osc)[MIDI_ERRORS] - errors0
    assert (errors > 0) == malformed, f"{case}: midi_errors grew by {errors}"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("then", ["note-off", "all notes off"])
def test_note_offs_after_malformed_midi_act_at_once(case, then, probe, osc, xruns):
    probe.key_to_sound([NOTE_ON])
    assert status(osc)[0] == 1
    release = NOTE_OFF if then == "note-off" else bytes([0xB0, 123, 0])
    x0 = xruns.count
    probe.send([*CASES[case][0], release])
    # Release 10 ms: silent within a few blocks of the cycle that carried the release.
    assert_within(lambda: status(osc)[0] == 0, 0.1, xruns, x0, f"{then} after {case}")


def test_running_status_across_events(probe, osc):
    probe.send([bytes([0x90, 61, 0])])  # a note-on of velocity 0: running status 0x90
    delay = probe.key_to_sound([bytes([60, 100])])  # data bytes only: note-on 60
    assert status(osc)[0] == 1 and delay > 0
    probe.send([bytes([60, 0])])  # and its note-off, by running status too
    wait_silent(osc)


def test_real_time_bytes_inside_a_message(probe, osc):
    probe.key_to_sound([bytes([0x90, 0xF8, 60, 0xFE, 100])])
    assert status(osc)[0] == 1
    probe.send([bytes([0x80, 60, 0xF8, 0])])
    wait_silent(osc)


def test_the_deaf_keyboard(probe, osc, xruns):
    """The issue's reproduction, step by step, with /status's voice count after each."""
    x0 = xruns.count
    probe.send([NOTE_ON])
    assert_within(lambda: status(osc)[0] == 1, 0.1, xruns, x0, "note-on 60")
    probe.send([bytes([0xF0, 0x7E, 0x01])])  # no F7, ever
    time.sleep(0.05)
    x0 = xruns.count
    probe.send([NOTE_OFF])
    assert_within(lambda: status(osc)[0] == 0, 0.1, xruns, x0, "note-off 60 after the SysEx")
    x0 = xruns.count
    probe.send([bytes([0x90, 62, 100])])
    assert_within(lambda: status(osc)[0] == 1, 0.1, xruns, x0, "note-on 62 after the SysEx")
    x0 = xruns.count
    probe.send([bytes([0xB0, 123, 0])])
    assert_within(lambda: status(osc)[0] == 0, 0.1, xruns, x0, "all notes off")


def test_system_reset_silences_and_lifts_the_pedals(probe, osc, xruns):
    probe.send([bytes([0xB0, 64, 127])])  # sustain down
    probe.key_to_sound([NOTE_ON])
    probe.send([NOTE_OFF])  # held by the pedal
    time.sleep(0.05)
    assert status(osc)[0] == 1
    x0 = xruns.count
    probe.send([bytes([0xFF])])
    assert_within(lambda: status(osc)[0] == 0, 0.1, xruns, x0, "a System Reset")
    # The pedal is up: a note now ends with its note-off.
    probe.key_to_sound([NOTE_ON])
    probe.send([NOTE_OFF])
    wait_silent(osc, timeout=0.5)


def test_malformed_midi_is_counted_and_told(host, probe, osc):
    told = OscClient(host.port)
    try:
        told.ask("/notify", told.port, reply="/notify.reply")
        time.sleep(1.1)  # past any notice of the tests before
        before = status(osc)[MIDI_ERRORS]
        probe.send([bytes([0xF0, 0x7E, 0x01])])
        source, what = told.expect("/midi/error", timeout=2.0)
        assert source == PORT and "SysEx" in what and "without F7" in what, (source, what)
        for _ in range(5):  # within the second: counted, not told
            probe.send([bytes([0xF4])])
        time.sleep(0.2)
        assert status(osc)[MIDI_ERRORS] - before == 6
        assert not [r for r in told.replies if r[0] == "/midi/error"]
        time.sleep(1.0)
        probe.send([bytes([0xF5])])
        source, what = told.expect("/midi/error", timeout=2.0)
        assert what == "undefined status byte 0xF5 (and 5 more malformed since the last notice)"
        told.send("/notify", 0)
    finally:
        told.close()
