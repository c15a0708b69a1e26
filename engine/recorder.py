"""The recording of what the live engine plays: a WAV file written from a thread of its
own, fed without a lock or an allocation from the render loop (``--record``)."""

from __future__ import annotations

import os
import threading

import numpy as np

__all__ = ["Recorder"]


class Recorder:
    """Writes what the engine rendered to a WAV file from a background thread.

    Args:
        path: output .wav (32-bit float).
        sample_rate: Hz.
        ring_s: seconds of audio the ring holds before frames are dropped (and counted).
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, ring_s: float = 10.0) -> None:
        import soundfile as sf

        self.path = os.fspath(path)
        self._ring = np.zeros((int(ring_s * sample_rate), 2), dtype=np.float32)
        self._write = 0  # frames pushed (render thread)
        self._read = 0  # frames written (writer thread)
        self.dropped_frames = 0
        self._file = sf.SoundFile(self.path, "w", samplerate=int(sample_rate), channels=2, subtype="FLOAT")
        self._stop = threading.Event()
        self._lock = threading.Lock()  # writer thread and close() only
        self._thread = threading.Thread(target=self._run, name="promptsynth-recorder", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        """Render thread: copy one block into the ring (no lock, no allocation)."""
        n = block.shape[0]
        cap = self._ring.shape[0]
        if self._write + n - self._read > cap:
            self.dropped_frames += n
            return
        i = self._write % cap
        first = min(n, cap - i)
        self._ring[i:i + first] = block[:first]
        if first < n:
            self._ring[: n - first] = block[first:]
        self._write += n

    def _flush(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            cap = self._ring.shape[0]
            w = self._write
            while self._read < w:
                i = self._read % cap
                n = min(w - self._read, cap - i)
                self._file.write(self._ring[i:i + n])
                self._read += n

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._flush()

    def close(self) -> None:
        """Write what is left and finalise the file; safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._flush()
        with self._lock:
            self._file.close()
