"""A JACK MIDI input read event by event in JACK's own cycle, by compiled code.

rtmidi's JACK input joins events into one SysEx while it waits for an F7: a source that
sends F0 and never F7 (a cable pulled during a dump, a crashed librarian) makes every
later event vanish into that SysEx, and the keyboard goes deaf with its notes stuck.
FluidSynth reads each JACK MIDI event on its own; so does this input.

The port's process callback is a numba ``cfunc`` that calls libjack through ctypes: no
Python and no GIL on JACK's thread. It copies each event, whatever its bytes, with its
frame time, into a ring of its own (:data:`RING_BYTES`), and posts a semaphore; a host
thread, woken by it (:meth:`JackMidiIn.wait`: no polling while nothing comes), takes them
out (:meth:`JackMidiIn.take`) and parses them (:class:`server.midi_in.MidiParser`). An event
longer than :data:`MAX_EVENT_BYTES` is kept cut to that length, with its true size (a
long SysEx dump is dropped anyway); events that find the ring full are counted and lost.

Ring entries are 8-byte aligned: one int64 header (the event's JACK frame in the low 32
bits, its size in the high 32; size ``0xFFFFFFFF`` says "continue at the start"), then the
bytes. The writer copies the bytes with an opaque call (``memcpy``) before it publishes
the write count, so neither the compiler nor an x86 CPU lets the reader see a count
before its bytes.
"""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np

from engine import jack
from engine.live import MIDI_READ2, MIDI_RING_BYTES, MIDI_SYNC, MIDI_WRITE

__all__ = ["JackMidiError", "JackMidiIn", "MAX_EVENT_BYTES", "RING_BYTES", "available", "read_events"]

#: Bytes of one event kept in the ring; the rest of a longer event is cut (and counted).
MAX_EVENT_BYTES = 1024
#: The ring's size: 32,768 three-byte events, far more than the reader (woken each cycle
#: that brings events) leaves waiting. The same as the render process's MIDI areas'.
RING_BYTES = MIDI_RING_BYTES

# The state words the callback and the reader share (one int64 array).
_PORT, _CLIENT, _EVENT, _DATA, _CAP, _WRITE, _READ, _LOST, _SEM = range(9)
# A second reader (the render process, in JACK's cycle): its read counter, whether it
# reads, the MIDI output that orders the graph (0: none), the input's generation.
_READ2, _SYNC, _ORDER = 9, 10, 11
assert (_WRITE, _READ2, _SYNC) == (MIDI_WRITE, MIDI_READ2, MIDI_SYNC)  # the render side reads these
_EV_TIME, _EV_SIZE, _EV_BUF = 12, 13, 14  # jack_midi_event_t {u32 time; size_t; u8 *}
_GEN = 15
_N_STATE = 16
_WRAP = 0xFFFFFFFF

_JackPortIsInput = jack.PORT_IS_INPUT
_JackNoStartServer = jack.NO_START_SERVER
_MIDI_TYPE = jack.MIDI_TYPE


class JackMidiError(RuntimeError):
    """A JACK MIDI port that cannot be opened or connected."""


_lib_lock = threading.Lock()
_lib: dict = {}


def _load() -> dict:
    """libjack's functions (engine.jack) and the compiled process callback."""
    with _lib_lock:
        if _lib:
            return _lib
        try:
            lib = jack.load()
        except jack.JackError as exc:
            raise JackMidiError(str(exc)) from exc
        _lib.update(lib)
        _lib["process"] = _compile(lib["port_get_buffer"], lib["event_count"], lib["event_get"],
                                   lib["last_frame_time"], lib["memcpy"], lib["sem_post"], lib["midi_clear"])
        return _lib


def _compile(port_get_buffer, event_count, event_get, last_frame_time, memcpy, sem_post, midi_clear):
    import numba
    from numba import types

    as_ptr = jack.as_i64_ptr

    # ctypes function pointers are globals of the compiled code, so numba cannot cache it
    # (the addresses change from run to run): it compiles once a process, at its first port.
    @numba.cfunc(types.int32(types.uint32, types.CPointer(types.int64)), nopython=True)
    def process(nframes, arg):  # pragma: no cover - runs on JACK's thread
        st = numba.carray(arg, (_N_STATE,))
        if st[_ORDER] != 0:
            midi_clear(port_get_buffer(st[_ORDER], nframes))  # an output says nothing
        buf = port_get_buffer(st[_PORT], nframes)
        n = event_count(buf)
        if n == 0:
            return 0
        base = last_frame_time(st[_CLIENT])
        cap = st[_CAP]
        heads = numba.carray(as_ptr(st[_DATA]), (cap // 8,))
        w = st[_WRITE]
        for i in range(n):
            if event_get(st[_EVENT], buf, i) != 0:
                continue
            size = st[_EV_SIZE]
            keep = size if size <= MAX_EVENT_BYTES else MAX_EVENT_BYTES
            need = 8 + ((keep + 7) // 8) * 8
            pos = w % cap
            skip = cap - pos if pos + need > cap else 0
            r = st[_READ]
            if st[_SYNC] != 0 and st[_READ2] < r:
                r = st[_READ2]
            if cap - (w - r) < skip + need:
                st[_LOST] += 1
                continue
            if skip:
                heads[pos // 8] = _WRAP << 32
                w += skip
                pos = 0
            frame = (base + (st[_EV_TIME] & 0xFFFFFFFF)) & 0xFFFFFFFF
            heads[pos // 8] = frame | (size << 32)
            # An opaque call: the header is written before it, the count after it.
            memcpy(st[_DATA] + pos + 8, st[_EV_BUF], keep)
            w += need
            st[_WRITE] = w
        # Wake the reader (sem_post never blocks; one post a cycle that brought events).
        sem_post(st[_SEM])
        return 0

    return process


def read_events(state: np.ndarray, ring: np.ndarray, word: int = _READ,
                max_events: int = 1 << 62, max_bytes: int = 1 << 62) -> list[tuple[int, bytes, int]]:
    """Take the events a reader (its counter at ``state[word]``) has not read yet, at
    most ``max_events`` of them and, after the first, ``max_bytes`` (the rest wait for
    the next call): ``(jack_frame, data, size)`` each, ``size`` the event's length before
    any cut. A counter found outside the ring's span (the area was reset) starts at the
    writer's."""
    w, r = int(state[_WRITE]), int(state[word])
    if w == r:
        return []
    cap = RING_BYTES
    if r > w or w - r > cap:
        state[word] = w
        return []
    heads = ring.view(np.int64)
    out = []
    taken = 0
    while r < w and len(out) < max_events:
        pos = r % cap
        head = int(heads[pos // 8])
        size = head >> 32 & 0xFFFFFFFF
        if size == _WRAP:
            r += cap - pos
            continue
        keep = min(size, MAX_EVENT_BYTES)
        taken += keep
        if out and taken > max_bytes:
            break
        out.append((head & 0xFFFFFFFF, ring[pos + 8 : pos + 8 + keep].tobytes(), size))
        r += 8 + ((keep + 7) // 8) * 8
    state[word] = r
    return out


def available() -> bool:
    """Whether libjack loads (a JACK server may still be absent)."""
    try:
        _load()
        return True
    except Exception:  # noqa: BLE001 - no libjack, no numba: rtmidi reads instead
        return False


_Timespec = jack.Timespec


class JackMidiIn:
    """One JACK client with one MIDI input port, read event by event.

    Args:
        client_name: the JACK client's name (JACK adds ``-01`` ... where it is taken).
        port_name: the input port's short name.
        source: a source port to connect from (``client:port``), or None for a virtual
            input that others connect to.

    ``take()`` returns ``[(arrived, data, size)]``: each event's monotonic time (from its
    JACK frame), its bytes and its length before any cut (the parser names a cut event).
    ``close()`` is safe twice.
    """

    def __init__(self, client_name: str, port_name: str, source: str | None = None,
                 shared: tuple[np.ndarray, np.ndarray] | None = None, order_to: str | None = None,
                 generation: int = 1) -> None:
        lib = _load()
        self._lib = lib
        self._client = 0
        self._closed = False
        if shared is not None and (shared[0].size < _N_STATE or shared[1].size != RING_BYTES):
            raise ValueError(f"a shared MIDI area holds {_N_STATE} state words and {RING_BYTES} ring bytes")
        self._state = np.zeros(_N_STATE, np.int64) if shared is None else shared[0]
        self._ring = np.zeros(RING_BYTES, np.uint8) if shared is None else shared[1]
        # A POSIX semaphore (glibc's sem_t is 32 bytes) the callback posts when events came.
        self._sem = np.zeros(8, np.int64)
        lib["sem_init"](self._sem.ctypes.data, 0, 0)
        self._state[_SEM] = self._sem.ctypes.data
        status = ctypes.c_int(0)
        client = lib["client_open"](client_name.encode(), _JackNoStartServer, ctypes.byref(status))
        if not client:
            raise JackMidiError(f"cannot open a JACK client (status 0x{status.value:x}): is jackd running?")
        self._client = client
        try:
            port = lib["port_register"](client, port_name.encode(), _MIDI_TYPE, _JackPortIsInput, 0)
            if not port:
                raise JackMidiError(f"cannot register the JACK MIDI port {port_name!r}")
            st = self._state
            st[_PORT], st[_CLIENT] = port, client
            st[_EVENT] = st.ctypes.data + 8 * _EV_TIME
            st[_DATA], st[_CAP] = self._ring.ctypes.data, RING_BYTES
            self.sample_rate = int(lib["sample_rate"](client))
            self.client_name = lib["client_name"](client).decode()
            self.port_name = lib["port_name"](port).decode()
            if order_to is not None:
                order = lib["port_register"](client, b"order", _MIDI_TYPE, jack.PORT_IS_OUTPUT, 0)
                if not order:
                    raise JackMidiError("cannot register the JACK MIDI port 'order'")
                st[_ORDER] = order
            if shared is not None:
                # The render process reads from here on (in the cycles after this one).
                st[_READ2] = st[_WRITE]
                st[_GEN] = generation
                st[_SYNC] = 1
            if lib["set_process"](client, lib["process"].address, st.ctypes.data) != 0:
                raise JackMidiError("JACK refused the process callback")
            if lib["activate"](client) != 0:
                raise JackMidiError("cannot activate the JACK client")
            if order_to is not None:
                # Our output to the render client's input: JACK runs us before it, so the
                # MIDI of a cycle reaches that very cycle's block.
                rc = lib["connect"](client, lib["port_name"](st[_ORDER]), order_to.encode())
                if rc not in (0, 17):
                    raise JackMidiError(f"cannot connect to the render client's {order_to!r} ({rc})")
            if source is not None:
                rc = lib["connect"](client, source.encode(), self.port_name.encode())
                if rc not in (0, 17):  # 17: EEXIST, already connected
                    raise JackMidiError(f"cannot connect {source!r} to {self.port_name!r} ({rc})")
        except BaseException:
            self.close()
            raise

    @property
    def lost(self) -> int:
        """Events lost because the ring was full."""
        return int(self._state[_LOST])

    def wait(self, timeout_s: float) -> None:
        """Block (the GIL released) until the callback has brought events, :meth:`wake`
        is called, or ``timeout_s`` has passed."""
        if self._closed:
            return
        deadline = time.time() + timeout_s  # sem_timedwait's clock is CLOCK_REALTIME
        ts = _Timespec(int(deadline), int((deadline % 1.0) * 1e9))
        self._lib["sem_timedwait"](self._sem.ctypes.data, ctypes.byref(ts))

    def wake(self) -> None:
        """Wake a :meth:`wait` now (the reader is told to stop)."""
        self._lib["sem_post"](self._sem.ctypes.data)

    def take(self) -> list[tuple[float, bytes, int]]:
        """The events that arrived since the last call: ``(arrived, data, size)``, where
        ``size`` is the event's length before any cut."""
        if self._closed or self._state[_WRITE] == self._state[_READ]:
            return []
        now_frame = int(self._lib["frame_time"](self._client))
        now = time.monotonic()
        sr = float(self.sample_rate)
        out = []
        for frame, data, size in read_events(self._state, self._ring, _READ):
            age = (now_frame - frame) & 0xFFFFFFFF
            if age >= 1 << 31:  # a frame just after the estimate: it is now
                age = 0
            out.append((now - age / sr, data, size))
        return out

    def close(self) -> None:
        """Deactivate and close the client; safe twice."""
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, 0
        if client:
            self._lib["deactivate"](client)
            self._state[_SYNC] = 0  # the render process reads no more
            self._lib["client_close"](client)
            self._lib["sem_destroy"](self._sem.ctypes.data)  # the callback runs no more

    def abandon(self) -> None:
        """Forget the client without a call to JACK (the server died: calls would hang)."""
        self._closed = True
        self._client = 0
        self.wake()
