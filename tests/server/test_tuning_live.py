"""Tunings in the live host: `play --tuning FILE.scl`, OSC /tuning/scl and /tuning/reset,
heard in the host's recording within 1 cent (real OSC over UDP, a real JACK server)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from engine.tuning import Tuning
from tests.engine.helpers import cents, peak_frequency
from tests.server.conftest import SR, HostProcess, OscClient, recorded_frames, wait_recorded
from tests.server.playing import steady_sine

DATA = Path(__file__).resolve().parents[1] / "data" / "tuning"


def played_hz(osc: OscClient, wav, key: int) -> float:
    start = recorded_frames(wav)
    t0 = time.monotonic()
    osc.send("/note", key, 100, 1)
    time.sleep(0.4)
    osc.send("/note/off", key, 1)
    audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
    on = np.flatnonzero(np.abs(audio) > 1e-3)
    assert on.size, "no note heard"
    return peak_frequency(audio[on[0] + SR // 20 : on[0] + SR // 3], SR)


@pytest.mark.jack
@pytest.mark.slow
def test_a_scl_tuning_from_the_command_line_and_over_osc(jack, tmp_path):
    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav),
                        "--tuning", str(DATA / "19edo.scl"), "--tuning-dir", str(DATA)])
    osc = OscClient(host.port)
    try:
        steady_sine(osc)
        edo19 = Tuning.from_files(DATA / "19edo.scl").notes
        f = played_hz(osc, wav, 65)
        assert abs(cents(f, 440.0 * 2 ** ((edo19[65] - 69) / 12))) < 1.0, f
        assert osc.ask("/tuning/reset", reply="/tuning.reply") == ["equal temperament"]
        f = played_hz(osc, wav, 65)
        assert abs(cents(f, 440.0 * 2 ** ((65 - 69) / 12))) < 1.0, f
        # /fnote: a note at any frequency, whatever the tuning; /fnote/off ends it.
        start = recorded_frames(wav)
        t0 = time.monotonic()
        osc.send("/fnote", 432.0, 100.0, 1)
        time.sleep(0.4)
        osc.send("/fnote/off", 432.0, 1)
        audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
        on = np.flatnonzero(np.abs(audio) > 1e-3)
        f = peak_frequency(audio[on[0] + SR // 20 : on[0] + SR // 3], SR)
        assert abs(cents(f, 432.0)) < 1.0, f
        assert osc.ask("/sync", 2, reply="/synced") and osc.ask("/status", reply="/status.reply")[0] == 0
        just = Tuning.from_files(DATA / "just-major.scl", DATA / "white-keys.kbm").notes
        assert osc.ask("/tuning/scl", "just-major.scl", "white-keys.kbm", reply="/tuning.reply") == ["just-major.scl"]
        f = played_hz(osc, wav, 64)  # E, a just major third above C (264 Hz): 330 Hz
        assert abs(cents(f, 330.0)) < 1.0 and abs(cents(f, 440.0 * 2 ** ((just[64] - 69) / 12))) < 1.0, f
    finally:
        osc.close()
        assert host.stop() == 0


def test_a_bad_scl_file_stops_play_naming_the_line(tmp_path):
    import subprocess
    import sys

    from tests.server.conftest import ROOT

    bad = tmp_path / "bad.scl"
    bad.write_text("desc\n 2\n 100.0\n two hundred\n")
    r = subprocess.run([sys.executable, "-m", "server", "play", "--no-model", "--bank", str(tmp_path / "b"),
                        "--tuning", str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert f"{bad}, line 4: expected a pitch" in r.stderr, r.stderr


@pytest.mark.jack
@pytest.mark.slow
def test_a_mts_single_note_tuning_change_through_jack_midi(jack, tmp_path):
    """A MIDI Tuning Standard real-time single-note change, as a tuner or a sequencer
    sends it, through a real JACK MIDI port: key 64 a quarter tone up."""
    from tests.server.jackprobe import JackProbe, jack_port

    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav),
                        "--midi-virtual", "ps-mts"])
    osc = OscClient(host.port)
    probe = None
    try:
        steady_sine(osc)
        probe = JackProbe(jack_port(".*:ps-mts$", midi=True), None, name="ps-mts-probe")
        probe.send([bytes([0xF0, 0x7F, 0x7F, 0x08, 0x02, 0x00, 0x01, 64, 64, 0x40, 0x00, 0xF7])])
        time.sleep(0.1)
        f = played_hz(osc, wav, 64)
        assert abs(cents(f, 440.0 * 2 ** ((64.5 - 69) / 12))) < 1.0, f
        f = played_hz(osc, wav, 65)  # the next key is as it was
        assert abs(cents(f, 440.0 * 2 ** ((65 - 69) / 12))) < 1.0, f
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        assert host.stop() == 0
