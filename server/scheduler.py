"""OSC timetags -> engine frames, and a thread that releases future work in time.

An OSC bundle's timetag is a wall-clock time (seconds since the epoch). :class:`Clock`
maps it to the engine frame that sounds at that moment with one fixed anchor, so two
bundles tagged ``dt`` apart land exactly ``round(dt * sample_rate)`` frames apart. The
anchor is taken from the audio stream's own clock (:meth:`AudioOutput.frame_at`) and
only moved when the two clocks have drifted apart by more than ``max_drift_s``.

:class:`Scheduler` holds actions until shortly before their frame (``lead_s``) and then
runs them with that frame, so the engine's pending table holds only what is near.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from server.oscparse import NTP_TO_UNIX

__all__ = ["Clock", "Scheduler", "SchedulerFull"]


class SchedulerFull(RuntimeError):
    """Too many future bundles are waiting; the new one was not scheduled."""


class Clock:
    """Wall-clock time -> engine frame, for an output with ``frame_at(monotonic)``.

    Args:
        output: an object with ``frame_at(monotonic_time) -> int`` and ``engine.sample_rate``.
        max_drift_s: re-anchor when the audio clock and the wall clock disagree by more.
    """

    def __init__(self, output, max_drift_s: float = 0.010) -> None:
        self.output = output
        self.sample_rate = int(output.engine.sample_rate)
        self.max_drift_s = float(max_drift_s)
        self._anchor: tuple[float, int] | None = None  # (wall time, frame)
        self._lock = threading.Lock()
        self.reanchors = 0

    def _now(self) -> tuple[float, int]:
        mono = time.monotonic()
        wall = time.time()
        return wall, self.output.frame_at(mono)

    def frame_for(self, wall_time: float) -> int:
        """The engine frame at which an event tagged ``wall_time`` sounds.

        A :class:`server.oscparse.Timetag` is placed exactly: at the sample nearest to it
        on the sample grid counted from the NTP epoch, moved by the anchor's whole number
        of frames. Two timetags are then exactly as many frames apart as their NTP values
        say, whatever the anchor; a plain float is rounded against the anchor."""
        with self._lock:
            wall, frame = self._now()
            if self._anchor is None:
                self._anchor = (wall, frame)
            else:
                aw, af = self._anchor
                predicted = af + (wall - aw) * self.sample_rate
                if abs(predicted - frame) > self.max_drift_s * self.sample_rate:
                    self._anchor = (wall, frame)
                    self.reanchors += 1
            aw, af = self._anchor
        ntp = getattr(wall_time, "ntp", None)
        if ntp is None:
            return af + int(round((wall_time - aw) * self.sample_rate))
        sr = self.sample_rate
        on_grid = (ntp * sr + (1 << 31)) >> 32
        anchor_on_grid = int(round((aw + NTP_TO_UNIX) * sr))
        return af + on_grid - anchor_on_grid


class Scheduler:
    """Runs ``action(frame)`` at wall time ``when - lead_s`` on its own thread.

    Args:
        lead_s: how long before its time an action runs (must exceed one audio block).
        capacity: most actions waiting at once.
    """

    def __init__(self, lead_s: float = 0.1, capacity: int = 10000) -> None:
        self.lead_s = float(lead_s)
        self.capacity = int(capacity)
        self._heap: list[tuple[float, int, int | None, Callable[[int | None], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="promptsynth-scheduler", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._heap)

    def at(
        self, when: float, frame: int | None, actions: list[Callable[[int | None], None]]
    ) -> None:
        """Run each of ``actions`` with ``frame``, in order, at wall time ``when - lead_s``."""
        with self._cond:
            if self._closed:
                raise RuntimeError("scheduler is closed")
            if len(self._heap) + len(actions) > self.capacity:
                raise SchedulerFull(
                    f"{len(self._heap)} scheduled actions are waiting (at most {self.capacity})"
                )
            for action in actions:
                heapq.heappush(self._heap, (when - self.lead_s, next(self._seq), frame, action))
            self._cond.notify()

    def close(self) -> None:
        """Stop the thread and drop what waits; safe to call twice."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        from server.rt import promote_current_thread

        promote_current_thread()
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap:
                        wait = self._heap[0][0] - time.time()
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 0.5))
                    else:
                        self._cond.wait(0.5)
                if self._closed:
                    return
                _, _, frame, action = heapq.heappop(self._heap)
            try:
                action(frame)
            except Exception as exc:  # noqa: BLE001 - one bad action must not stop the rest
                self.errors += 1
                self.last_error = repr(exc)
