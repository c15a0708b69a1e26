"""Live audio output: the render loop renders the engine ahead of the device into a ring
buffer that PortAudio's callback, written in C (rtmixer), plays.

No Python runs on the device's real-time thread. The render loop renders each block a
fixed time (``ahead``) before the device takes it, so a late render (a busy machine, a
garbage collection, another thread holding the GIL) eats into that margin instead of
causing a click. Measured on JACK's own xrun count, beside a silent client and pyo, in
``benchmarks/bench_xruns.py``; why this design and its figures: docs/engine.md.

The loop runs on the thread that calls :meth:`AudioOutput.run`: the render process's main
thread (engine/live.py), whose only job it is. Its contract: no file I/O, no lock another
thread holds for long, no waiting on anything but time; the recording is copied into a
preallocated ring there and written to disk by a separate thread. What it measures goes
into a status record (engine/status.py) once a pass.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from engine.device import (
    LATENCY_PRESETS,
    AudioError,
    _rtmixer,
    _sd,
    _set_jack_client_name,
    check_blocksize,
    list_devices,
    parse_latency,
)
from engine.engine import Engine
from engine.realtime import RENDER_PRIORITY, drop_fifo
from engine.recorder import Recorder
from engine.renderloop import RenderLoop
from engine.status import RUNNING

__all__ = [
    "AudioOutput",
    "AudioError",
    "Recorder",
    "list_devices",
    "parse_latency",
    "LATENCY_PRESETS",
    "RENDER_PRIORITY",
]

#: Clock observations whose minimum anchors :meth:`AudioOutput.frame_at` (8 blocks: 21 ms
#: at 128 frames and 48 kHz). The render thread notes when it sees the device take a
#: block; it sees it a little after the fact, by a varying delay, so the earliest of the
#: recent observations is the true pacing. A lasting shift (the device dropped cycles)
#: is followed within the window.
CLOCK_WINDOW = 8
#: How often the device's own underflow count is fetched from the C callback.
_STATS_S = 0.25


class AudioOutput(RenderLoop):
    """Streams an Engine to an output device: :meth:`start` opens the stream, :meth:`run`
    renders on the calling thread until :meth:`stop`.

    The loop shares its process's GIL: other busy Python threads there can hold it off,
    so it runs in a process whose only job it is (``python -m engine.live``, started by
    :class:`engine.live.LiveOutput`, which a program that plays live uses instead).

    Args:
        engine: the engine to render; its sample rate is the stream's.
        device: PortAudio device index or a substring of its name; None = default.
        blocksize: frames per block (the device's callback and the engine's render).
        latency: how far ahead of the device the engine renders: "low" (2 blocks),
            "high" (4 blocks) or seconds. What a note costs in all: :attr:`latency_ms`.
        record: optional path of a WAV file receiving every rendered block, sample-exact
            on the engine's frames.
        priority: SCHED_FIFO priority asked for the render thread (0: do not ask).
        client_name: under JACK, the client's name (its ports are ``NAME:out_0`` ...);
            None: PortAudio's default. Setting it restarts PortAudio in this process, so
            only a process without other streams (the render process) sets it.
        status: the record (engine/status.py's ``STATUS``) the loop writes its figures
            into, for example in shared memory; None: one of its own.
    """

    def __init__(
        self,
        engine: Engine,
        device: int | str | None = None,
        blocksize: int = 128,
        latency: float | str = "low",
        record: str | os.PathLike | None = None,
        priority: int = RENDER_PRIORITY,
        client_name: str | None = None,
        status: np.ndarray | None = None,
    ) -> None:
        check_blocksize(blocksize)
        super().__init__(engine, blocksize, parse_latency(latency, blocksize, engine.sample_rate), record,
                         priority, client_name, status)
        self.device = device
        self._mixer = None
        self._ring = None
        self._action = None
        self._consumed = 0  # frames the device has taken from the ring, as last seen
        self._offsets = [math.inf] * CLOCK_WINDOW
        self._n_clock = 0

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> AudioOutput:
        """Open the stream with the render-ahead rendered; the caller then renders by
        calling :meth:`run` (the render process does, on its main thread, which this call
        gives the render priority)."""
        if self._closed:
            raise AudioError("this AudioOutput is closed; make a new one")
        if self._mixer is not None:
            return self
        sd = _sd()
        rtmixer = _rtmixer()
        if self.client_name is not None:
            _set_jack_client_name(sd, self.client_name)
        self._prepare()
        mixer = None
        try:
            if self._record_path is not None:
                self.recorder = Recorder(self._record_path, self.engine.sample_rate)
            mixer = rtmixer.Mixer(
                samplerate=self.engine.sample_rate,
                blocksize=self.blocksize,
                device=self.device,
                channels=2,
                latency="low",
            )
            # Ring: a power of two (PortAudio's ring buffer), room for the render-ahead
            # and a margin, at least 16 blocks.
            need = (math.ceil(self.ahead_s * self.engine.sample_rate / self.blocksize) + 16) * self.blocksize
            self._ring = rtmixer.RingBuffer(8, 1 << (need - 1).bit_length())
            self._block = np.zeros((self.blocksize, 2), dtype=np.float32)
            # Whole blocks covering the render-ahead before the device's first callback.
            for _ in range(max(1, math.ceil(self.ahead_s * self.engine.sample_rate / self.blocksize))):
                self._render_one()
            mixer.start()
            self._action = mixer.play_ringbuffer(self._ring)
            self._status["device_latency_s"] = float(mixer.latency)
        except (sd.PortAudioError, ValueError) as exc:
            if mixer is not None:
                mixer.close()
            if self.recorder is not None:
                self.recorder.close()
            self._restore()
            raise AudioError(
                f"cannot open audio output (device={self.device!r}, sample rate "
                f"{self.engine.sample_rate}, block {self.blocksize}): {exc}. "
                "`promptsynth devices` lists the devices; with JACK the sample rate must equal jackd's."
            ) from exc
        self._mixer = mixer
        now = time.monotonic()
        # Until the device is seen taking a block: it takes frame 0's block about now.
        self._offset = now - self.blocksize / self.engine.sample_rate
        self._offsets = [self._offset] + [math.inf] * (CLOCK_WINDOW - 1)
        self._running = True
        self._publish(now)
        self._status["state"] = RUNNING
        return self

    def stop(self) -> None:
        """Stop rendering and the stream, finalise the recording; safe to call twice."""
        # The recording first: the stream's close below can block (its server died).
        self._end_rendering()
        mixer, self._mixer = self._mixer, None
        if mixer is not None:
            try:
                mixer.stop()
            finally:
                mixer.close()
        self._restore()

    def abandon(self) -> None:
        """The audio server died: stop rendering and finalise the recording, but leave
        the stream alone (closing a PortAudio JACK stream whose server died blocks for
        seconds and then aborts the process). Exit the process soon after."""
        self._end_rendering()

    # -- state (the figures: OutputFigures, from the status record) ------------------------

    @property
    def active(self) -> bool:
        return self._mixer is not None and self._mixer.active

    @property
    def device_name(self) -> str:
        sd = _sd()
        idx = self._mixer.device if self._mixer is not None else sd.default.device[1]
        try:
            return str(sd.query_devices(idx)["name"])
        except (sd.PortAudioError, ValueError, TypeError):
            return str(idx)

    # -- the render loop -----------------------------------------------------------------

    def _render_one(self) -> None:
        """Render the next block into the ring (and the recording)."""
        out = self._block
        self._render_block(out)
        self._ring.write(out)
        if self.recorder is not None:
            self.recorder.push(out)

    def run(self, hook=None) -> None:
        """Render until :meth:`stop`, on the calling thread. The figures are published
        into the status record after each pass; then ``hook()``, if given, is called
        (at least once a block), and returning False ends the loop."""
        self.claim_priority()
        sr = float(self.engine.sample_rate)
        block = self.blocksize
        period = block / sr
        poll = period / 2.3
        ahead = self.ahead_s
        ring = self._ring
        mixer = self._mixer
        clock = time.monotonic
        sleep = time.sleep
        offsets = self._offsets
        self._schedule_collections(clock())
        next_stats = clock() + _STATS_S
        busy_start = clock()
        next_overrun = clock() + 1.0
        stats_action = None
        try:
            while self._running:
                now = clock()
                avail = ring.read_available
                consumed = self._written - avail
                if consumed != self._consumed:
                    # The device took a block since the last look: it took frame `consumed`'s
                    # block no later than now.
                    self._consumed = consumed
                    offsets[self._n_clock % CLOCK_WINDOW] = now - consumed / sr
                    self._n_clock += 1
                    self._offset = min(offsets)
                if self._action not in mixer.actions:
                    # The ring ran dry: rtmixer stops playing it. Count it, refill, restart.
                    self._ring_underruns += 1
                    while ring.read_available < ahead * sr + block and ring.write_available >= block:
                        self._render_one()
                    self._action = mixer.play_ringbuffer(ring)
                    continue
                # Render each block `ahead` seconds before the device takes it (block j is
                # taken at offset + (j + 1) * period), or at once if the ring is nearly dry.
                due = self._offset + (self._written + block) / sr - ahead
                rendered = False
                while (now >= due or ring.read_available < block) and ring.write_available >= block:
                    t0 = clock()
                    self._render_one()
                    t1 = clock()
                    self._busy_s += t1 - t0
                    if self._n_clock >= CLOCK_WINDOW:
                        # The time left before the device takes this block (once the clock
                        # has been seen running: before, it is a guess).
                        self._note_headroom(self._offset + self._written / sr - t1)
                    due += period
                    now = t1
                    rendered = True
                if rendered:
                    self._collect(now)
                    if now >= next_stats:
                        if stats_action is not None and stats_action not in mixer.actions:
                            self._device_underflows += int(stats_action.stats.output_underflows)
                            stats_action = None
                        if stats_action is None:
                            stats_action = mixer.fetch_and_reset_stats()
                        elapsed = now - busy_start
                        self._load = 0.5 * self._load + 0.5 * (self._busy_s / elapsed if elapsed > 0 else 0.0)
                        self._busy_s = 0.0
                        busy_start = now
                        next_stats = now + _STATS_S
                    if self._overrun_s and now >= next_overrun:  # test-only, see _TEST_OVERRUN_ENV
                        end = clock() + self._overrun_s
                        while clock() < end:
                            pass
                        next_overrun = now + 1.0
                self._publish(now)
                if hook is not None and hook() is False:
                    break
                now = clock()
                # Sleep until the next block is due, but look at the ring every `poll`: the
                # clock is anchored on when a take is first seen, and a look at a fixed phase
                # of the period would see every take equally late (by up to a period). Looks
                # 1/2.3 of a period apart sweep all phases, so the earliest of the window's
                # observations is within a tenth of a look of the take itself.
                sleep(min(max(due - now, 5e-5), poll))
        finally:
            drop_fifo(self.priority_note)
            self._fifo_thread = None
            self.priority_note = "normal (the loop has ended)"
