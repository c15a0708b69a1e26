"""The audio output's status: one record, declared here once, written by the render loop
(:class:`engine.output.AudioOutput`, once a pass) and read, by field name, wherever the
figures are wanted: in the render process itself, or by the host through the shared
memory (:class:`engine.live.LiveOutput`). :class:`OutputFigures` reads it for both, so
the two outputs have one set of properties.
"""

from __future__ import annotations

import math
import time

import numpy as np

__all__ = ["STATUS", "STARTING", "RUNNING", "STOPPED", "OutputFigures", "new_status"]

STATUS = np.dtype([
    ("state", "f8"),  # STARTING, RUNNING, STOPPED
    ("frame", "f8"),  # the engine's frame after the last block rendered
    ("offset", "f8"),  # monotonic time of engine frame 0 on the device's clock (s)
    ("voices", "f8"),
    ("ring_underruns", "f8"),
    ("device_underflows", "f8"),
    ("render_errors", "f8"),
    ("cpu_load", "f8"),
    ("headroom_min_s", "f8"),  # the last second's smallest
    ("headroom_min_ever_s", "f8"),
    ("headroom_p1_s", "f8"),
    ("headroom_median_s", "f8"),
    ("device_latency_s", "f8"),
    ("gc_max_s", "f8"),
    ("beat", "f8"),  # monotonic time of the last pass: the render loop is alive
])
STARTING, RUNNING, STOPPED = 0.0, 1.0, 2.0


def new_status() -> np.ndarray:
    """A status record in private memory (a render loop without a host to read it)."""
    status = np.zeros((), dtype=STATUS)
    for name in ("headroom_min_s", "headroom_min_ever_s", "headroom_p1_s", "headroom_median_s"):
        status[name] = math.nan
    return status


class OutputFigures:
    """What an output stream reports, read from its status record ``self._status``.

    The class using it sets ``_status``, ``engine`` (its ``sample_rate``), ``blocksize``
    and ``ahead_s``.
    """

    _status: np.ndarray
    blocksize: int
    ahead_s: float
    #: How the blocks keep pace with the device: "ahead" (a ring PortAudio plays) or
    #: "cycle" (in JACK's cycle).
    render = "ahead"

    @property
    def ring_underruns(self) -> int:
        """Blocks that ran dry before the render loop filled them (it was late): clicks."""
        return int(self._status["ring_underruns"])

    @property
    def device_underflows(self) -> int:
        """Underflows the device reported (under JACK: an xrun anywhere in the graph)."""
        return int(self._status["device_underflows"])

    @property
    def underflows(self) -> int:
        """Every underrun a listener would hear: the ring ran dry, or the device underflowed."""
        return self.ring_underruns + self.device_underflows

    @property
    def render_errors(self) -> int:
        """Blocks whose render raised (played as silence)."""
        return int(self._status["render_errors"])

    @property
    def cpu_load(self) -> float:
        """Fraction of the block period the render loop spends rendering (smoothed)."""
        return float(self._status["cpu_load"])

    @property
    def device_latency_ms(self) -> float:
        """The device's own output latency (PortAudio's figure)."""
        return float(self._status["device_latency_s"]) * 1000.0

    @property
    def ahead_ms(self) -> float:
        """How far ahead of the device each block is rendered."""
        return self.ahead_s * 1000.0

    @property
    def latency_ms(self) -> float:
        """From an event's arrival (OSC, the prompt line) to its sound: the render-ahead,
        one block (events wait for the block they fall in) and the device's latency. In
        JACK's cycle (``render`` "cycle") the render-ahead is the one period an event
        waits; a JACK MIDI event sounds in its own cycle, after the device's latency only."""
        wait = 0.0 if self.render == "cycle" else 1000.0 * self.blocksize / self.engine.sample_rate
        return self.ahead_ms + wait + self.device_latency_ms

    @property
    def gc_max_ms(self) -> float:
        """The longest young garbage collection the render loop made."""
        return float(self._status["gc_max_s"]) * 1000.0

    def headroom_ms(self) -> dict[str, float]:
        """How far ahead of the device the render loop stayed: for the recent blocks (the
        last second's), the time left between a block's render ending and the device
        taking it: min, 1st percentile and median, in ms, plus the minimum since start.
        A negative value is an underrun; NaN before the device's clock has been seen."""
        s = self._status
        return {
            "min": float(s["headroom_min_s"]) * 1000.0,
            "p1": float(s["headroom_p1_s"]) * 1000.0,
            "median": float(s["headroom_median_s"]) * 1000.0,
            "min_ever": float(s["headroom_min_ever_s"]) * 1000.0,
        }

    def frame_at(self, when: float | None = None) -> int:
        """The engine frame at which an event that arrived at monotonic time ``when``
        should sound: a fixed time after its arrival (:attr:`latency_ms` less the device's
        own), so that its spacing to other events is kept to the sample."""
        t = time.monotonic() if when is None else when
        sr = self.engine.sample_rate
        s = self._status
        f = int(round((t - float(s["offset"])) * sr + self.ahead_s * sr))
        return max(f, int(s["frame"]))
