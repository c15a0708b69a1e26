"""A preallocated event queue between control threads and the audio thread.

Producers (OSC server, MIDI input, the main thread) push under a lock that only
producers share. The audio thread never takes it: it reads the ring between its own
read counter and the producers' published write counter, then keeps events that are
not yet due in a pending table of its own until their frame comes.

An event may also carry one object (a patch's key table) by reference: it waits in a
dict under the event's sequence number, and the audio thread pops it when it applies the
event. Nothing big is copied per event, and a dict insert/pop is atomic under the GIL.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["EventQueue", "QueueFull", "IMMEDIATE"]

#: Frame value meaning "at the start of the next block".
IMMEDIATE = -1


class QueueFull(RuntimeError):
    """The engine's event queue is full; the event was not queued."""


class EventQueue:
    """Fixed-size event ring plus the audio thread's table of pending events.

    Args:
        capacity: events the ring holds, and pending events the table holds.
        n_values: float values carried by each event.
    """

    def __init__(self, capacity: int = 8192, n_values: int = 8) -> None:
        self.capacity = int(capacity)
        self.n_values = int(n_values)
        self._frame = np.zeros(self.capacity, dtype=np.int64)
        self._kind = np.zeros(self.capacity, dtype=np.int32)
        self._chan = np.zeros(self.capacity, dtype=np.int32)
        self._vals = np.zeros((self.capacity, self.n_values), dtype=np.float64)
        self._write = 0
        self._read = 0
        self._lock = threading.Lock()
        # The audio thread's own table (never touched by producers).
        self.p_frame = np.zeros(self.capacity, dtype=np.int64)
        self.p_kind = np.zeros(self.capacity, dtype=np.int32)
        self.p_chan = np.zeros(self.capacity, dtype=np.int32)
        self.p_vals = np.zeros((self.capacity, self.n_values), dtype=np.float64)
        self.p_seq = np.zeros(self.capacity, dtype=np.int64)
        self._ramp = np.arange(self.capacity, dtype=np.int64)
        self.p_count = 0
        # Objects carried by events, by sequence number (see ``take_object``).
        self._objects: dict[int, object] = {}

    def push(self, kind: int, channel: int, frame: int, values: tuple[float, ...] = (), obj: object = None) -> None:
        """Queue one event; raise QueueFull rather than block or drop silently.

        ``obj`` (optional) travels by reference; the audio thread gets it with
        ``take_object``."""
        with self._lock:
            w = self._write
            if w - self._read >= self.capacity:
                raise QueueFull(f"engine event queue is full ({self.capacity} events waiting)")
            i = w % self.capacity
            self._frame[i] = frame
            self._kind[i] = kind
            self._chan[i] = channel
            row = self._vals[i]
            row[:] = 0.0
            row[: len(values)] = values
            if obj is not None:
                self._objects[w] = obj
            # Publishing the counter last: the reader never sees a half-written event.
            self._write = w + 1

    def pending_in_ring(self) -> int:
        return self._write - self._read

    def drain(self) -> None:
        """Audio thread: move newly pushed events into the pending table.

        Slice copies (at most two: the ring wraps once), so that a burst of a thousand
        events costs the callback a few array copies, not a Python loop per event."""
        w = self._write
        r = self._read
        room = self.capacity - self.p_count
        take = min(w - r, room)
        if take <= 0:
            return
        c = self.p_count
        done = 0
        while done < take:
            i = (r + done) % self.capacity
            n = min(take - done, self.capacity - i)
            dst = slice(c + done, c + done + n)
            self.p_frame[dst] = self._frame[i : i + n]
            self.p_kind[dst] = self._kind[i : i + n]
            self.p_chan[dst] = self._chan[i : i + n]
            self.p_vals[dst] = self._vals[i : i + n]
            self.p_seq[dst] = self._ramp[:n]
            self.p_seq[dst] += r + done
            done += n
        self.p_count = c + take
        self._read = r + take

    def take_due(self, end_frame: int) -> np.ndarray | None:
        """Audio thread: indices into the pending table of events due before
        ``end_frame``, in (frame, arrival) order; None if there are none.

        The caller handles them, then calls ``discard(indices)``.
        """
        c = self.p_count
        if c == 0:
            return None
        due = np.flatnonzero(self.p_frame[:c] < end_frame)
        if due.size == 0:
            return None
        order = np.lexsort((self.p_seq[due], self.p_frame[due]))
        return due[order]

    def discard(self, indices: np.ndarray) -> None:
        """Audio thread: drop handled events from the pending table, keeping order."""
        c = self.p_count
        keep = np.ones(c, dtype=bool)
        keep[indices] = False
        m = int(keep.sum())
        for arr in (self.p_frame, self.p_kind, self.p_chan, self.p_seq):
            arr[:m] = arr[:c][keep]
        self.p_vals[:m] = self.p_vals[:c][keep]
        self.p_count = m

    def take_object(self, index: int) -> object:
        """Audio thread: the object pushed with pending event ``index`` (None if none);
        it is released from the queue."""
        return self._objects.pop(int(self.p_seq[index]), None)

    def clear_pending(self) -> None:
        for seq in self.p_seq[: self.p_count].tolist():
            self._objects.pop(seq, None)
        self.p_count = 0
