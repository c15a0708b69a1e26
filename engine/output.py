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

import gc
import math
import os
import threading
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
from engine.realtime import RENDER_PRIORITY, drop_fifo, set_fifo, warm_up
from engine.recorder import Recorder
from engine.status import RUNNING, OutputFigures, new_status

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
#: Seconds of blocks whose headroom (how far ahead of the device each was finished) the
#: lateness figures cover: the last second, so that /status shows what happens now.
HEADROOM_WINDOW_S = 1.0
#: Collect Python's young garbage this often, on the render thread right after a block
#: (the cyclic collector is off while streaming: it would run wherever an allocation
#: trips it, the render thread included). The middle generation every few seconds; the
#: oldest never while streaming: a full pass also empties the interpreter's free lists
#: and took 1.0-1.4 ms of a 4 ms margin in the render process, for ~1,300 objects. The
#: render loop makes next to no cyclic garbage (measured: none that outlives gen 1).
_GC_YOUNG_S = 0.5
_GC_MIDDLE_S = 5.0
#: How often the device's own underflow count is fetched from the C callback.
_STATS_S = 0.25
#: How often the headroom's percentiles are published (they cost ~50 us).
_PERCENTILES_S = 0.25
#: Test-only: milliseconds the render loop runs on, busy, once a second (0: never), so
#: that a test can see the underrun check fail on a render that overruns
#: (tests/engine/test_live.py). Read once, when an output is made; never set it to play.
_TEST_OVERRUN_ENV = "PROMPTSYNTH_TEST_OVERRUN_MS"


class AudioOutput(OutputFigures):
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
        self.engine = engine
        self.device = device
        self.blocksize = blocksize
        self.ahead_s = parse_latency(latency, blocksize, engine.sample_rate)
        self.priority = int(priority)
        self.client_name = client_name
        self._status = new_status() if status is None else status
        self._ring_underruns = 0
        self._device_underflows = 0
        self._render_errors = 0
        self.last_error: str | None = None
        #: How the render thread is scheduled ("SCHED_FIFO 3", or why not).
        self.priority_note = "not started"
        self._fifo_thread: int | None = None
        self._record_path = record
        self.recorder: Recorder | None = None
        self._mixer = None
        self._ring = None
        self._action = None
        self._running = False
        self._written = 0  # frames written into the ring (= engine frames rendered)
        self._consumed = 0  # frames the device has taken from the ring, as last seen
        self._offsets = [math.inf] * CLOCK_WINDOW
        self._offset = time.monotonic()
        self._n_clock = 0
        self._headroom_window = max(16, int(HEADROOM_WINDOW_S * engine.sample_rate / blocksize))
        self._headroom = np.full(self._headroom_window, np.nan)
        self._n_headroom = 0
        self._headroom_min_s = math.inf
        self._busy_s = 0.0
        self._load = 0.0
        self._gc_max_s = 0.0
        self._next_young = self._next_middle = 0.0
        self._next_percentiles = 0.0
        self._closed = False
        self._overrun_s = float(os.environ.get(_TEST_OVERRUN_ENV) or 0.0) / 1000.0  # test-only
        self._blas_limit = None
        self._gc_was_enabled = True

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

    def _prepare(self) -> None:
        """What the render thread needs before its first block: BLAS on one thread, every
        code path run once, the garbage collector's old objects frozen and the collector
        off (the render loop collects young objects itself); :meth:`_restore` undoes it."""
        # A matrix product on the render thread would run in BLAS, whose worker threads
        # have ordinary priority, so a busy machine would stall the render thread behind
        # them; one thread keeps any such work on the render thread.
        from threadpoolctl import threadpool_limits

        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        # Every code path first: the voice kernel's first call compiles it or loads it
        # from numba's cache, which makes many objects.
        warm_up(self.engine.sample_rate, self.blocksize)
        # Python's cyclic garbage collector runs in whichever thread allocates, the render
        # thread included, and a full pass over a large program takes milliseconds. What
        # exists now (the warm-up's objects too: left young, the first collection of the
        # middle generation, 5 s in, took them all and the ring ran dry) is frozen, never
        # scanned again, and the collector is switched off while streaming; the render
        # thread collects the young objects itself, right after a block, when it is
        # furthest ahead.
        gc.collect()
        gc.freeze()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()

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

    def _end_rendering(self) -> None:
        """End the render loop and finalise the recording (nothing renders into it any
        more); the stream is left as it is. The loop ends at its next pass when another
        thread calls this."""
        self._running = False
        if self.recorder is not None:
            self.recorder.close()

    def _restore(self) -> None:
        limit, self._blas_limit = self._blas_limit, None
        if limit is not None:
            limit.restore_original_limits()
            if self._gc_was_enabled:
                gc.enable()

    def close(self) -> None:
        self.stop()
        self._closed = True

    def __enter__(self) -> AudioOutput:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def panic(self) -> None:
        self.engine.panic()

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
        try:
            self.engine.render_into(out)
        except Exception as exc:  # noqa: BLE001 - the stream must outlive any bug
            out.fill(0.0)
            self._render_errors += 1
            self.last_error = repr(exc)
            self.engine.frame += out.shape[0]
        self._ring.write(out)
        self._written += out.shape[0]
        if self.recorder is not None:
            self.recorder.push(out)

    def claim_priority(self) -> str:
        """Give the calling thread, the one that will call :meth:`run`, the render
        priority (SCHED_FIFO ``priority``); returns how it is scheduled now, in words.
        :meth:`run` claims it itself if this was not called, and gives it back when its
        loop ends. Only the rendering thread may hold it: a thread that starts processes
        hands its policy down to them (a model worker at SCHED_FIFO would take the CPU
        from the render loop itself)."""
        if self._fifo_thread != threading.get_ident():
            self.priority_note = set_fifo(self.priority)
            self._fifo_thread = threading.get_ident()
        return self.priority_note

    def _note_headroom(self, h: float) -> None:
        """One block's headroom (seconds left before the device needed it)."""
        self._headroom[self._n_headroom % self._headroom_window] = h
        self._n_headroom += 1
        if h < self._headroom_min_s:
            self._headroom_min_s = h

    def _collect(self, now: float) -> None:
        """Collect young garbage when due (the middle generation every few seconds): called
        right after a block, when the loop is furthest from its next deadline."""
        if now < self._next_young:
            return
        t0 = time.monotonic()
        if now >= self._next_middle:
            gc.collect(1)
            self._next_middle = now + _GC_MIDDLE_S
        else:
            gc.collect(0)
        self._gc_max_s = max(self._gc_max_s, time.monotonic() - t0)
        self._next_young = now + _GC_YOUNG_S

    def _publish(self, now: float) -> None:
        """Write the figures into the status record (once a pass; the percentiles, which
        cost ~50 us, every ``_PERCENTILES_S``)."""
        s = self._status
        s["frame"] = self.engine.frame
        s["offset"] = self._offset
        s["voices"] = self.engine.voices.n
        s["ring_underruns"] = self._ring_underruns
        s["device_underflows"] = self._device_underflows
        s["render_errors"] = self._render_errors
        s["cpu_load"] = self._load
        s["beat"] = now
        if now >= self._next_percentiles:
            self._next_percentiles = now + _PERCENTILES_S
            n = min(self._n_headroom, self._headroom_window)
            if n:
                h = self._headroom[:n]
                s["headroom_min_s"] = h.min()
                s["headroom_p1_s"] = np.percentile(h, 1)
                s["headroom_median_s"] = np.median(h)
                s["headroom_min_ever_s"] = self._headroom_min_s
            s["gc_max_s"] = self._gc_max_s

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
        self._next_young = clock() + _GC_YOUNG_S
        self._next_middle = clock() + _GC_MIDDLE_S
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
