"""The live engine: an :class:`Engine` in a process of its own, fed through shared memory.

The process that takes notes (OSC, MIDI, the prompt line) runs several Python threads;
any of them holding the GIL can hold off a render thread in the same process (measured:
OSC at 5,000 packets a second made the render thread miss its block several times in
8 s). So the engine renders in a process whose only job it is: ``python -m engine.live``.
It runs :class:`engine.output.AudioOutput`'s loop on its main thread, rendering each
block ahead of the device into the ring that PortAudio's C callback plays.

- :class:`LiveEngine` is the host's side: the same checked event API as ``Engine``
  (``note_on``, ``set_patch`` ...), pushing onto an :class:`engine.events.EventQueue` in
  shared memory, and the render process's state read back from it (frame, voices,
  patches applied).
- :class:`LiveOutput` starts and stops the render process and gives the same figures as
  ``AudioOutput`` (latency, underruns, headroom, :meth:`LiveOutput.frame_at`).

The shared memory is a file in /dev/shm (or the temp folder) that both processes map:
a status block the render process writes once per pass, a control block the host
writes (stop, abandon), then the event queue.
"""

from __future__ import annotations

import json
import mmap
import os
import select
import subprocess
import sys
import tempfile
import threading

import numpy as np

from engine.device import AudioError, check_blocksize, parse_latency
from engine.events import EventQueue
from engine.schema import TIMBRE_NAMES
from engine.sender import N_CHANNELS, EventSender
from engine.status import RUNNING, STATUS, OutputFigures

__all__ = ["LiveEngine", "LiveOutput", "QUEUE_CAPACITY"]

#: The render process's JACK client: its ports are ``promptsynth-audio:out_0`` and ``_1``.
JACK_CLIENT_NAME = "promptsynth-audio"
#: Events the shared ring holds.
QUEUE_CAPACITY = 8192
_N_VALUES = 4
#: Key tables that may wait in the ring at once, and anchors x layers each may hold.
_TABLE_SLOTS = 16
_TABLE_ROWS = 1024

#: The render process's exit status when the audio server shut its client down.
EXIT_SERVER_GONE = 5

# Control block (int64, written by the host).
C_STOP, C_ABANDON = range(2)
_N_CONTROL = 2


#: MIDI inputs whose events the render process can read in JACK's cycle (render "cycle"),
#: and each one's area: 16 int64 state words, then a ring of this many bytes. The
#: host's MIDI reader (server/jackmidi.py) writes them; the format is its.
MIDI_SLOTS = 8
MIDI_RING_BYTES = 1 << 18
MIDI_STATE_WORDS = 16
#: The state words of an area that the render process's callback reads (to know whether
#: events wait): the writer's count, the render process's read count, whether it reads.
MIDI_WRITE, MIDI_READ2, MIDI_SYNC = 5, 9, 10
#: How the render process keeps pace with the device: "cycle" renders each block in
#: JACK's cycle (engine/jackout.py), "ahead" renders ahead into PortAudio's ring
#: (engine/output.py).
RENDER_MODES = ("cycle", "ahead")


def _layout() -> tuple[int, int, int, int, int]:
    """(status, serial, control, midi, queue) byte sizes and the total size."""
    status = -(-STATUS.itemsize // 8) * 8
    serial = N_CHANNELS * 8
    control = _N_CONTROL * 8
    midi = MIDI_SLOTS * (MIDI_STATE_WORDS * 8 + MIDI_RING_BYTES)
    queue = EventQueue.layout(QUEUE_CAPACITY, _N_VALUES, _TABLE_SLOTS, _TABLE_ROWS, len(TIMBRE_NAMES))
    return status, serial, control, midi, status + serial + control + midi + queue


class _Shared:
    """The shared memory file, mapped, with numpy views of its blocks."""

    def __init__(self, path: str, create: bool) -> None:
        n_status, n_serial, n_control, n_midi, size = _layout()
        self.path = path
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self.map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.status = np.ndarray((), dtype=STATUS, buffer=self.map, offset=0)
        self.serial = np.frombuffer(self.map, np.int64, N_CHANNELS, n_status)
        self.control = np.frombuffer(self.map, np.int64, _N_CONTROL, n_status + n_serial)
        at = n_status + n_serial + n_control
        step = MIDI_STATE_WORDS * 8 + MIDI_RING_BYTES
        self.midi = [
            (np.frombuffer(self.map, np.int64, MIDI_STATE_WORDS, at + i * step),
             np.frombuffer(self.map, np.uint8, MIDI_RING_BYTES, at + i * step + MIDI_STATE_WORDS * 8))
            for i in range(MIDI_SLOTS)
        ]
        self.queue_buffer = memoryview(self.map)[at + n_midi:]

    def queue(self) -> EventQueue:
        return EventQueue(QUEUE_CAPACITY, _N_VALUES, buffer=self.queue_buffer, table_slots=_TABLE_SLOTS,
                          table_rows=_TABLE_ROWS, table_cols=len(TIMBRE_NAMES))


def _shm_folder() -> str:
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class LiveEngine(EventSender):
    """The host's handle on the engine that renders in the render process.

    The event methods check and queue exactly as :class:`engine.Engine`'s do; the state
    is the render process's as of its last pass (a block ago at most).

    Args:
        sample_rate: Hz (the device's).
        max_voices: sounding notes at once (1..1024).
    """

    def __init__(self, sample_rate: int = 48000, max_voices: int = 32) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 384000:
            raise ValueError(f"sample_rate must be in range 8000..384000, got {sample_rate!r}")
        if isinstance(max_voices, bool) or not isinstance(max_voices, int) or not 1 <= max_voices <= 1024:
            raise ValueError(f"max_voices must be in range 1..1024, got {max_voices!r}")
        self.sample_rate = sample_rate
        self.max_voices = max_voices
        #: Most events the render process applies in one block (the rest follow).
        self.max_events_per_block: int | None = None
        #: Most pieces the render process renders a block in (``Engine.max_splits_per_block``).
        self.max_splits_per_block: int | None = None
        #: Most patch changes the render process takes in one block (``Engine.max_tables_per_block``).
        self.max_tables_per_block: int | None = None
        #: Most events waiting in the render process's pending table (``Engine.max_pending``).
        self.max_pending: int | None = None
        fd, path = tempfile.mkstemp(prefix="promptsynth-engine-", dir=_shm_folder())
        os.close(fd)
        os.unlink(path)
        self._shared = _Shared(path, create=True)
        self.queue = self._shared.queue()
        self._midi_free = list(range(MIDI_SLOTS))
        self._midi_lock = threading.Lock()

    def claim_midi_slot(self) -> tuple[int, np.ndarray, np.ndarray] | None:
        """A MIDI area of the shared memory, zeroed, for a MIDI input whose events the
        render process reads in JACK's cycle: ``(index, state, ring)``; None when all
        :data:`MIDI_SLOTS` are taken (that input is then read by the host alone)."""
        with self._midi_lock:
            if not self._midi_free:
                return None
            i = self._midi_free.pop(0)
        state, ring = self._shared.midi[i]
        state[:] = 0
        return i, state, ring

    def release_midi_slot(self, index: int) -> None:
        """Give a MIDI area back (its input's callback runs no more)."""
        self._shared.midi[index][0][:] = 0
        with self._midi_lock:
            if index not in self._midi_free:
                self._midi_free.append(index)

    @property
    def frame(self) -> int:
        """Frames rendered so far."""
        return int(self._shared.status["frame"])

    @property
    def active_voices(self) -> int:
        """Voices sounding (fading ones included), as of the render process's last pass."""
        return int(self._shared.status["voices"])

    def patch_serial(self, channel: int) -> int:
        """Patches applied on ``channel`` so far (it grows when a ``set_patch`` takes effect)."""
        return int(self._shared.serial[channel])

    def close(self) -> None:
        """Remove the shared memory file (the mapping stays valid until exit)."""
        try:
            os.unlink(self._shared.path)
        except FileNotFoundError:
            pass


class LiveOutput(OutputFigures):
    """Runs a :class:`LiveEngine`'s render process: the stream, rendering ahead. Its
    figures (:class:`engine.status.OutputFigures`) are the render loop's own, read from
    the status record it writes into the shared memory.

    Args: as :class:`engine.output.AudioOutput` (the engine is the LiveEngine).
    """

    def __init__(
        self,
        engine: LiveEngine,
        device: int | str | None = None,
        blocksize: int = 128,
        latency: float | str = "low",
        record: str | os.PathLike | None = None,
        render: str = "ahead",
        main_module: str = "engine.live",
    ) -> None:
        check_blocksize(blocksize)
        if render not in RENDER_MODES:
            raise ValueError(f"render must be one of {', '.join(RENDER_MODES)}, got {render!r}")
        self.engine = engine
        self.device = device
        self.blocksize = blocksize
        self.render = render
        self.main_module = main_module
        if render == "cycle":
            # Events from the host are placed one period after they arrive (JACK's cycle
            # renders the block they fall in when it comes).
            self.ahead_s = blocksize / engine.sample_rate
        else:
            self.ahead_s = parse_latency(latency, blocksize, engine.sample_rate)
        self._latency = latency
        self.record_path = os.fspath(record) if record is not None else None
        self._proc: subprocess.Popen | None = None
        self._info: dict = {}
        self._status = engine._shared.status
        self._control = engine._shared.control
        self.exit_note = ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, timeout_s: float = 30.0) -> LiveOutput:
        """Start the render process; return once it plays (AudioError if it cannot)."""
        if self._proc is not None:
            return self
        spec = {
            "path": self.engine._shared.path,
            "sample_rate": self.engine.sample_rate,
            "max_voices": self.engine.max_voices,
            "max_events_per_block": self.engine.max_events_per_block,
            "max_splits_per_block": self.engine.max_splits_per_block,
            "max_tables_per_block": self.engine.max_tables_per_block,
            "max_pending": self.engine.max_pending,
            "device": self.device,
            "blocksize": self.blocksize,
            "latency": self._latency,
            "record": self.record_path,
            "parent": os.getpid(),
            "render": self.render,
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", self.main_module, json.dumps(spec)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            # Ctrl-C in a terminal goes to the whole group; the host, not the render
            # process, decides how to stop (all notes off, the fade played, then stop).
            start_new_session=True,
        )
        line = self._read_line(timeout_s)
        if not line.startswith("ready "):
            self._proc.wait(timeout=5)
            self._proc = None
            reason = line[len("error: "):] if line.startswith("error: ") else (
                line or "the render process ended without a word")
            raise AudioError(reason)
        self._info = json.loads(line[len("ready "):])
        # Both processes have it mapped: the file can go (nothing is left behind if the
        # host is killed).
        self.engine.close()
        return self

    def _read_line(self, timeout_s: float) -> str:
        out = self._proc.stdout
        ready, _, _ = select.select([out], [], [], timeout_s)
        if not ready:
            self._proc.kill()
            return f"the render process did not start within {timeout_s:g} s"
        return out.readline().strip()

    def stop(self) -> None:
        """Stop the render process (the stream is closed and the recording finalised
        there); safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._control[C_STOP] = 1
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.exit_note = f"render process exit status {proc.returncode}"

    def abandon(self) -> None:
        """The audio server died: the render process finalises the recording and exits
        without touching the stream (closing a PortAudio JACK stream whose server died
        blocks and then aborts)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        self._control[C_ABANDON] = 1
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        self.engine.close()

    def __enter__(self) -> LiveOutput:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._status["state"] == RUNNING

    @property
    def died(self) -> str | None:
        """Why the render process ended while it should play, or None while it plays."""
        if self._proc is None:
            return None
        rc = self._proc.poll()
        if rc == EXIT_SERVER_GONE:
            return "audio server stopped (it shut the render process's client down)"
        return None if rc is None else f"the render process ended (exit status {rc})"

    @property
    def device_name(self) -> str:
        return str(self._info.get("device", "?"))

    @property
    def priority_note(self) -> str:
        return str(self._info.get("priority", "?"))

    @property
    def order_port(self) -> str | None:
        """In JACK's cycle: the render client's MIDI input that a MIDI client connects
        to, so that JACK runs it first and its events reach the block of their own cycle."""
        return self._info.get("order_port")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

if __name__ == "__main__":
    from engine.render_process import render_main

    sys.exit(render_main(json.loads(sys.argv[1])))
