"""A burst of random MIDI bytes through a real JACK port into a real `promptsynth play`:
no underrun, no stuck note, the host alive and counting what was malformed.

A module of its own, so that no other host (test_midi_malformed.py's) renders beside
this one on the 2-core machine: the stage has one host.
"""

from __future__ import annotations

import pytest

from tests.conftest import assert_no_underruns, assert_within
from tests.server.conftest import HostProcess, OscClient
from tests.server.jackprobe import JackProbe, jack_port
from tests.server.playing import status

pytestmark = [pytest.mark.jack, pytest.mark.slow]

MIDI_ERRORS = 10  # /status.reply's midi_errors


def test_no_underrun_and_no_stuck_note_after_a_burst_of_junk(jack, tmp_path, xruns):
    """A host of its own: random channel messages change patches (program changes pick
    the bank's), volumes, pans and bend ranges."""
    import random

    port = "ps-junk"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--midi-virtual", port])
    osc = OscClient(host.port)
    probe = None
    try:
        probe = JackProbe(jack_port(f".*:{port}$", midi=True), None, name="ps-junk-probe")
        rng = random.Random(33)
        before = status(osc)
        x0 = xruns.count
        for _ in range(200):  # 200 cycles of 20 random events, some of them note-ons
            probe.send([bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12))) for _ in range(20)])
        probe.send([bytes([0xB0 | ch, c, 0]) for ch in range(16) for c in (64, 66, 123)])
        # Every note ends within its release: the bank's patches' longest is 1.57 s.
        assert_within(lambda: status(osc)[0] == 0, 2.0, xruns, x0, "after the junk, pedals up, all notes off")
        after = status(osc)
        assert host.proc.poll() is None
        assert after[MIDI_ERRORS] > before[MIDI_ERRORS]
        assert_no_underruns(after[13] - before[13], xruns.count - x0, "during the junk")
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        host.stop()

