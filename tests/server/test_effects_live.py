"""The send effects in the live host under JACK, heard in its recording (--record): a
reverb send by CC 91 through a real JACK MIDI port rings on after the note-off, /panic
stops the tail, and /send/reverb over real UDP turns the send off and on again."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.effects import EFFECT_SETTINGS
from tests.conftest import assert_no_underruns
from tests.server.conftest import SR, HostProcess, OscClient, recorded_frames, wait_recorded
from tests.server.playing import status, steady_sine

pytestmark = [pytest.mark.jack, pytest.mark.slow]

NOTE_S = 0.3
#: Where the tail is measured: from 0.1 s to 0.4 s after the note-off (the note's own
#: release is 10 ms).
TAIL = (0.1, 0.4)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def tail_after_note(wav, play_note) -> float:
    """Play one note (``play_note(on)``, ``on`` True then False, NOTE_S apart) and return
    the recording's RMS in TAIL after its note-off."""
    start = recorded_frames(wav)
    t0 = time.monotonic()
    play_note(True)
    time.sleep(NOTE_S)
    play_note(False)
    audio = wait_recorded(wav, start, time.monotonic() - t0 + TAIL[1] + 0.1)[:, 0]
    on = np.flatnonzero(np.abs(audio) > 1e-3)
    assert on.size, "no note heard"
    off = on[0] + int(NOTE_S * SR)
    return rms(audio[off + int(TAIL[0] * SR) : off + int(TAIL[1] * SR)])


def test_reverb_send_by_jack_midi_and_udp_tail_and_panic(jack, tmp_path, xruns):
    from tests.server.jackprobe import JackProbe, jack_port

    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav),
                        "--midi-virtual", "ps-fx", "--reverb-room", "0.8"])
    osc = OscClient(host.port)
    probe = None
    try:
        steady_sine(osc)
        probe = JackProbe(jack_port(".*:ps-fx$", midi=True), None, name="ps-fx-probe")
        ring0, x0 = status(osc)[13], xruns.count

        def midi_note(on: bool) -> None:
            probe.send([bytes([0x90 if on else 0x80, 69, 100 if on else 0])])

        def osc_note(on: bool) -> None:
            osc.send("/note" if on else "/note/off", *((69, 100) if on else (69,)))

        # CC 91 = 127 on MIDI channel 1 through JACK MIDI: the note rings on.
        probe.send([bytes([0xB0, 91, 127])])
        wet = tail_after_note(wav, midi_note)
        assert wet > 1e-3, wet
        s = status(osc)
        fx = s[16:]
        names = [e.name for e in EFFECT_SETTINGS]
        assert fx[names.index("reverb_room")] == pytest.approx(0.8)
        assert fx[len(names)] == 1.0  # the reverb send of channel 1, from the MIDI CC

        # /panic: the tail stops (a 5 ms fade), the recording is silent from then on.
        osc.send("/panic")
        assert osc.ask("/sync", 2, reply="/synced")
        time.sleep(0.2)
        start = recorded_frames(wav)
        assert np.abs(wait_recorded(wav, start, 0.3)).max() == 0.0

        # /send/reverb 0 over UDP: the same note is dry, silent after its release.
        osc.send("/send/reverb", 0.0, 1)
        assert osc.ask("/sync", 3, reply="/synced")
        dry = tail_after_note(wav, osc_note)
        assert dry < 1e-5, dry
        # ... and 1 again: it rings.
        osc.send("/send/reverb", 1.0, 1)
        assert osc.ask("/sync", 4, reply="/synced")
        assert tail_after_note(wav, osc_note) > 1e-3

        # Bad values: /fail, and nothing changes.
        osc.send("/fx/reverb/room", float("nan"))
        assert osc.expect("/fail", timeout=2.0) == ["/fx/reverb/room", "room must be a number in range 0..1, got nan"]
        assert status(osc)[16 + names.index("reverb_room")] == pytest.approx(0.8)
        # The effects cost no block of their own: no underrun beyond the control's.
        assert_no_underruns(status(osc)[13] - ring0, xruns.count - x0, "with the reverb on")
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        assert host.stop() == 0
