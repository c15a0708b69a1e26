"""What every render loop shares, whichever way it keeps pace with the device: the
render thread's priority, the garbage collector kept off the block's path, the
recording, and the figures written into the status record (engine/status.py).

Two loops build on it: :class:`engine.output.AudioOutput` renders ahead of the device
into a ring that PortAudio's C callback plays; :class:`engine.jackout.JackOutput`
renders each block in JACK's own cycle. Their contract is the same: no file I/O, no
lock another thread holds for long, no waiting on anything but the device; the
recording is copied into a preallocated ring and written to disk by a separate thread.
"""

from __future__ import annotations

import gc
import math
import os
import threading
import time

import numpy as np

from engine.device import check_blocksize
from engine.realtime import RENDER_PRIORITY, set_fifo, warm_up
from engine.recorder import Recorder
from engine.status import OutputFigures, new_status

__all__ = ["RenderLoop", "HEADROOM_WINDOW_S"]

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
#: Young objects that make a collection due before its time (CPython's own threshold).
YOUNG_OBJECTS = 700
#: How often the headroom's percentiles are published (they cost ~50 us).
_PERCENTILES_S = 0.25
#: Test-only: milliseconds the render loop runs on, busy, once a second (0: never), so
#: that a test can see the underrun check fail on a render that overruns
#: (tests/engine/test_live.py). Read once, when an output is made; never set it to play.
_TEST_OVERRUN_ENV = "PROMPTSYNTH_TEST_OVERRUN_MS"


class RenderLoop(OutputFigures):
    """The state and steps a render loop shares (a subclass opens the device in
    ``start()`` and renders in ``run(hook)``).

    Args:
        engine: the engine to render; its sample rate is the stream's.
        blocksize: frames per block.
        ahead_s: how far after its arrival an event from another thread sounds (the
            render-ahead: :attr:`frame_at` places events by it).
        record: optional path of a WAV file receiving every rendered block, sample-exact
            on the engine's frames.
        priority: SCHED_FIFO priority asked for the render thread (0: do not ask).
        client_name: under JACK, the client's name (its ports are ``NAME:out_0`` ...).
        status: the record (engine/status.py's ``STATUS``) the loop writes its figures
            into, for example in shared memory; None: one of its own.
    """

    def __init__(self, engine, blocksize: int, ahead_s: float, record: str | os.PathLike | None = None,
                 priority: int = RENDER_PRIORITY, client_name: str | None = None,
                 status: np.ndarray | None = None) -> None:
        check_blocksize(blocksize)
        self.engine = engine
        self.blocksize = blocksize
        self.ahead_s = ahead_s
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
        self._running = False
        self._written = 0  # engine frames rendered
        self._offset = time.monotonic()
        self._headroom_window = max(16, int(HEADROOM_WINDOW_S * engine.sample_rate / blocksize))
        self._headroom = np.full(self._headroom_window, np.nan)
        self._n_headroom = 0
        self._headroom_min_s = math.inf
        self._busy_s = 0.0
        self._load = 0.0
        self._gc_max_s = 0.0
        #: Whether the middle generation is collected too (every few seconds). A loop in
        #: JACK's cycle, whose next block is due within a period, does not: the render
        #: loop makes next to no cyclic garbage, and a pass over it took milliseconds.
        self.collect_middle = True
        self._next_young = self._next_middle = 0.0
        self._next_percentiles = 0.0
        self._closed = False
        self._overrun_s = float(os.environ.get(_TEST_OVERRUN_ENV) or 0.0) / 1000.0  # test-only
        self._blas_limit = None
        self._gc_was_enabled = True

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

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def panic(self) -> None:
        self.engine.panic()

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

    #: The audio server shut the stream down (a loop that can tell says so).
    server_gone = False

    def _render_block(self, out: np.ndarray) -> None:
        """Render the next block into ``out``; a block whose render raised is silence,
        counted (the stream must outlive any bug)."""
        try:
            self.engine.render_into(out)
        except Exception as exc:  # noqa: BLE001
            out.fill(0.0)
            self._render_errors += 1
            self.last_error = repr(exc)
            self.engine.frame += out.shape[0]
        self._written += out.shape[0]

    def _note_headroom(self, h: float) -> None:
        """One block's headroom (seconds left before the device needed it)."""
        self._headroom[self._n_headroom % self._headroom_window] = h
        self._n_headroom += 1
        if h < self._headroom_min_s:
            self._headroom_min_s = h

    def _schedule_collections(self, now: float) -> None:
        """The loop starts: its first collections are due a period of each from now."""
        self._next_young = now + _GC_YOUNG_S
        self._next_middle = now + _GC_MIDDLE_S

    def _collect(self, now: float) -> None:
        """Collect young garbage when due (the middle generation every few seconds): called
        right after a block, when the loop is furthest from its next deadline. Due by time,
        or sooner by count (:data:`YOUNG_OBJECTS`): a flood of events makes objects fast,
        and one collection of half a second of them took 3.5 ms, more than a period."""
        if now < self._next_young and gc.get_count()[0] < YOUNG_OBJECTS:
            return
        t0 = time.monotonic()
        if now >= self._next_middle and self.collect_middle:
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
