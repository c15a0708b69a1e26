"""End to end: a real `promptsynth play --record` subprocess on JACK, driven over OSC by
python-osc and by liblo's `oscsend`; the replies and the recording are checked.

One host serves the module. Notes meant for the recording play on channel 2, set to a
pure sine (mod_index 0) with instant attack and release, so each note's onset and pitch
can be read back exactly; prompts change channel 1 and others. Each test that plays
reads back its own stretch of the recording while the host still writes it (from the
frame it started at), so it passes or fails on its own, in any order; timing is judged
against send and arrival times measured as the test runs, not against its sleeps.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import time

import pytest
import soundfile as sf

from engine import TIMBRE_NAMES
from tests.conftest import assert_no_underruns
from tests.server.conftest import (
    ROOT,
    SR,
    HostProcess,
    OscClient,
    UdpRelay,
    bundle,
    free_udp_port,
    message,
    onsets,
    recorded_frames,
    sounding_frames,
    wait_recorded,
)

pytestmark = [pytest.mark.jack, pytest.mark.slow]

N_TIMBRE = len(TIMBRE_NAMES)  # what a reply carries of a patch: its centre's timbre values, schema order
SINE = [("attack_s", 0.0), ("sustain", 1.0), ("release_s", 0.001), ("mod_index", 0.0)]
#: What a SINE note sounds past its note-off (release_s), in frames.
RELEASE = round(0.001 * SR)
#: How far an unbundled note's start or end may sit from where its measured send time
#: puts it, in frames: the host applies an unbundled message at the next block it
#: renders (up to a block, 128 frames, after its arrival; docs/osc.md), and the arrival
#: follows the send by the time the host's OSC thread takes to wake. Two blocks; measured
#: here over 60 starts, ends and gaps of notes sent 100 ms apart: median 63, max 155.
ARRIVAL = 2 * 128


@pytest.fixture(scope="module")
def host(jack, checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("play")
    h = HostProcess(
        ["--model", str(checkpoint), "--bank", str(tmp / "bank"), "--record", str(tmp / "out.wav")]
    )
    h.wav = tmp / "out.wav"
    h.bank = tmp / "bank"
    yield h
    h.stop()


@pytest.fixture(scope="module")
def osc(host):
    c = OscClient(host.port)
    for name, value in SINE:
        c.send(f"/param/{name}", value, 2)
    c.ask("/sync", 1, reply="/synced")
    yield c
    c.close()


def test_ready_line_names_port_device_block_latency_model(host):
    line = host.ready_line
    assert f"osc 127.0.0.1:{host.port}" in line
    assert "midi in: none" in line
    assert "block 128" in line and "48000 Hz" in line
    assert "latency" in line and "render-ahead" in line and "model: ready" in line


def test_status_reply(osc):
    voices, underruns, cpu, sr, block, latency_ms, *stage = osc.ask(
        "/status", reply="/status.reply"
    )
    # Fields appended later (docs/osc.md): dropped, failed, errors, restarts, midi_errors,
    # then the render-ahead, the smallest recent headroom and the two kinds of underrun,
    # the MIDI inputs, then the effects' settings and sends (tests/server/test_effects_osc.py).
    counts, (ahead_ms, headroom_ms, ring, device, midi_inputs) = stage[:5], stage[5:10]
    assert all(isinstance(v, int) for v in counts)
    assert sr == SR and block == 128
    assert voices >= 0 and underruns >= 0 and 0.0 <= cpu < 1.0
    # The default render-ahead is 2 blocks; a note sounds after it, one block and the
    # device's own latency (PortAudio's figure under JACK: one period): 10.7 ms at 128
    # frames. (In JACK's cycle: tests/server/test_cycle_render.py.)
    assert ahead_ms == pytest.approx(2.0 * 128 / SR * 1000)
    assert latency_ms == pytest.approx(ahead_ms + 2 * 128 / SR * 1000, abs=0.01)
    assert 0.0 < headroom_ms <= ahead_ms
    assert ring + device == underruns
    assert midi_inputs == 0


def test_prompt_replies_with_the_timbre_in_schema_order(osc):
    from engine import TIMBRE_SPACE

    osc.send("/prompt", "a bright glassy bell", 1, 17)
    p = osc.expect("/prompt/done", timeout=30)
    assert p[:2] == [17, "a bright glassy bell"]
    assert len(p) == 2 + N_TIMBRE + 1 and all(isinstance(v, float) and math.isfinite(v) for v in p[2:-1])
    # attack_s ... noise_decay_s, each in its range (no render settings: pitch, rate...).
    assert all(lo <= v <= hi for v, lo, hi in zip(p[2:-1], TIMBRE_SPACE.minimum, TIMBRE_SPACE.maximum))
    # Last, the instrument the words picked (this model has no library: its flow's patch).
    assert p[-1] == "flow candidate 1"
    # Numbers arrive as floats from Max and Pd: channel and id as floats work too.
    osc.send("/prompt", "a warm pad", 3.0, 18.0)
    assert osc.expect("/prompt/done", timeout=30)[:2] == [18, "a warm pad"]


@pytest.mark.parametrize(
    "address, args, words",
    [
        ("/prompt", [""], "text must contain some text"),
        ("/prompt", [3], "text must be a string"),
        ("/prompt", ["x", 17], "channel must be an int in range 1..16"),
        ("/note", [60, 200], "velocity must be an int in range 0..127"),
        ("/note", [60.5, 100], "pitch must be an int in range 0..127"),
        ("/note", [float("nan"), 100], "pitch must be"),
        ("/note", [float("inf"), 100], "pitch must be"),
        ("/note", [60], "takes pitch velocity [channel]"),
        ("/bend", [1.5], "bend must be a number in range -1..1"),
        ("/cc", [7, "loud"], "value must be an int in range 0..127"),
        ("/param/attack_s", [9.0], "attack_s must be in range 0..2"),
        ("/param/volume", [1.0], "unknown address"),
        ("/morph", ["a", "b", 2.0], "t must be a number in range 0..1"),
        ("/patch/load", ["../etc/passwd"], "patch name"),
        ("/patch/load", ["no such patch"], "no patch named"),
        ("/program", [5], "no patch at program 5"),
        ("/nothing/here", [], "unknown address"),
        ("/notify", [70000], "port must be an int in range 0..65535"),
    ],
)
def test_bad_messages_fail_with_a_reason_and_change_nothing(osc, address, args, words):
    osc.send(address, *args)
    fail = osc.expect("/fail", where=lambda p: p[0] == address)
    assert words in fail[1]


def test_a_bundle_with_one_bad_message_applies_nothing(osc):
    t = time.time() + 0.2
    osc.send_raw(bundle(t, message("/note", 50, 100, 2), message("/note", 50, 300, 2)))
    fail = osc.expect("/fail", where=lambda p: p[0] == "/note")
    assert "whole bundle" in fail[1]
    time.sleep(0.4)
    assert osc.ask("/status", reply="/status.reply")[0] == 0  # no voice started


def test_patch_save_list_load(osc, host):
    osc.send("/prompt", "a plucked string", 4, 5)
    theta = osc.expect("/prompt/done", timeout=30)[2:-1]
    assert osc.ask("/patch/save", "pluck", 4, reply="/patch/saved") == ["pluck", 4]
    assert "pluck" in osc.ask("/patch/list", reply="/patch/list.reply")
    assert osc.ask("/patch/load", "pluck", 5, reply="/patch/loaded") == ["pluck", 5]
    # A second save keeps the first and picks a new name.
    assert osc.ask("/patch/save", "pluck", 5, reply="/patch/saved") == ["pluck-2", 5]
    assert len(theta) == N_TIMBRE
    # The key-tracked model's patch is a table, and the saved file keeps it.
    from patches import load_patch

    saved = load_patch(host.bank / "pluck.json")
    assert not saved.table.is_flat
    assert [saved.table.center()[k] for k in saved.table.center()] == pytest.approx(theta, rel=1e-5)
    assert saved.table.keys[0] == 0 and len(saved.table.velocities) == 4
    assert saved.prompt == "a plucked string"


def test_the_third_operator_is_set_by_osc_and_saved_with_the_patch(osc, host):
    """Schema 3's values over OSC, as a Max or Pd patch sends them: they change the
    channel's patch (what /patch/save writes), and a bad one fails with the range."""
    from patches import load_patch

    for name, value in (("op3_ratio", 3.0), ("op3_index", 2.5), ("op3_peak", 4.0), ("op3_layout", 1.0)):
        osc.send(f"/param/{name}", value, 12)
    osc.send("/param/op3_layout", 3.0, 12)
    fail = osc.expect("/fail")
    assert fail[0] == "/param/op3_layout" and "op3_layout must be in range 0..2" in fail[1]
    assert osc.ask("/patch/save", "three-ops", 12, reply="/patch/saved") == ["three-ops", 12]
    centre = load_patch(host.bank / "three-ops.json").table.center()
    assert (centre["op3_ratio"], centre["op3_index"], centre["op3_peak"], centre["op3_layout"]) == (3.0, 2.5, 4.0, 1.0)


def test_the_noise_band_is_set_by_osc_and_saved_with_the_patch(osc, host):
    """Schema 4's values over OSC: they change the channel's patch (what /patch/save
    writes), and a bad one fails with the range."""
    from patches import load_patch

    for name, value in (("band_level", 0.5), ("band_width", 0.25), ("band_centre", 3.0)):
        osc.send(f"/param/{name}", value, 11)
    osc.send("/param/band_width", 0.0, 11)
    fail = osc.expect("/fail")
    assert fail[0] == "/param/band_width" and "band_width must be in range 0.05..4" in fail[1]
    assert osc.ask("/patch/save", "breathy", 11, reply="/patch/saved") == ["breathy", 11]
    centre = load_patch(host.bank / "breathy.json").table.center()
    assert (centre["band_level"], centre["band_width"], centre["band_centre"]) == (0.5, 0.25, 3.0)


def test_morph(osc):
    p = osc.ask("/morph", "a bell", "a bass", 0.25, 6, reply="/morph/done", timeout=30)
    assert p[:3] == ["a bell", "a bass", 0.25] and len(p) == 3 + N_TIMBRE


def oscsend(port: int, *args: str) -> tuple[float, float]:
    """Run liblo's oscsend; the monotonic times just before it started and after it
    ended (its message left between the two)."""
    t0 = time.monotonic()
    subprocess.run(["oscsend", "localhost", str(port), *args], check=True)
    return t0, time.monotonic()


def test_notify_and_oscsend(osc, host):
    if shutil.which("oscsend") is None:
        pytest.skip("needs liblo-tools (oscsend)")
    listener = OscClient(host.port)
    try:
        listener.ask("/notify", listener.port, reply="/notify.reply")
        oscsend(host.port, "/prompt", "sii", "a soft flute", "7", "99")
        p = listener.expect("/prompt/done", timeout=30)
        assert p[:2] == [99, "a soft flute"]
        # The change notice reaches the notify target too.
        notice = listener.expect("/patch/changed", where=lambda q: q[0] == 7)
        assert notice[1] == "a soft flute" and notice[2:] == p[2:]
        # A note from oscsend, floats as Pd would send them, and its note-off: read back
        # from the recording, placed as they were sent.
        start = recorded_frames(host.wav)
        on = oscsend(host.port, "/note", "fff", "72", "100", "2")
        time.sleep(0.15)
        off = oscsend(host.port, "/note/off", "ii", "72", "2")
        listener.ask("/notify", 0, reply="/notify.reply")
    finally:
        listener.close()
    audio = wait_recorded(host.wav, start, time.monotonic() - on[0] + 0.05)
    ons = onsets(audio)
    assert [p for _, p in ons] == [72], ons
    length = sounding_frames(audio, ons[0][0]) - RELEASE
    shortest, longest = (off[0] - on[1]) * SR, (off[1] - on[0]) * SR
    assert shortest - ARRIVAL <= length <= longest + ARRIVAL, (length, shortest, longest)


def test_immediate_notes_keep_their_spacing(osc, host):
    """Unbundled messages sound a fixed time after they arrive, so the recording keeps
    the spacing they were sent with: each note's start and length against the send
    times measured here."""
    start = recorded_frames(host.wav)
    sent = {}
    for key, args in (("on60", ("/note", 60, 100, 2)), ("off60", ("/note/off", 60, 2)),
                      ("on67", ("/note", 67, 100, 2)), ("off67", ("/note", 67, 0, 2))):
        osc.send(*args)
        sent[key] = time.monotonic()
        time.sleep(0.1)
    osc.ask("/sync", 2, reply="/synced")
    audio = wait_recorded(host.wav, start, time.monotonic() - sent["on60"] + 0.1)
    ons = onsets(audio)
    assert [p for _, p in ons] == [60, 67], ons
    gap = ons[1][0] - ons[0][0]
    assert abs(gap - (sent["on67"] - sent["on60"]) * SR) <= ARRIVAL, (gap, sent)
    for (onset, _), key in zip(ons, ("60", "67")):
        length = sounding_frames(audio, onset) - RELEASE
        sent_length = (sent["off" + key] - sent["on" + key]) * SR
        assert abs(length - sent_length) <= ARRIVAL, (key, length, sent_length)


def test_bundles_are_placed_at_their_timetag(osc, host):
    """Timetagged bundles sound at their timetags, to the sample, whatever order they
    arrive in: as many frames apart as their NTP timetags say (a float time converted to
    NTP by the sender is good to a hundredth of a frame, so 50 ms can be 2,400 or 2,401
    frames: the tags sent decide, not the floats they came from)."""
    start, t_start = recorded_frames(host.wav), time.time()
    t0 = t_start + 0.3
    packets = {
        "on76": bundle(t0 + 0.25, message("/note", 76, 100, 2)),
        "off76": bundle(t0 + 0.30, message("/note/off", 76, 2)),
        "on69": bundle(t0, message("/note", 69, 100, 2)),
        "off69": bundle(t0 + 0.05, message("/note/off", 69, 2)),
    }
    # The sample each timetag falls on, counted from the NTP epoch.
    grid = {k: (struct.unpack(">Q", p[8:16])[0] * SR + (1 << 31)) >> 32 for k, p in packets.items()}
    # Sent in reverse order: the timetags, not the arrival, decide.
    for p in packets.values():
        osc.send_raw(p)
    audio = wait_recorded(host.wav, start, t0 + 0.45 - t_start)
    ons = onsets(audio)
    assert [p for _, p in ons] == [69, 76], ons
    assert ons[1][0] - ons[0][0] == grid["on76"] - grid["on69"]
    assert abs(grid["on76"] - grid["on69"] - round(0.25 * SR)) <= 1
    assert sounding_frames(audio, ons[0][0]) == grid["off69"] - grid["on69"] + RELEASE
    assert sounding_frames(audio, ons[1][0]) == grid["off76"] - grid["on76"] + RELEASE


def test_prompt_burst_while_16_voices_sound_causes_no_underrun(osc, xruns):
    """20 prompts while 16 voices sound: no underrun, and the notes keep sounding. The
    model runs in its own process; a prediction on the audio path would underrun."""
    for i in range(16):
        osc.send("/note", 40 + i, 80, 8)
    osc.ask("/sync", 3, reply="/synced")
    assert osc.ask("/status", reply="/status.reply")[0] >= 16
    before = osc.ask("/status", reply="/status.reply")[13]
    x0 = xruns.count
    for i in range(20):
        osc.send("/prompt", f"burst prompt number {i}", 8, 100 + i)
    for i in range(20):
        osc.expect("/prompt/done", timeout=60, where=lambda p, i=i: p[0] == 100 + i)
    s = osc.ask("/status", reply="/status.reply")
    assert s[0] >= 16, "the notes kept sounding through the burst"
    assert_no_underruns(s[13] - before, xruns.count - x0, "during the prompt burst")
    osc.send("/panic")
    osc.ask("/sync", 4, reply="/synced")
    time.sleep(0.2)


def test_sync_waits_for_pending_prompts(osc):
    osc.send("/prompt", "a distorted lead", 9, 41)
    osc.send("/sync", 42)
    osc.expect("/synced", timeout=30, where=lambda p: p == [42])
    # The prompt before the sync is answered already.
    osc.expect("/prompt/done", timeout=0.1, where=lambda p: p[0] == 41)


def test_model_worker_death_fails_the_prompt_and_a_new_worker_answers(osc, host):
    pids = host.worker_pids()
    assert len(pids) == 1
    # Stopped first, so that the prompt is surely still pending when the worker dies.
    subprocess.run(["kill", "-STOP", str(pids[0])], check=True)
    osc.send("/prompt", "a prompt that the dying worker never answers", 10, 51)
    time.sleep(0.2)
    subprocess.run(["kill", "-KILL", str(pids[0])], check=True)
    p = osc.expect("/fail", timeout=30, where=lambda q: q[0] == "/prompt" and q[-1] == 51)
    assert "model worker died" in p[1]
    # A new worker answers the next prompt.
    osc.send("/prompt", "a reedy organ", 10, 61)
    p = osc.expect("/prompt/done", timeout=90, where=lambda q: q[0] == 61)
    assert len(p) == 2 + N_TIMBRE + 1
    assert len(host.worker_pids()) == 1 and host.worker_pids() != pids
    assert osc.ask("/status", reply="/status.reply")[3] == SR


def test_a_key_table_patch_plays_each_key_its_own_timbre(osc, host):
    """A patch file whose decay follows the key (long low, short high), loaded from the
    bank by OSC: the host's engine gives each note its key's values, read back from the
    recording: key 36 decays over 0.8 s, key 84 over 0.08 s (to within 0.01 s)."""
    import numpy as np

    from engine import TIMBRE_INDEX, KeyTable
    from patches import Bank, Patch

    base = KeyTable.flat({"attack_s": 0.0, "sustain": 0.0, "release_s": 0.01, "mod_index": 0.0})
    values = np.tile(base.values[0, 0], (2, 1, 1))
    values[:, 0, TIMBRE_INDEX["decay_s"]] = [0.8, 0.08]
    table = KeyTable((36, 84), (100,), values)
    Bank(host.bank).save(Patch("by-key", table))
    assert osc.ask("/patch/load", "by-key", 11, reply="/patch/loaded") == ["by-key", 11]
    start = recorded_frames(host.wav)
    t0 = time.monotonic()
    for pitch in (36, 84):
        osc.send("/note", pitch, 100, 11)
        time.sleep(1.2)  # longer than either decay: the decay, not the note-off, ends it
        osc.send("/note/off", pitch, 11)
        time.sleep(0.3)
    osc.ask("/sync", 7, reply="/synced")
    audio = wait_recorded(host.wav, start, time.monotonic() - t0)
    ons = onsets(audio)
    assert [p for _, p in ons] == [36, 84], ons
    assert abs(sounding_frames(audio, ons[0][0]) - 0.8 * SR) < 0.01 * SR
    assert abs(sounding_frames(audio, ons[1][0]) - 0.08 * SR) < 0.01 * SR


def test_pd_example_headless(osc, host):
    """examples/pd/promptsynth.pd run by vanilla Pd with no GUI: its prompt is answered
    (the reply printed by Pd) and its note (makenote, 300 ms) is in the recording, as
    long as the time between its note-on and note-off arriving (Pd talks to the host
    through a relay here that notes when each of its messages arrives)."""
    if shutil.which("pd") is None:
        pytest.skip("needs Pure Data (puredata-core)")
    listen = free_udp_port()
    relay = UdpRelay(host.port)
    start, t_start = recorded_frames(host.wav), time.monotonic()
    cmd = [
        "pd",
        "-nogui",
        "-noaudio",
        "-nomidi",
        "-stderr",
        "-send",
        f"ps-connect {relay.port}",
        "-send",
        f"ps-listen {listen}",
        "-send",
        "ps-prompt a hollow wooden marimba",
        "-send",
        "ps-note 74 100 300 2",
        "-open",
        str(ROOT / "examples" / "pd" / "promptsynth.pd"),
    ]
    pd = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 30
    try:
        for line in pd.stdout:
            lines.append(line.strip())
            if line.startswith("promptsynth: prompt done") or time.monotonic() > deadline:
                break
        notes = lambda: [(t, a) for t, a, args in relay.arrivals if a == "/note" and args[0] == 74]  # noqa: E731
        while len(notes()) < 2 and time.monotonic() < deadline:  # makenote's note-off
            time.sleep(0.05)
    finally:
        pd.terminate()
        pd.wait(timeout=10)
        relay.close()
    assert f"promptsynth: notify.reply {listen}" in lines, lines
    done = [ln for ln in lines if ln.startswith("promptsynth: prompt done")]
    assert done and "a\\ hollow\\ wooden\\ marimba" in done[0], lines
    osc.ask("/notify", 0, reply="/notify.reply")
    arrivals = [args for _, a, args in relay.arrivals if a == "/note"]
    assert arrivals == [[74.0, 100.0, 2.0], [74.0, 0.0, 2.0]], relay.arrivals
    (t_on, _), (t_off, _) = notes()
    audio = wait_recorded(host.wav, start, t_off - t_start + 0.1)
    ons = onsets(audio)
    assert [p for _, p in ons] == [74], ons
    length = sounding_frames(audio, ons[0][0]) - RELEASE
    assert abs(length - (t_off - t_on) * SR) <= ARRIVAL, (length, t_off - t_on)


def test_sigint_exits_0_and_the_recording_holds_the_notes(jack, tmp_path):
    """A host of its own (the module's plays on for the other tests): a note played,
    then SIGINT: exit status 0, and the finished recording is a whole WAV file (its
    header written) holding the note."""
    h = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(tmp_path / "out.wav")])
    try:
        c = OscClient(h.port)
        for name, value in SINE:
            c.send(f"/param/{name}", value, 2)
        c.ask("/sync", 1, reply="/synced")
        c.send("/note", 64, 100, 2)
        time.sleep(0.2)
        c.send("/note/off", 64, 2)
        c.ask("/sync", 2, reply="/synced")
        time.sleep(0.1)
        c.close()
    finally:
        status = h.stop()
    assert status == 0, "".join(h.stderr)
    audio, sr = sf.read(str(tmp_path / "out.wav"), dtype="float32")
    assert sr == SR and audio.ndim == 2 and audio.shape[1] == 2
    assert [p for _, p in onsets(audio)] == [64]
