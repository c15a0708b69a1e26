"""Stage-proof MIDI: raw bytes from another JACK client into a real `promptsynth play`.

Running status, SysEx, out-of-range and stray data bytes, undefined status bytes,
note-offs with no note-on, and 1,000 note-ons in one burst (stealing down to --voices,
then every voice gone once all are released, with no underrun).
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_no_underruns, assert_within
from tests.server.conftest import HostProcess, OscClient
from tests.server.playing import short_envelopes, status, wait_silent

pytestmark = [pytest.mark.jack, pytest.mark.slow]

PORT = "ps-stage-in"


@pytest.fixture(scope="module")
def host(jack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage-midi")
    h = HostProcess(["--no-model", "--bank", str(tmp / "bank"), "--midi-virtual", PORT])
    yield h
    h.stop()


@pytest.fixture(scope="module")
def out(host):
    """A raw rtmidi JACK output connected to the host's port: sends bytes as given, so
    running status and broken messages reach the host unchanged."""
    import rtmidi

    o = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="ps-stage-test")
    names = o.get_ports()
    match = [i for i, n in enumerate(names) if n.endswith(f"promptsynth:{PORT}")]
    assert match, names
    o.open_port(match[0])
    time.sleep(0.2)  # let JACK connect
    yield o
    o.close_port()
    del o


@pytest.fixture(scope="module")
def osc(host):
    c = OscClient(host.port)
    short_envelopes(c)
    yield c
    c.close()


def test_running_status_is_understood(out, osc, xruns):
    x0 = xruns.count
    out.send_message([0x90, 60, 100])
    out.send_message([62, 100])  # running status: two more note-ons
    out.send_message([64, 100])
    assert_within(lambda: status(osc)[0] == 3, 0.1, xruns, x0, "three voices from running status")
    out.send_message([0x90, 60, 0])
    out.send_message([62, 0])
    out.send_message([64, 0])
    wait_silent(osc)


def test_sysex_junk_and_out_of_range_data_change_nothing(out, osc, host, xruns):
    before = status(osc)
    x0 = xruns.count
    junk = [
        [0xF0, *([0x11] * 1000), 0xF7],  # a long SysEx
        [0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7],  # identity request
        [0x90, 200, 100],  # a data byte above 127
        [0x90, 60],  # a short note-on
        [60],  # a stray data byte
        [0xF4],  # undefined system common
        [0xF5],
        [0xF9],  # undefined real-time
        [0xFD],
        [0xF8],  # clock
        [0xFE],  # active sensing
        [0xFF],  # reset
        [0xE0, 0x7F, 0x7F],  # full bend up
        [0xE0, 0x00, 0x00],  # full bend down
        [0xE0, 0x00, 0x40],  # centre
        [0xC0, 5],  # program change with an empty bank
        [0xB0, 121, 0],  # reset controllers
        *[[0x80 | ch, p, 64] for ch in range(16) for p in (0, 60, 127)],  # offs, no ons
    ]
    for m in junk:
        out.send_message(m)
    time.sleep(0.2)
    after = status(osc)
    assert host.proc.poll() is None
    assert after[0] == 0, (before, after)  # no voice started
    assert_no_underruns(after[13] - before[13], xruns.count - x0, "during the junk")
    # Still playing.
    x1 = xruns.count
    out.send_message([0x91, 70, 90])
    assert_within(lambda: status(osc)[0] == 1, 0.1, xruns, x1, "a note-on after the junk")
    out.send_message([0x81, 70, 0])
    wait_silent(osc)


def test_a_burst_of_1000_note_ons_steals_and_leaves_nothing_stuck(out, osc, xruns):
    before = status(osc)[13]
    x0 = xruns.count
    notes = [(0x90 | (i // 128) % 16, i % 128) for i in range(1000)]
    for status_byte, pitch in notes:
        out.send_message([status_byte, pitch, 100])
    time.sleep(0.5)
    voices = status(osc)[0]
    # 32 sounding at most, plus stolen voices still fading out.
    assert 32 <= voices <= 64, voices
    for status_byte, pitch in notes:
        out.send_message([status_byte & 0x0F | 0x80, pitch, 0])
    wait_silent(osc)
    assert_no_underruns(status(osc)[13] - before, xruns.count - x0, "during the burst")
