"""MIDI keyboards that come and go: a real JACK MIDI port of another process, killed
while keys are held (as a pulled USB cable), then back; and ``--midi-in all``.

The keyboard is a separate process (``KEYBOARD``) that opens a JACK MIDI output and plays
what this test writes to its stdin; killing it removes its port from JACK, as a keyboard
driver does when the cable is pulled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import assert_within
from tests.server.conftest import ROOT, SR, HostProcess, OscClient, recorded_frames, wait_recorded

pytestmark = [pytest.mark.jack, pytest.mark.slow]

KEYBOARD = """
import sys, mido
backend = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True)
out = backend.open_output(sys.argv[1], virtual=True, client_name=sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    kind, *a = line.split()
    if kind == "on":
        out.send(mido.Message("note_on", channel=int(a[0]), note=int(a[1]), velocity=100))
    elif kind == "off":
        out.send(mido.Message("note_off", channel=int(a[0]), note=int(a[1])))
    elif kind == "cc":
        out.send(mido.Message("control_change", channel=int(a[0]), control=int(a[1]), value=int(a[2])))
    print("sent", flush=True)
"""
RELEASE_S = 0.05


class Keyboard:
    def __init__(self, port: str, client: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", KEYBOARD, port, client],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "sent"

    def kill(self) -> float:
        """SIGKILL (no goodbye, as a cable pulled); returns when it happened."""
        t = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return t


def status(osc: OscClient) -> list:
    return osc.ask("/status", reply="/status.reply")


def wait_for(pred, timeout: float) -> float | None:
    """Seconds until ``pred()`` held (polled every 5 ms), None if it never did."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.005)
    return None


def stderr_lines(host: HostProcess, words: str) -> int:
    return sum(words in line for line in host.stderr)


@pytest.fixture(scope="module")
def host(jack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hotplug")
    h = HostProcess(
        ["--no-model", "--bank", str(tmp / "bank"), "--midi-in", "ps-hotplug-kbd",
         "--record", str(tmp / "out.wav")]
    )
    h.wav = tmp / "out.wav"
    yield h
    h.stop()


@pytest.fixture(scope="module")
def osc(host):
    c = OscClient(host.port)
    for ch in range(1, 5):  # OSC channels 1-4: the MIDI channels 0-3 the keyboard plays
        for name, value in [("attack_s", 0.0), ("sustain", 1.0), ("release_s", RELEASE_S), ("mod_index", 0.0)]:
            c.send(f"/param/{name}", value, ch)
    c.ask("/sync", 1, reply="/synced")
    c.ask("/notify", c.port, reply="/notify.reply")
    yield c
    c.close()


def test_a_keyboard_that_is_not_there_yet_is_waited_for(host, osc):
    assert "waiting for 'ps-hotplug-kbd'" in host.ready_line
    assert wait_for(lambda: stderr_lines(host, "no MIDI source matches 'ps-hotplug-kbd' yet") == 1, 2.0) is not None
    assert status(osc)[15] == 0  # MIDI inputs open


def test_pulled_keyboard_releases_its_notes_and_comes_back(host, osc, xruns):
    start = recorded_frames(host.wav)
    t_start = time.monotonic()
    kbd = Keyboard("ps-hotplug-kbd", "stagekbd")
    try:
        assert wait_for(lambda: status(osc)[15] == 1, 2.0) is not None
        assert osc.expect("/midi/connected", timeout=2) == ["stagekbd:ps-hotplug-kbd"]
        kbd.send("cc 1 64 127")  # sustain down on channel 2: its notes must not hang either
        kbd.send("on 0 60")
        kbd.send("on 0 64")
        kbd.send("on 1 67")
        kbd.send("off 1 67")  # held by the pedal
        assert wait_for(lambda: status(osc)[0] == 3, 1.0) is not None
        # Keys held a while, as on stage: the recording's check below reads their level
        # 0.1-0.2 s before the end of the release (a pull 0.1 s after the note-ons left
        # no held sound there to read).
        time.sleep(0.4)
        x0 = xruns.count
        kbd.kill()
        # Within 100 ms the notes are released; they then fade over their release time.
        assert_within(lambda: status(osc)[0] == 0, 0.1 + RELEASE_S + 0.02, xruns, x0,
                      "the vanished keyboard's notes released and faded")
    finally:
        if kbd.proc.poll() is None:
            kbd.kill()
    assert osc.expect("/midi/lost", timeout=2) == ["stagekbd:ps-hotplug-kbd", 2]
    said = "MIDI input lost: stagekbd:ps-hotplug-kbd (released 2 notes)"
    assert wait_for(lambda: stderr_lines(host, said) == 1, 2.0) is not None
    assert status(osc)[15] == 0
    # The pulled notes end with their release (a fade), not a cut: in the recording.
    assert_release_heard(wait_recorded(host.wav, start, time.monotonic() - t_start + 0.3))

    # The keyboard comes back (the same name): it plays again, and only what it plays now.
    kbd = Keyboard("ps-hotplug-kbd", "stagekbd")
    try:
        assert osc.expect("/midi/connected", timeout=2) == ["stagekbd:ps-hotplug-kbd"]
        for pitch in (48, 52, 55):
            kbd.send(f"on 3 {pitch}")
        assert wait_for(lambda: status(osc)[0] == 3, 1.0) is not None
        for pitch in (48, 52, 55):
            kbd.send(f"off 3 {pitch}")
        assert wait_for(lambda: status(osc)[0] == 0, 1.0) is not None
    finally:
        kbd.kill()
    assert osc.expect("/midi/lost", timeout=2) == ["stagekbd:ps-hotplug-kbd", 0]
    said = "MIDI input connected: stagekbd:ps-hotplug-kbd"
    assert wait_for(lambda: stderr_lines(host, said) == 2, 2.0) is not None


def assert_release_heard(audio: np.ndarray) -> None:
    """The first sounding stretch of ``audio`` (the notes held when the keyboard was
    pulled) ends with a fade of about the release time, not a cut."""
    x = np.abs(audio[:, 0])
    nz = np.flatnonzero(x > 0)
    # The first sounding stretch: the three notes held when the keyboard was pulled.
    gaps = np.flatnonzero(np.diff(nz) > SR // 10)
    first = nz[: gaps[0] + 1] if gaps.size else nz
    end = int(first[-1])
    assert end < len(x) - SR // 10, "the recording read ends before the notes do"
    level = float(np.max(x[end - SR // 5 : end - SR // 10]))
    tail = x[end - int(0.005 * SR) : end + 1]
    assert level > 0.05
    assert float(np.max(tail)) < 0.2 * level, "the sound stopped at full level: a click"
    # Falling for about the release time.
    above_half = np.flatnonzero(x[end - int(0.2 * SR) : end + 1] > 0.5 * level)
    fade = (int(0.2 * SR) - int(above_half[-1])) / SR
    assert RELEASE_S * 0.3 < fade < RELEASE_S * 1.5, fade


def test_midi_in_all_connects_a_port_that_appears_later(jack, tmp_path):
    h = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--midi-in", "all",
                     "--midi-virtual", "ps-own-port"])
    c = OscClient(h.port)
    try:
        assert "midi in: all" in h.ready_line
        c.ask("/notify", c.port, reply="/notify.reply")
        before = status(c)[15]
        kbd = Keyboard("ps-late-arrival", "latekbd")
        try:
            assert c.expect("/midi/connected", timeout=2) == ["latekbd:ps-late-arrival"]
            assert status(c)[15] == before + 1
            listing = c.ask("/midi/list", reply="/midi/list.reply")
            n, names = listing[0], listing[1:]
            assert "latekbd:ps-late-arrival" in names[:n]
            # The host's own ports are never connected to itself (no loop).
            assert not any(name.startswith("promptsynth") for name in names[:n] if "ps-own-port" not in name)
            kbd.send("on 0 60")
            assert wait_for(lambda: status(c)[0] == 1, 1.0) is not None
        finally:
            kbd.kill()
        assert c.expect("/midi/lost", timeout=2) == ["latekbd:ps-late-arrival", 1]
    finally:
        c.close()
        assert h.stop() == 0


def test_list_midi_names_the_sources_and_says_how_to_take_them_all(jack):
    kbd = Keyboard("ps-listed", "listkbd")
    try:
        r = subprocess.run([sys.executable, "-m", "server", "play", "--list-midi"], cwd=ROOT,
                           capture_output=True, text=True, timeout=30)
    finally:
        kbd.kill()
    assert r.returncode == 0 and "listkbd:ps-listed" in r.stdout
    assert "--midi-in all" in r.stdout
