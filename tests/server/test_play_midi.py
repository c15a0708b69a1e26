"""End to end: notes from another process through a JACK MIDI virtual port.

The host opens `--midi-virtual`; this test process opens a JACK MIDI output, connects it
to the host's port and plays; the recording must hold the notes at their pitch, spaced
as they were sent, bent by the RPN-0 bend range.
"""

from __future__ import annotations

import time

import mido
import pytest
import soundfile as sf

from tests.conftest import cpu_steal_s, steal_resolution_s
from tests.server.conftest import SR, HostProcess, OscClient, onsets

pytestmark = [pytest.mark.jack, pytest.mark.slow]

PORT = "ps-test-in"

def _backend():
    return mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)


@pytest.fixture(scope="module")
def host(jack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("midi")
    h = HostProcess(["--no-model", "--bank", str(tmp / "bank"), "--midi-virtual", PORT])
    yield h
    h.stop()


def open_out(port: str):
    backend = _backend()
    # The host's virtual input is a port this process sends to: one of its output names.
    # Its client is "promptsynth", or "promptsynth-01" ... beside another host.
    names = [n for n in backend.get_output_names() if n.startswith("promptsynth") and n.endswith(f":{port}")]
    assert names, f"host's virtual port not visible: {backend.get_output_names()}"
    out = backend.open_output(names[0])
    time.sleep(0.2)  # let JACK connect before the first message
    return out


def test_ready_line_names_the_virtual_port(host):
    assert f"midi in: {PORT}" in host.ready_line
    assert "model: unavailable (no model: started with --no-model)" in host.ready_line


def test_prompt_fails_without_a_model(host):
    c = OscClient(host.port)
    try:
        c.send("/prompt", "a bell", 1, 4)
        fail = c.expect("/fail")
        assert fail[0] == "/prompt" and "no model" in fail[1]
    finally:
        c.close()


@pytest.mark.parametrize("render", ["cycle", "ahead"])
def test_notes_spacing_and_bend_range_in_the_recording_after_sigint(jack, tmp_path, render):
    """A host of its own, recording: notes from another process, then SIGINT; the
    recording holds them at their pitch, spaced as they were sent, bent by the RPN-0
    bend range, and every voice had ended. Both ways of rendering: in JACK's cycle (the
    render process queues the MIDI) and ahead (the host does)."""
    port = "ps-test-rec"
    wav = tmp_path / "out.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--midi-virtual", port,
                        "--record", str(wav), "--render", render])
    c = OscClient(host.port)
    out = None
    sent: dict[str, float] = {}
    try:
        out = open_out(port)
        for name, value in [
            ("attack_s", 0.0),
            ("sustain", 1.0),
            ("release_s", 0.001),
            ("mod_index", 0.0),
        ]:
            c.send(f"/param/{name}", value, 3)  # MIDI channel index 2 = OSC channel 3
        c.ask("/sync", 1, reply="/synced")
        send = out.send
        steal0 = cpu_steal_s()
        send(mido.Message("note_on", channel=2, note=62, velocity=100))
        sent["62"] = time.monotonic()
        time.sleep(0.1)
        send(mido.Message("note_on", channel=2, note=62, velocity=0))
        time.sleep(0.15)
        send(mido.Message("note_on", channel=2, note=65, velocity=100))
        sent["65"] = time.monotonic()
        sent["stolen"] = cpu_steal_s() - steal0
        time.sleep(0.1)
        send(mido.Message("note_off", channel=2, note=65))
        time.sleep(0.15)
        # RPN 0: bend range 12 semitones; a full bend up turns 50 into 62 (an octave up).
        for cc, v in [(101, 0), (100, 0), (6, 12), (38, 0)]:
            send(mido.Message("control_change", channel=2, control=cc, value=v))
        send(mido.Message("pitchwheel", channel=2, pitch=8191))
        time.sleep(0.05)
        send(mido.Message("note_on", channel=2, note=50, velocity=100))
        time.sleep(0.1)
        send(mido.Message("note_off", channel=2, note=50))
        send(mido.Message("pitchwheel", channel=2, pitch=0))
        time.sleep(0.2)
        c.ask("/sync", 2, reply="/synced")
        assert c.ask("/status", reply="/status.reply")[0] == 0
    finally:
        c.close()
        if out is not None:
            out.close()
        assert host.stop() == 0, "".join(host.stderr)
    audio, sr = sf.read(str(wav), dtype="float32")
    ons = onsets(audio)
    pitches = [p for _, p in ons]
    assert 62 in pitches, ons
    i = pitches.index(62)
    assert pitches[i + 1] == 65, ons
    gap = ons[i + 1][0] - ons[i][0]
    sent_gap = (sent["65"] - sent["62"]) * SR
    # Timestamped on arrival: the spacing they were sent with is kept to within 10 ms of
    # scheduling jitter. CPU stolen by the hypervisor between the two makes the JACK
    # device drop cycles (its frames then lag the wall clock by as much), so that much
    # more is allowed, plus what the steal counter cannot see (one tick per CPU).
    allowed = 0.01 + sent["stolen"] + steal_resolution_s()
    assert abs(gap - sent_gap) < allowed * SR, (gap, sent_gap, sent)
    assert pitches[i + 2] == round(50 + 12 * 8191 / 8192), ons


def test_midi_in_matches_an_existing_port_by_substring(jack, tmp_path):
    """A keyboard-like port that exists before the host: --list-midi shows it and
    --midi-in opens it by part of its name."""
    import subprocess
    import sys

    from tests.server.conftest import ROOT

    kbd = _backend().open_output("ps-keyboard-42", virtual=True, client_name="fakekbd")
    try:
        time.sleep(0.1)
        listing = subprocess.run(
            [sys.executable, "-m", "server", "play", "--list-midi"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listing.returncode == 0 and "fakekbd:ps-keyboard-42" in listing.stdout
        h = HostProcess(
            ["--no-model", "--bank", str(tmp_path / "bank"), "--midi-in", "keyboard-42"]
        )
        try:
            assert "midi in: fakekbd:ps-keyboard-42" in h.ready_line
            time.sleep(0.2)
            kbd.send(mido.Message("note_on", channel=0, note=60, velocity=90))
            c = OscClient(h.port)
            try:
                time.sleep(0.1)
                assert c.ask("/status", reply="/status.reply")[0] == 1
            finally:
                c.close()
        finally:
            assert h.stop() == 0
        # A keyboard not plugged in yet is waited for (test_midi_hotplug.py plays it
        # when it comes): the host starts, says so and names what there is.
        h = HostProcess(["--no-model", "--bank", str(tmp_path / "bank2"), "--midi-in", "no-such-port-xyz"])
        try:
            assert "waiting for 'no-such-port-xyz'" in h.ready_line
            deadline = time.monotonic() + 2.0
            while "no MIDI source matches" not in "".join(h.stderr) and time.monotonic() < deadline:
                time.sleep(0.02)
            said = "".join(h.stderr)
            assert "no MIDI source matches 'no-such-port-xyz' yet" in said
            assert "fakekbd:ps-keyboard-42" in said
        finally:
            assert h.stop() == 0
    finally:
        kbd.close()
