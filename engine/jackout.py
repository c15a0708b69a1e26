"""Live output in JACK's own cycle: each block is rendered when JACK asks for it.

:class:`engine.output.AudioOutput` renders ahead of the device (two blocks) into a ring
that PortAudio's C callback plays, so a key sounds that much later. Here the render
keeps pace with the device instead, as FluidSynth does:

- The process callback of our own JACK client is a numba ``cfunc`` (no Python, no GIL on
  JACK's thread). Each cycle it notes the cycle's frame and time, wakes the render loop
  (a semaphore) and waits, at most :data:`BUDGET` of the period, for the block; then it
  copies the block to the ports. A block not ready in time plays as silence and is
  counted (``ring_underruns``: what a listener hears as a click).
- The render loop (:meth:`JackOutput.run`, the render process's main thread at
  SCHED_FIFO) wakes, takes the MIDI that this very cycle brought (``midi.feed``: events
  at their frame offsets, read from JACK by compiled code, before our client ran: see
  server/jackmidi.py), renders the block and hands it over.

A note played on a JACK MIDI keyboard therefore sounds in the cycle it arrives, at its
own frame: the same cycle as FluidSynth's. Events from the host (OSC, the prompt line)
are placed one period after their arrival (:attr:`ahead_s`), since the block they fall
in may already be rendered.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np

from engine import jack
from engine.device import AudioError
from engine.jackcycle import (
    _BUDGET_NS,
    _BUF_L,
    _BUF_R,
    _CF_ADDR,
    _CLIENT,
    _CU_ADDR,
    _CUR_FRAMES,
    _CUR_USECS,
    _DONE,
    _FRAME,
    _FRAMES,
    _GONE,
    _IDLE,
    _MIDI_N,
    _MIDI_TAB,
    _MISSES,
    _N_STATE,
    _NEXT_USECS,
    _NU_ADDR,
    _PERIOD_USECS,
    _PORT_L,
    _PORT_R,
    _POSTED,
    _PU_ADDR,
    _QCTR,
    _RAW_SEC,
    _RUNNING,
    _SEM_CYCLE,
    _SEM_DONE,
    _SEQ,
    _TS,
    _TS_RAW,
    _TS_SEC,
    _WRONG_SIZE,
    _XRUNS,
    BUDGET,
    compiled,
)
from engine.realtime import drop_fifo
from engine.renderloop import RenderLoop
from engine.status import RUNNING

__all__ = ["JackOutput", "BUDGET", "available"]

_RAW = time.CLOCK_MONOTONIC_RAW  # JACK's clock
_PLAYBACK_LATENCY = 1  # jack_latency_callback_mode_t's JackPlaybackLatency
_PORT_IS_PHYSICAL = 0x4

def available() -> bool:
    """Whether libjack loads (a server may still be absent)."""
    try:
        jack.load()
        return True
    except jack.JackError:
        return False


class JackOutput(RenderLoop):
    """A render loop whose blocks are rendered in JACK's cycle (see the module).

    Args: as :class:`engine.output.AudioOutput` (``device`` and ``latency`` are not used:
    the output is JACK's, and events from the host are placed one period ahead), plus:
        midi: an object whose ``feed(jack_frame, engine_frame, frames)`` is called each
            cycle before the block renders, to queue the MIDI this cycle brought
            (``jack_frame``: the cycle's first JACK frame, which is ``engine_frame``).
        connect: connect the outputs to the system's playback ports, as PortAudio does.
        watch: ``(counters, areas)``, where every event comes from: the engine's queue's
            ``[write, read]`` counters and the MIDI areas' state words. Given, the render
            loop sleeps while the engine is idle (``Engine.idle``) and the callback plays
            silence until one of them brings an event; None: every cycle renders.
    """

    def __init__(self, engine, device=None, blocksize: int = 128, latency="low", record=None,
                 priority: int | None = None, client_name: str | None = None, status=None,
                 midi=None, connect: bool = True, watch=None) -> None:
        kw = {} if priority is None else {"priority": priority}
        super().__init__(engine, blocksize, blocksize / engine.sample_rate, record, client_name=client_name,
                         status=status, **kw)
        self.device = device
        self.render = "cycle"
        self.collect_middle = False
        self.midi = midi
        self._connect = connect
        self._client = 0
        self._st = np.zeros(_N_STATE, np.int64)
        self._sems = np.zeros(8, np.int64)  # two glibc sem_t (32 bytes each)
        self._bufs = np.zeros((2, blocksize), np.float32)
        self._lib = None
        self._name = "JACK"
        self._watch = watch
        if watch is not None:
            counters, areas = watch
            self._watched = [counters, *areas]  # kept alive: the callback reads them
            self._midi_tab = np.array([a.ctypes.data for a in areas] or [0], np.int64)
            self._st[_QCTR] = counters.ctypes.data
            self._st[_MIDI_TAB], self._st[_MIDI_N] = self._midi_tab.ctypes.data, len(areas)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> JackOutput:
        """Open the JACK client and start its cycle; the caller then renders with :meth:`run`."""
        if self._closed:
            raise AudioError("this JackOutput is closed; make a new one")
        if self._client:
            return self
        try:
            c = compiled()
        except jack.JackError as exc:
            raise AudioError(str(exc)) from exc
        lib = self._lib = c["lib"]
        st, sr = self._st, self.engine.sample_rate
        base = st.ctypes.data
        sem_cycle, sem_done = self._sems.ctypes.data, self._sems.ctypes.data + 32
        lib["sem_init"](sem_cycle, 0, 0)
        lib["sem_init"](sem_done, 0, 0)
        st[_SEM_CYCLE], st[_SEM_DONE] = sem_cycle, sem_done
        st[_TS] = base + 8 * _TS_SEC
        st[_TS_RAW] = base + 8 * _RAW_SEC
        st[_CF_ADDR], st[_CU_ADDR] = base + 8 * _CUR_FRAMES, base + 8 * _CUR_USECS
        st[_NU_ADDR], st[_PU_ADDR] = base + 8 * _NEXT_USECS, base + 8 * _PERIOD_USECS
        st[_BUF_L], st[_BUF_R] = self._bufs[0].ctypes.data, self._bufs[1].ctypes.data
        st[_FRAMES] = self.blocksize
        st[_BUDGET_NS] = int(BUDGET * self.blocksize / sr * 1e9)
        self._prepare()
        status = ctypes.c_int(0)
        name = (self.client_name or "promptsynth-audio").encode()
        client = lib["client_open"](name, jack.NO_START_SERVER, ctypes.byref(status))
        if not client:
            self._restore()
            raise AudioError(f"cannot open a JACK client (status 0x{status.value:x}): is jackd running?")
        self._client = st[_CLIENT] = client
        try:
            jack_sr = int(lib["sample_rate"](client))
            if jack_sr != sr:
                raise AudioError(f"JACK runs at {jack_sr} Hz and the engine at {sr} Hz: they must be equal "
                                 f"(--sample-rate {jack_sr}, or start jackd with -r {sr})")
            period = int(lib["buffer_size"](client))
            if period != self.blocksize:
                raise AudioError(f"JACK's period is {period} frames and the block {self.blocksize}: in JACK's "
                                 f"cycle they must be equal (--blocksize {period}, or jackd -p {self.blocksize})")
            ports = []
            for short in ("out_0", "out_1"):
                port = lib["port_register"](client, short.encode(), jack.AUDIO_TYPE, jack.PORT_IS_OUTPUT, 0)
                if not port:
                    raise AudioError(f"cannot register the JACK port {short!r}")
                ports.append(port)
            st[_PORT_L], st[_PORT_R] = ports
            # An input that orders the graph: the host's MIDI clients connect to it, so
            # JACK runs them before us and we see the MIDI of the cycle we render.
            self._order = lib["port_register"](client, b"order", jack.MIDI_TYPE, jack.PORT_IS_INPUT, 0)
            self.client_name = lib["client_name"](client).decode()
            self._name = f"JACK ({self.client_name})"
            # The render loop does this client's work while its thread waits: it takes the
            # client's real-time priority (JACK's clients' 5 by default), where that is more.
            if self.priority > 0:
                self.priority = max(self.priority, int(lib["client_rt_priority"](client)))
            if self._record_path is not None:
                from engine.recorder import Recorder

                self.recorder = Recorder(self._record_path, sr)
            if lib["set_process"](client, c["process"].address, base) != 0:
                raise AudioError("JACK refused the process callback")
            lib["set_xrun"](client, c["xrun"].address, base)
            lib["on_shutdown"](client, c["shutdown"].address, base)
            self._block = np.zeros((self.blocksize, 2), dtype=np.float32)
            self._zeros = np.zeros((self.blocksize, 2), dtype=np.float32)
            if lib["activate"](client) != 0:
                raise AudioError("cannot activate the JACK client")
            if self._connect:
                self._connect_playback(ports)
            self._latency_range = (ctypes.c_uint32 * 2)()
            for _ in range(20):  # JACK works a new connection's latency out a moment later
                self._read_device_latency()
                if self._status["device_latency_s"] > 0 or not self._connect:
                    break
                time.sleep(0.005)
        except BaseException:
            st[_RUNNING] = 0
            self._close_client()
            if self.recorder is not None:
                self.recorder.close()
            self._restore()
            raise
        now = time.monotonic()
        self._offset = now
        self._running = True
        self._publish(now)
        self._status["state"] = RUNNING
        return self

    def _connect_playback(self, ports: list[int]) -> None:
        lib = self._lib
        names = lib["get_ports"](self._client, None, jack.AUDIO_TYPE, jack.PORT_IS_INPUT | _PORT_IS_PHYSICAL)
        if not names:
            return
        try:
            arr = ctypes.cast(names, ctypes.POINTER(ctypes.c_char_p))
            targets = []
            while arr[len(targets)] is not None and len(targets) < 2:
                targets.append(arr[len(targets)])
        finally:
            lib["free"](names)
        for port, target in zip(ports, targets):
            lib["connect"](self._client, lib["port_name"](port), target)

    def stop(self) -> None:
        """Stop rendering, close the client, finalise the recording; safe twice."""
        self._end_rendering()
        self._st[_RUNNING] = 0
        self._close_client()
        self._restore()

    def abandon(self) -> None:
        """The server died: stop rendering, finalise the recording, call JACK no more."""
        self._st[_RUNNING] = 0
        self._client = 0
        self._end_rendering()

    def _cycle(self) -> tuple[int, int] | None:
        """The last cycle's first JACK frame and start time (JACK's microseconds), read
        whole; None while the callback is changing them."""
        st = self._st
        seq = int(st[_SEQ])
        frame, usecs = int(st[_FRAME]), int(st[_CUR_USECS])
        if seq & 1 or int(st[_SEQ]) != seq:
            return None
        return frame, usecs

    def _read_device_latency(self) -> None:
        """JACK's playback latency of our port (the device's, past the port): read again
        now and then, since JACK works it out for a new connection a moment later."""
        port = int(self._st[_PORT_L])
        if port and self._client:
            rng = self._latency_range
            self._lib["latency_range"](port, _PLAYBACK_LATENCY, rng)
            self._status["device_latency_s"] = rng[1] / self.engine.sample_rate

    def _close_client(self) -> None:
        client, self._client = self._client, 0
        if client:
            self._lib["deactivate"](client)
            self._lib["client_close"](client)

    @property
    def active(self) -> bool:
        return bool(self._client) and not self._st[_GONE]

    @property
    def device_name(self) -> str:
        return self._name

    @property
    def server_gone(self) -> bool:
        """JACK shut the client down (its server stopped)."""
        return bool(self._st[_GONE])

    @property
    def port_names(self) -> tuple[str, str]:
        return (f"{self.client_name}:out_0", f"{self.client_name}:out_1")

    @property
    def order_port(self) -> str:
        """The MIDI input that MIDI clients connect to, to run before us."""
        return f"{self.client_name}:order"

    # -- the render loop -----------------------------------------------------------------

    def run(self, hook=None) -> None:
        """Render each block when JACK's cycle asks for it, until :meth:`stop` (or the
        server goes). Figures are published after each block; then ``hook()`` (at least
        every 50 ms), whose False ends the loop."""
        self.claim_priority()
        lib, st = self._lib, self._st
        sr = float(self.engine.sample_rate)
        block = self.blocksize
        out, bufs = self._block, self._bufs
        wait, post = lib["sem_timedwait"], lib["sem_post"]
        sem_cycle, sem_done = int(st[_SEM_CYCLE]), int(st[_SEM_DONE])
        ts = jack.Timespec()
        ts_ref = ctypes.byref(ts)
        clock = time.monotonic
        raw = time.clock_gettime
        midi = self.midi
        engine = self.engine
        budget = BUDGET * block / sr
        seen = int(st[_POSTED])
        jack_frame = None
        next_stats = clock() + 0.25
        next_overrun = clock() + 1.0
        self._schedule_collections(clock())
        busy_start = clock()
        st[_RUNNING] = 1  # from the next cycle on, the callback waits for our blocks
        try:
            while self._running and not st[_GONE]:
                deadline = time.time() + 0.05
                ts.tv_sec, ts.tv_nsec = int(deadline), int((deadline % 1.0) * 1e9)
                wait(sem_cycle, ts_ref)
                n = int(st[_POSTED])  # the cycle that woke us
                now = clock()
                if n != seen and not st[_GONE]:
                    seen = n
                    t0 = now
                    read = self._cycle()
                    while read is None:  # the callback began the next cycle just now
                        read = self._cycle()
                    frame, usecs = read
                    if jack_frame is None:
                        jack_frame = frame - block
                    gap = (frame - jack_frame - block) & 0xFFFFFFFF
                    jack_frame = frame
                    if 0 < gap < 1 << 30:
                        # Cycles went by unrendered (missed, or silent while idle): the
                        # engine's time follows JACK's.
                        self._advance(gap)
                    if midi is not None:
                        try:
                            midi.feed(frame, engine.frame, block)
                        except Exception as exc:  # noqa: BLE001 - MIDI must not stop the render
                            self.last_error = repr(exc)
                    self._render_block(out)
                    bufs[0] = out[:, 0]
                    bufs[1] = out[:, 1]
                    st[_DONE] = n
                    post(sem_done)
                    t1 = clock()
                    self._busy_s += t1 - t0
                    if usecs:
                        # JACK's clock is CLOCK_MONOTONIC_RAW; the host's, CLOCK_MONOTONIC.
                        t1_raw = raw(_RAW)
                        start = usecs / 1e6
                        self._offset = start + (t1 - t1_raw) - (engine.frame - block) / sr
                        self._note_headroom(start + budget - t1_raw)
                    if self.recorder is not None:
                        self.recorder.push(out)
                    if self._watch is not None and engine.idle:
                        st[_IDLE] = 1  # the callback wakes us again when an event comes
                    self._collect(t1)
                    now = t1
                    if self._overrun_s and now >= next_overrun:  # test-only, see engine.output
                        end = clock() + self._overrun_s
                        while clock() < end:
                            pass
                        next_overrun = now + 1.0
                elif st[_IDLE] and jack_frame is not None:
                    # Idle: the callback plays silence; the engine's time still follows
                    # JACK's (the host reads it to know the device runs).
                    read = self._cycle()
                    frame, usecs = read if read is not None else (jack_frame, 0)
                    gap = (frame - jack_frame) & 0xFFFFFFFF
                    if 0 < gap < 1 << 30:
                        jack_frame = frame
                        self._advance(gap)
                        self._offset = usecs / 1e6 + (clock() - raw(_RAW)) - (engine.frame - block) / sr
                if now >= next_stats:
                    self._read_device_latency()
                    elapsed = now - busy_start
                    self._load = 0.5 * self._load + 0.5 * (self._busy_s / elapsed if elapsed > 0 else 0.0)
                    self._busy_s, busy_start, next_stats = 0.0, now, now + 0.25
                self._ring_underruns = int(st[_MISSES])
                self._device_underflows = int(st[_XRUNS])
                self._publish(now)
                if hook is not None and hook() is False:
                    break
        finally:
            st[_RUNNING] = 0
            drop_fifo(self.priority_note)
            self._fifo_thread = None
            self.priority_note = "normal (the loop has ended)"
        if st[_GONE]:
            self.last_error = "the JACK server shut the client down"

    def _advance(self, frames: int) -> None:
        """``frames`` went by unrendered: the engine's frame moves on, the recording
        gets silence (it stays sample-exact on the engine's frames)."""
        self.engine.frame += frames
        self._written += frames
        rec = self.recorder
        if rec is not None:
            zeros = self._zeros
            while frames > 0:
                k = min(frames, zeros.shape[0])
                rec.push(zeros[:k])
                frames -= k

    @property
    def wrong_size(self) -> int:
        """A period JACK switched to that is not the block (0: none); silence since."""
        return int(self._st[_WRONG_SIZE])

