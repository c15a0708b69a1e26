"""Per-note expression in the live host under JACK, heard in its recording (--record):
real MIDI bytes through a JACK MIDI port (channel and key pressure on a held note) and
real OSC over UDP (an id note's pitch)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.engine.helpers import cents, peak_frequency
from tests.server.conftest import SR, HostProcess, OscClient, recorded_frames, wait_recorded
from tests.server.playing import steady_sine

pytestmark = [pytest.mark.jack, pytest.mark.slow]

#: Each stretch of the played phrase (s); its middle half is measured.
STEP_S = 0.4


def brightness(y: np.ndarray, f0: float) -> float:
    """Energy above 1.5 x the fundamental over all of it (0 for a pure sine)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1.0 / SR)
    return float(spec[freqs > 1.5 * f0].sum() / spec.sum())


def stretches(audio: np.ndarray, n: int) -> list[np.ndarray]:
    """The middle half of each of ``n`` stretches of STEP_S from the note's onset."""
    on = np.flatnonzero(np.abs(audio) > 1e-3)
    assert on.size, "no note heard"
    step = int(STEP_S * SR)
    return [audio[on[0] + k * step + step // 4 : on[0] + k * step + 3 * step // 4] for k in range(n)]


def test_pressure_through_jack_midi_brightens_a_held_note(jack, tmp_path):
    """A held key 60 (a plain sine); channel pressure (D0) full, then none; key pressure
    (A0) on another key, then on 60 itself: the note is brighter and louder exactly while
    its own pressure is up."""
    from tests.server.jackprobe import JackProbe, jack_port

    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav),
                        "--midi-virtual", "ps-expr"])
    osc = OscClient(host.port)
    probe = None
    try:
        steady_sine(osc)
        probe = JackProbe(jack_port(".*:ps-expr$", midi=True), None, name="ps-expr-probe")
        start = recorded_frames(wav)
        t0 = time.monotonic()
        phrase = [
            [bytes([0x90, 60, 80])],  # 0: the note alone
            [bytes([0xD0, 127])],  # 1: channel pressure full
            [bytes([0xD0, 0])],  # 2: none
            [bytes([0xA0, 67, 127])],  # 3: key pressure on a key that does not sound
            [bytes([0xA0, 60, 127])],  # 4: on the note itself
        ]
        for events in phrase:
            probe.send(events)
            time.sleep(STEP_S)
        probe.send([bytes([0x80, 60, 0])])
        audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
        parts = stretches(audio, len(phrase))
        f0 = 261.63
        bright = [brightness(p, f0) for p in parts]
        rms = [float(np.sqrt(np.mean(p**2))) for p in parts]
        assert bright[0] < 1e-4 and bright[2] < 1e-4 and bright[3] < 1e-4, bright
        assert bright[1] > 0.05 and bright[4] > 0.05, bright
        assert rms[1] > 1.5 * rms[0] and rms[4] > 1.5 * rms[0], rms  # +6 dB (the limiter aside)
        assert abs(rms[3] / rms[0] - 1.0) < 0.01, rms
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        assert host.stop() == 0


def test_an_id_notes_pitch_over_udp(jack, tmp_path):
    """/note/id, /note/id/pitch and /note/id/off from a real OSC client: the note moves by
    the semitones sent, within 1 cent, and ends; a second id is left where it was."""
    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav)])
    osc = OscClient(host.port)
    try:
        steady_sine(osc)
        start = recorded_frames(wav)
        t0 = time.monotonic()
        osc.send("/note/id", 11, 69.0, 100.0, 1)
        time.sleep(STEP_S)
        osc.send("/note/id/pitch", 11, 2.0)
        time.sleep(STEP_S)
        osc.send("/note/id/pitch", 11, -0.5)
        time.sleep(STEP_S)
        osc.send("/note/id/off", 11)
        audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
        parts = stretches(audio, 3)
        for part, semis in zip(parts, (0.0, 2.0, -0.5)):
            f = peak_frequency(part, SR)
            assert abs(cents(f, 440.0 * 2 ** (semis / 12))) < 1.0, (semis, f)
        assert osc.ask("/sync", 3, reply="/synced")
        time.sleep(0.1)
        assert osc.ask("/status", reply="/status.reply")[0] == 0  # ended: no stuck note
        osc.send("/note/id/pitch", 11, 1.0)  # the id has ended
        assert osc.expect("/fail", timeout=2.0)[0] == "/note/id/pitch"
    finally:
        osc.close()
        assert host.stop() == 0


@pytest.mark.parametrize("turned_on", ["by the configuration message", "by play --mpe"])
def test_mpe_bend_on_a_member_channel_moves_its_note_only(jack, tmp_path, turned_on):
    """MPE on, by the MPE Configuration Message through a JACK MIDI port (RPN 6 on
    channel 1: 15 member channels) or by ``play --mpe``, then a note on each of channels 2 and 3 and a bend of 3 semitones
    (512 of 8192 at the members' 48) on channel 2: in the recording channel 2's note
    moved 300 cents, channel 3's did not; both play channel 1's patch."""
    from tests.server.jackprobe import JackProbe, jack_port

    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav),
                        "--midi-virtual", "ps-mpe", *(["--mpe"] if "--mpe" in turned_on else [])])
    osc = OscClient(host.port)
    probe = None
    try:
        steady_sine(osc)  # channel 1: the zone's master, whose patch the members play
        probe = JackProbe(jack_port(".*:ps-mpe$", midi=True), None, name="ps-mpe-probe")
        if "--mpe" not in turned_on:
            probe.send([bytes([0xB0, 101, 0]), bytes([0xB0, 100, 6]), bytes([0xB0, 6, 15])])
        start = recorded_frames(wav)
        t0 = time.monotonic()
        probe.send([bytes([0x91, 69, 100]), bytes([0x92, 76, 100])])  # A4 and E5
        time.sleep(STEP_S)
        probe.send([bytes([0xE1, (8192 + 512) & 0x7F, (8192 + 512) >> 7])])
        time.sleep(STEP_S)
        probe.send([bytes([0x81, 69, 0]), bytes([0x82, 76, 0])])
        audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
        before, after = stretches(audio, 2)
        e5 = 440.0 * 2 ** (7 / 12)
        assert abs(cents(peak_frequency(before, SR, 400, 500), 440.0)) < 1.0
        assert abs(cents(peak_frequency(before, SR, 600, 700), e5)) < 1.0
        assert abs(cents(peak_frequency(after, SR, 500, 560), 440.0 * 2 ** (3 / 12))) < 1.0
        assert abs(cents(peak_frequency(after, SR, 640, 700), e5)) < 1.0
        # A pure sine each (the master's patch, not channel 2's default FM): nothing
        # between and above the two notes.
        spec = np.abs(np.fft.rfft(after * np.hanning(len(after)))) ** 2
        freqs = np.fft.rfftfreq(len(after), 1.0 / SR)
        assert spec[freqs > 800].sum() < 1e-4 * spec.sum()
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        assert host.stop() == 0


def _pd_patch(port: int) -> str:
    """A vanilla Pd patch that plays an id note at A4 from a [loadbang], moves it 2
    semitones up, ends it and quits: [oscformat] and [netsend -u -b], every number a
    Pd float, as docs/clients.md shows."""
    objects = [
        "obj 10 10 loadbang", "obj 10 40 t b b", f"msg 200 40 connect localhost {port}", "obj 10 400 netsend -u -b",
        "obj 10 340 list prepend send", "obj 10 370 list trim",
        "obj 10 70 delay 200", "msg 10 100 3 69 100 1", "obj 10 130 oscformat note id",
        f"obj 200 70 delay {int(STEP_S * 1000)}", "msg 200 100 3 2", "obj 200 130 oscformat note id pitch",
        f"obj 400 70 delay {int(STEP_S * 1000)}", "msg 400 100 3", "obj 400 130 oscformat note id off",
        "obj 600 70 delay 300", "msg 600 100 \\; pd quit",
    ]
    wires = [(0, 1), (1, 6), (2, 3), (4, 5), (5, 3), (6, 7), (7, 8), (8, 4), (6, 9), (9, 10), (10, 11), (11, 4),
             (9, 12), (12, 13), (13, 14), (14, 4), (12, 15), (15, 16)]
    lines = ["#N canvas 0 0 800 500 12;"] + [f"#X {o};" for o in objects]
    lines += [f"#X connect {a} 0 {b} 0;" for a, b in wires] + ["#X connect 1 1 2 0;"]
    return "\n".join(lines) + "\n"


def test_an_id_notes_pitch_from_pure_data(jack, tmp_path):
    """Per-note expression from a real Pd (headless, vanilla objects): the id note sounds
    at A4, then 2 semitones up, within 1 cent, and ends."""
    import shutil
    import subprocess

    if shutil.which("pd") is None:
        pytest.skip("needs Pure Data (pd)")
    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav)])
    osc = OscClient(host.port)
    try:
        steady_sine(osc)
        patch = tmp_path / "expression.pd"
        patch.write_text(_pd_patch(host.port))
        start = recorded_frames(wav)
        t0 = time.monotonic()
        subprocess.run(["pd", "-nogui", "-noaudio", "-nomidi", "-open", str(patch)], timeout=30, check=True,
                       capture_output=True)
        audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
        parts = stretches(audio, 2)
        for part, semis in zip(parts, (0.0, 2.0)):
            f = peak_frequency(part, SR)
            assert abs(cents(f, 440.0 * 2 ** (semis / 12))) < 1.0, (semis, f)
        assert osc.ask("/sync", 4, reply="/synced")
        time.sleep(0.1)
        assert osc.ask("/status", reply="/status.reply")[0] == 0
    finally:
        osc.close()
        assert host.stop() == 0
