"""A preallocated event queue between control threads and the render thread.

Producers (OSC server, MIDI input, the main thread) push under a lock that only
producers share. The render thread never takes it: it reads the ring between its own
read counter and the producers' published write counter, then keeps events that are
not yet due in a pending table of its own until their frame comes.

An event may also carry one object (a patch's key table). In one process it travels by
reference: it waits in a dict under the event's sequence number and the render thread
pops it when it applies the event. The ring can also live in memory shared with another
process (:meth:`EventQueue.layout` gives the size): producers in one process, the render
thread in the other. Then a key table is copied into one of a few slots of the shared
memory and rebuilt on the other side when its event is drained.

Ordering: a producer writes an event (and its slot), passes a fence, then publishes the
write counter; the consumer reads the counter, passes a fence, then reads the events.
The fence is a lock released and taken again: a store-release and a load-acquire on
every platform, so that no CPU shows the counter before the data it covers.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["EventQueue", "QueueFull", "IMMEDIATE"]

#: Frame value meaning "at the start of the next block".
IMMEDIATE = -1
#: Most velocity layers a key table sent through shared memory may have.
MAX_LIVE_LAYERS = 16


class QueueFull(RuntimeError):
    """The engine's event queue is full; the event was not queued."""


def _fence(lock: threading.Lock) -> None:
    lock.acquire()
    lock.release()


class EventQueue:
    """Fixed-size event ring plus the render thread's table of pending events.

    Args:
        capacity: events the ring holds, and pending events the table holds.
        n_values: float values carried by each event.
        buffer: shared memory (a writable buffer of :meth:`layout`'s size) to hold the
            ring, its counters and the table slots; None: private memory.
        table_slots, table_rows, table_cols: key-table slots in ``buffer``: how many,
            anchors x layers each may hold, and values per anchor. A slot also holds the
            table expanded to every key (at most :data:`MAX_LIVE_LAYERS` velocity
            layers), so that the render thread rebuilds it without recomputing it.
    """

    def __init__(
        self,
        capacity: int = 8192,
        n_values: int = 8,
        buffer=None,
        table_slots: int = 16,
        table_rows: int = 1024,
        table_cols: int = 10,
    ) -> None:
        self.capacity = int(capacity)
        self.n_values = int(n_values)
        self.shared = buffer is not None
        self._slots = int(table_slots) if self.shared else 0
        self._rows = int(table_rows)
        self._cols = int(table_cols)
        mem = buffer if buffer is not None else bytearray(self.layout(capacity, n_values, 0, 0, 0))
        views = {}
        offset = 0
        for name, dtype, shape in self._fields(self.capacity, self.n_values, self._slots, self._rows, self._cols):
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            views[name] = np.frombuffer(mem, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)
            offset += n
        self._frame = views["frame"]
        self._kind = views["kind"]
        self._chan = views["chan"]
        self._vals = views["vals"]
        self._slot = views["slot"]  # key-table slot of each ring entry, -1: none
        self._ctr = views["ctr"]  # [write, read]
        self._slot_dims = views["slot_dims"]  # per slot: n_keys, n_velocities
        self._slot_keys = views["slot_keys"]
        self._slot_vels = views["slot_vels"]
        self._slot_vals = views["slot_vals"]
        self._slot_phys = views["slot_phys"]
        self._slot_learn = views["slot_learn"]
        self._slot_vj = views["slot_vj"]
        self._slot_vw = views["slot_vw"]
        self._lock = threading.Lock()  # producers only
        self._fence_lock = threading.Lock()  # a fence per side, never held long
        # Producer side: the ring position that last used each slot.
        self._slot_pos = np.full(max(self._slots, 1), -1, dtype=np.int64)
        self._next_slot = 0
        # The render thread's own table (never touched by producers).
        self.p_frame = np.zeros(self.capacity, dtype=np.int64)
        self.p_kind = np.zeros(self.capacity, dtype=np.int32)
        self.p_chan = np.zeros(self.capacity, dtype=np.int32)
        self.p_vals = np.zeros((self.capacity, self.n_values), dtype=np.float64)
        self.p_seq = np.zeros(self.capacity, dtype=np.int64)
        self._ramp = np.arange(self.capacity, dtype=np.int64)
        self.p_count = 0
        # Sequence numbers of events queued by the render thread itself: below the ring's.
        self._local_seq = -(1 << 62)
        # Objects carried by events, by sequence number (see ``take_object``).
        self._objects: dict[int, object] = {}

    @staticmethod
    def _fields(capacity: int, n_values: int, slots: int, rows: int, cols: int):
        return (
            ("ctr", np.int64, (2,)),
            ("frame", np.int64, (capacity,)),
            ("vals", np.float64, (capacity, n_values)),
            ("kind", np.int32, (capacity,)),
            ("chan", np.int32, (capacity,)),
            ("slot", np.int32, (capacity,)),
            ("slot_dims", np.int64, (max(slots, 1), 2)),
            ("slot_keys", np.int64, (max(slots, 1), 128)),
            ("slot_vels", np.int64, (max(slots, 1), 128)),
            ("slot_vals", np.float64, (slots, rows, cols)),
            ("slot_phys", np.float64, (slots, 128, MAX_LIVE_LAYERS if slots else 0, cols)),
            ("slot_learn", np.float64, (slots, 128, MAX_LIVE_LAYERS if slots else 0, cols)),
            ("slot_vj", np.int64, (max(slots, 1), 128)),
            ("slot_vw", np.float64, (max(slots, 1), 128)),
        )

    @classmethod
    def layout(cls, capacity: int, n_values: int, table_slots: int, table_rows: int, table_cols: int) -> int:
        """Bytes of shared memory a queue of these dimensions needs."""
        return sum(
            int(np.prod(shape)) * np.dtype(dtype).itemsize
            for _, dtype, shape in cls._fields(capacity, n_values, table_slots, table_rows, table_cols)
        )

    # -- producers -----------------------------------------------------------------------

    def push(self, kind: int, channel: int, frame: int, values: tuple[float, ...] = (), obj: object = None) -> None:
        """Queue one event; raise QueueFull rather than block or drop silently.

        ``obj`` (optional) reaches the render thread through ``take_object``; in a shared
        queue it must be a KeyTable."""
        with self._lock:
            w = int(self._ctr[0])
            r = int(self._ctr[1])
            if w - r >= self.capacity:
                raise QueueFull(f"engine event queue is full ({self.capacity} events waiting)")
            i = w % self.capacity
            self._frame[i] = frame
            self._kind[i] = kind
            self._chan[i] = channel
            row = self._vals[i]
            row[:] = 0.0
            row[: len(values)] = values
            self._slot[i] = -1
            if obj is not None:
                if self.shared:
                    self._slot[i] = self._put_table(obj, w, r)
                else:
                    self._objects[w] = obj
            # Publishing the counter last: the reader never sees a half-written event.
            _fence(self._fence_lock)
            self._ctr[0] = w + 1

    def _put_table(self, table, w: int, r: int) -> int:
        s = self._next_slot
        if self._slot_pos[s] >= r:
            raise QueueFull(f"too many patch changes waiting ({self._slots}); try again shortly")
        keys, vels, vals, phys, learn, vj, vw = table.parts()
        rows = len(keys) * len(vels)
        if rows > self._rows or vals.shape[2] != self._cols or len(vels) > MAX_LIVE_LAYERS:
            raise ValueError(
                f"a live patch holds at most {self._rows} key x velocity anchors of "
                f"{self._cols} values, with at most {MAX_LIVE_LAYERS} velocity layers; got "
                f"{len(keys)} x {len(vels)} of {vals.shape[2]}"
            )
        nv = len(vels)
        self._slot_dims[s] = (len(keys), nv)
        self._slot_keys[s, : len(keys)] = keys
        self._slot_vels[s, :nv] = vels
        self._slot_vals[s, :rows] = vals.reshape(rows, -1)
        self._slot_phys[s, :, :nv] = phys
        self._slot_learn[s, :, :nv] = learn
        self._slot_vj[s] = vj
        self._slot_vw[s] = vw
        self._slot_pos[s] = w
        self._next_slot = (s + 1) % self._slots
        return s

    @property
    def counters(self) -> np.ndarray:
        """The ring's ``[write, read]`` counters (int64): they differ while events wait."""
        return self._ctr

    def pending_in_ring(self) -> int:
        return int(self._ctr[0]) - int(self._ctr[1])

    # -- the render thread ---------------------------------------------------------------

    def drain(self, max_tables: int | None = None, max_pending: int | None = None) -> None:
        """Render thread: move newly pushed events into the pending table.

        Slice copies (at most two: the ring wraps once), so that a burst of a thousand
        events costs a few array copies, not a Python loop per event. ``max_tables``:
        most key tables rebuilt in this call (each costs 0.2-0.5 ms); the events from
        the next one on wait in the ring for the next call, in order. ``max_pending``:
        most events the pending table holds after the call (every block searches it: a
        flood left in the ring costs nothing, and fills it up, so that producers are told)."""
        w = int(self._ctr[0])
        r = int(self._ctr[1])
        room = (self.capacity if max_pending is None else min(self.capacity, max_pending)) - self.p_count
        take = min(w - r, room)
        if take <= 0:
            return
        _fence(self._fence_lock)
        if self.shared and max_tables is not None:
            idx = (r + np.arange(take)) % self.capacity
            tables = np.flatnonzero(self._slot[idx] >= 0)
            if tables.size > max_tables:
                take = int(tables[max_tables])
                if take == 0:
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
            if self.shared:
                for j in np.flatnonzero(self._slot[i : i + n] >= 0).tolist():
                    self._objects[r + done + j] = self._get_table(int(self._slot[i + j]))
            done += n
        self.p_count = c + take
        # Slots read: the producers may reuse them once this counter passes them.
        self._ctr[1] = r + take

    def _get_table(self, s: int):
        from engine.keytable import KeyTable

        # Built and checked by the producer: rebuilt from its parts, not expanded again
        # (a KeyTable's construction costs 0.2-0.5 ms; 16 patch changes in one block made
        # a render of several ms).
        nk, nv = (int(x) for x in self._slot_dims[s])
        return KeyTable.from_parts(
            self._slot_keys[s, :nk],
            self._slot_vels[s, :nv],
            self._slot_vals[s, : nk * nv].reshape(nk, nv, -1),
            self._slot_phys[s, :, :nv],
            self._slot_learn[s, :, :nv],
            self._slot_vj[s],
            self._slot_vw[s],
        )

    def push_local(self, kind: int, channel: int, frame: int, values: tuple[float, ...] = (), obj: object = None) -> None:
        """Render thread: queue one event straight into the pending table (no ring, no
        lock): what the render side itself reads (MIDI in JACK's cycle) is due at once.
        It sorts before the ring's events of the same frame. No object may travel here."""
        if obj is not None:
            raise ValueError("an event queued on the render side carries no object")
        c = self.p_count
        if c >= self.capacity:
            raise QueueFull(f"engine event queue is full ({self.capacity} events pending)")
        self.p_frame[c] = frame
        self.p_kind[c] = kind
        self.p_chan[c] = channel
        row = self.p_vals[c]
        row[:] = 0.0
        row[: len(values)] = values
        self._local_seq += 1
        self.p_seq[c] = self._local_seq
        self.p_count = c + 1

    def take_due(self, end_frame: int, limit: int | None = None) -> np.ndarray | None:
        """Render thread: indices into the pending table of events due before
        ``end_frame``, in (frame, arrival) order; None if there are none. ``limit``: at
        most that many; the due events beyond them are marked :data:`IMMEDIATE` (they
        keep their arrival order, ahead of anything that arrives later) and wait.

        The caller handles them, then calls ``discard(indices)``.
        """
        c = self.p_count
        if c == 0:
            return None
        due = np.flatnonzero(self.p_frame[:c] < end_frame)
        if due.size == 0:
            return None
        if limit is not None and due.size > 4 * limit:
            # A backlog (a flood faster than blocks apply it): only the first `limit`
            # need sorting. Once they are all immediate ones, they are the `limit`
            # earliest arrivals among those: a partition, not a sort of thousands.
            frames = self.p_frame[due]
            imm = due[frames == IMMEDIATE]
            if imm.size >= limit:
                seqs = self.p_seq[imm]
                part = np.argpartition(seqs, limit - 1)[:limit]
                head = imm[part[np.argsort(seqs[part])]]
                self.p_frame[due] = IMMEDIATE
                return head
        order = due[np.lexsort((self.p_seq[due], self.p_frame[due]))]
        if limit is not None and order.size > limit:
            self.p_frame[order[limit:]] = IMMEDIATE
            order = order[:limit]
        return order

    def discard(self, indices: np.ndarray) -> None:
        """Render thread: drop handled events from the pending table, keeping order."""
        c = self.p_count
        keep = np.ones(c, dtype=bool)
        keep[indices] = False
        m = int(keep.sum())
        for arr in (self.p_frame, self.p_kind, self.p_chan, self.p_seq):
            arr[:m] = arr[:c][keep]
        self.p_vals[:m] = self.p_vals[:c][keep]
        self.p_count = m

    def take_object(self, index: int) -> object:
        """Render thread: the object pushed with pending event ``index`` (None if none);
        it is released from the queue."""
        return self._objects.pop(int(self.p_seq[index]), None)

    def clear_pending(self) -> None:
        for seq in self.p_seq[: self.p_count].tolist():
            self._objects.pop(seq, None)
        self.p_count = 0
