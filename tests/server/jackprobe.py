"""A JACK client for the tests: sends raw MIDI events, exactly as given, at a known frame,
and finds the first sample of the host's audio output above a threshold after it.

Both happen in the probe's own JACK process callback (Python: acceptable in a test
client, never in the host), so a key-to-sound delay is measured in JACK's frames, the
same clock the host's output runs on.
"""

from __future__ import annotations

import threading
import time

import numpy as np

__all__ = ["JackProbe", "jack_port"]


class JackProbe:
    """``send(events)`` writes ``[bytes, ...]`` in the next cycle, at offsets 0, 1, 2 ...
    (zero-length and long events included: JACK carries them); ``key_to_sound`` sends and
    waits for the output to pass ``threshold``, returning the delay in frames."""

    def __init__(self, midi_to: str, audio_from: str | None, name: str = "ps-probe", threshold: float = 1e-3) -> None:
        import jack

        self.client = jack.Client(name, no_start_server=True)
        self.midi_out = self.client.midi_outports.register("midi_out")
        self.audio_in = self.client.inports.register("in")
        self.threshold = threshold
        self._lock = threading.Lock()
        self._pending: list[bytes] | None = None
        self._at = 0  # the frame of the cycle the first pending event goes at
        self._sent_at: int | None = None  # frame of the last send
        self._onset: int | None = None
        self._armed = False
        self._done = threading.Event()
        self._sent = threading.Event()
        self.blocksize = self.client.blocksize
        self.sample_rate = self.client.samplerate
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.client.connect(self.midi_out, midi_to)
        if audio_from is not None:  # None: MIDI only (key_to_sound then never hears)
            self.client.connect(audio_from, self.audio_in)
        time.sleep(0.1)

    def _process(self, frames: int) -> None:
        self.midi_out.clear_buffer()
        base = self.client.last_frame_time
        pending, self._pending = self._pending, None
        if pending is not None:
            at = self._at
            for i, data in enumerate(pending):
                self.midi_out.write_midi_event(min(at + i, frames - 1), data)
            self._sent_at = base
            self._armed = True
            self._sent.set()
        if self._armed:
            x = self.audio_in.get_array()
            hit = np.flatnonzero(np.abs(x) > self.threshold)
            if hit.size:
                self._onset = base + int(hit[0])
                self._armed = False
                self._done.set()

    def send(self, events: list[bytes], timeout: float = 2.0) -> int:
        """Write ``events`` in the next cycle; returns the frame of its start."""
        self._sent.clear()
        self._at = 0
        self._pending = [bytes(e) for e in events]
        if not self._sent.wait(timeout):
            raise AssertionError("the probe's JACK cycle did not run")
        self._armed = False
        return int(self._sent_at)

    def key_to_sound(self, events: list[bytes], timeout: float = 2.0, at: int = 0) -> int:
        """Send ``events`` (the last one a note-on), the first ``at`` frames into the
        cycle, and return the frames from the cycle's start to the first sample above
        the threshold."""
        self._done.clear()
        self._sent.clear()
        self._at = int(at)
        self._pending = [bytes(e) for e in events]
        if not self._sent.wait(timeout):
            raise AssertionError("the probe's JACK cycle did not run")
        if not self._done.wait(timeout):
            raise AssertionError(f"no sound within {timeout} s of {[e.hex() for e in events]}")
        return (self._onset - self._sent_at) & 0xFFFFFFFF

    def key_to_sound_by(self, send, timeout: float = 2.0) -> int:
        """Call ``send()`` (which makes the synth sound some other way: an OSC packet)
        and return the frames from JACK's frame estimate just before it to the first
        sample above the threshold."""
        self._done.clear()
        self._sent_at = self.client.frame_time
        self._armed = True
        send()
        if not self._done.wait(timeout):
            raise AssertionError(f"no sound within {timeout} s")
        return (self._onset - self._sent_at) & 0xFFFFFFFF

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()



def jack_port(pattern: str, midi: bool = False) -> str:
    """The one JACK port whose name matches ``pattern`` (a regular expression); an
    error that says which ports matched when there are several (libjack gives no
    client's process id to tell one host's from another's)."""
    import jack

    c = jack.Client("ps-port-lookup", no_start_server=True)
    try:
        names = [p.name for p in c.get_ports(pattern, is_midi=midi, is_audio=not midi)]
    finally:
        c.close()
    if len(names) != 1:
        raise AssertionError(
            f"JACK ports matching {pattern!r}: {names}; the test needs exactly one (is "
            "another promptsynth host running on this JACK server?)"
        )
    return names[0]
