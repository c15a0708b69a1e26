"""A JACK MIDI key sounds in the JACK cycle it arrives, at its own frame (``--render cycle``).

A probe JACK client writes a note-on into the host's virtual MIDI port at a chosen frame
of a cycle and finds the first sample above 1e-3 on the host's output port, on JACK's
frame clock (tests/server/jackprobe.py). In JACK's cycle the render process queues each
event of the cycle at its frame of the block it is rendering (engine/jackout.py,
server/render.py), so the delay is the same for every note (no jitter) and the note
sounds in the cycle it was sent in: the probe hears it in its next cycle, since its
input is our output of the cycle before (a feedback loop), as it hears FluidSynth.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_no_underruns
from tests.server.conftest import HostProcess, OscClient
from tests.server.jackprobe import JackProbe, jack_port
from tests.server.playing import status

pytestmark = [pytest.mark.jack, pytest.mark.slow]

BLOCK = 128
UNDERRUNS = 13  # /status.reply's underruns
ON, OFF = bytes([0x90, 60, 100]), bytes([0x80, 60, 0])


@pytest.fixture(scope="module")
def playing(jack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cycle")
    port = "ps-cycle"
    host = HostProcess(["--no-model", "--render", "cycle", "--bank", str(tmp / "bank"), "--midi-virtual", port])
    osc = OscClient(host.port)
    probe = None
    try:
        for name, value in (("attack_s", 0.0), ("release_s", 0.01), ("sustain", 1.0)):
            osc.send(f"/param/{name}", value, 1)
        osc.ask("/sync", 1, reply="/synced")
        probe = JackProbe(jack_port(f".*:{port}$", midi=True), jack_port("promptsynth-audio.*:out_0$"),
                          name="ps-cycle-probe")
        probe.key_to_sound([ON])  # a first note: first allocations, first calls
        probe.send([OFF])
        time.sleep(0.1)
        yield host, osc, probe
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        host.stop()


def measure(osc, probe, xruns, at: int = 0) -> tuple[int, bool]:
    """Key to sound in frames for a note-on ``at`` frames into the probe's cycle, and
    whether the host's render kept every block (no underrun of its own) meanwhile."""
    u0, x0 = status(osc)[UNDERRUNS], xruns.count
    frames = probe.key_to_sound([ON], at=at)
    time.sleep(0.05)
    probe.send([OFF])
    time.sleep(0.05)
    underruns = status(osc)[UNDERRUNS] - u0
    assert_no_underruns(underruns, xruns.count - x0, "while a note was measured")
    return frames, underruns == 0


def test_the_ready_line_says_the_render_is_in_jacks_cycle(playing):
    host, _, _ = playing
    assert "in JACK's cycle" in host.ready_line, host.ready_line


def test_a_key_sounds_in_the_cycle_it_arrives_with_no_jitter(playing, xruns):
    host, osc, probe = playing
    kept = [f for f, clean in (measure(osc, probe, xruns) for _ in range(8)) if clean]
    assert kept, "every note met an underrun"
    # The same frame every time, within the cycle after the one it was sent in (the
    # probe's input lags by its feedback cycle): a render one block ahead would add 128.
    assert len(set(kept)) == 1, kept
    assert BLOCK <= kept[0] < BLOCK + 16, kept


def test_a_key_sounds_at_its_own_frame_of_the_cycle(playing, xruns):
    """A note-on k frames into the cycle sounds exactly k frames later than one at 0."""
    host, osc, probe = playing
    base, clean = measure(osc, probe, xruns)
    for k in (17, 64, 101, 127):
        frames, clean_k = measure(osc, probe, xruns, at=k)
        if clean and clean_k:
            assert frames - base == k, (k, frames, base)
