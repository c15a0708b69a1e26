"""Real-time output through sounddevice on a real JACK server (the dummy backend in CI)."""

import time

import numpy as np
import pytest
import soundfile as sf

from engine import AudioError, AudioOutput, Engine, KeyTable, Theta
from engine.live import LiveEngine, LiveOutput
from tests.conftest import (
    assert_no_underruns,
    cpu_steal_s,
    steal_resolution_s,
)

pytestmark = pytest.mark.jack
SR = 48000  # must equal jackd's -r


def test_ten_seconds_of_32_voices_without_underflow(jack, xruns, tmp_path):
    """The live path (the render process, as `promptsynth play` runs it): no block late
    in 10 s of 32 voices unless JACK itself missed cycles in the same window."""
    engine = LiveEngine(SR, max_voices=32)
    theta = Theta.from_dict(
        {"attack_s": 0.01, "decay_s": 0.5, "sustain": 0.6, "mod_index": 3.0, "mod_ratio": 2.0}
    )
    rec = tmp_path / "rec.wav"
    headroom = []
    with LiveOutput(engine, blocksize=128, record=rec) as out:
        for ch in range(16):
            engine.set_patch(ch, KeyTable.flat(theta))
        for i in range(32):
            engine.note_on(i % 16, 40 + i, 90)
        time.sleep(0.1)
        t0 = time.monotonic()
        steal0 = cpu_steal_s()
        x0, ring0 = xruns.count, out.ring_underruns
        f0 = engine.frame
        while time.monotonic() - t0 < 10.0:
            time.sleep(0.25)
            assert engine.active_voices == 32
            headroom.append(out.headroom_ms()["min"])  # the last second's smallest
        elapsed = time.monotonic() - t0
        frames = engine.frame - f0
        ring, errors = out.ring_underruns - ring0, out.render_errors
        control = xruns.count - x0
        stolen = cpu_steal_s() - steal0
    assert errors == 0
    assert_no_underruns(ring, control, "in 10 s of 32 voices")
    # The render process kept ahead of the device: every block of the run was finished
    # before the device took it (a block rendered late shows as a negative headroom).
    if control == 0:
        assert min(headroom) > 0, headroom
    # It ran at real-time pace: the clock is JACK's, not a free-running loop (which would
    # run hundreds of times faster). The dummy device drops the cycles it misses while
    # the hypervisor steals CPU, so frames may lag by that much more.
    assert frames / SR == pytest.approx(elapsed, abs=0.1 + stolen + steal_resolution_s())
    audio, sr = sf.read(rec, dtype="float32")
    assert sr == SR and audio.shape[1] == 2
    assert audio.shape[0] >= frames
    assert np.max(np.abs(audio)) <= 1.0
    assert np.sqrt(np.mean(audio[SR:] ** 2)) > 0.05


def test_recording_holds_exactly_what_was_played(jack, tmp_path):
    engine = LiveEngine(SR, max_voices=4)
    rec = tmp_path / "rec.wav"
    with LiveOutput(engine, blocksize=128, record=rec):
        engine.set_patch(
            0, KeyTable.flat({"attack_s": 0.0, "sustain": 1.0, "mod_index": 0.0, "release_s": 0.01})
        )
        time.sleep(0.2)
        start = engine.frame + 4800
        engine.note_on(0, 69, 127, frame=start)
        engine.note_off(0, 69, frame=start + SR // 2)
        time.sleep(1.0)
    audio, _ = sf.read(rec, dtype="float32")
    nz = np.flatnonzero(np.abs(audio[:, 0]) > 0)
    assert nz[0] == start + 1  # the recording starts at engine frame 0, sample-exact
    assert abs(nz[-1] - (start + SR // 2 + int(0.01 * SR))) <= 1


def test_bad_device_is_a_clear_error(jack):
    with pytest.raises(AudioError, match="cannot open audio output"):
        AudioOutput(Engine(SR), device="no such device").start()


def test_wrong_sample_rate_for_jack_is_a_clear_error(jack):
    out = AudioOutput(Engine(44100))
    try:
        with pytest.raises(AudioError, match="sample rate"):
            out.start()
    finally:
        out.close()


def test_start_stop_leaks_no_threads_and_close_is_safe_twice(jack, tmp_path):
    """The render loop's output, opened and closed in this process (nothing renders: the
    loop runs only where :meth:`AudioOutput.run` is called, as in the render process).
    Opening it leaves the calling thread's scheduling alone: only the thread that renders
    takes SCHED_FIFO (a test process left at SCHED_FIFO 3 handed it to every host and
    model worker it started later, and a busy worker then held off their render loops)."""
    import os
    import threading

    before = threading.active_count()
    policy = os.sched_getscheduler(0)
    for i in range(3):
        out = AudioOutput(Engine(SR), blocksize=256, record=tmp_path / f"r{i}.wav").start()
        time.sleep(0.1)
        assert out.active
        out.close()
        out.close()
        assert not out.active
    time.sleep(0.2)
    assert threading.active_count() == before
    assert os.sched_getscheduler(0) == policy
    with pytest.raises(AudioError, match="closed"):
        out.start()
