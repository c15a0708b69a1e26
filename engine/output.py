"""Live audio output through sounddevice (PortAudio), with an optional recording.

The callback contract: fill ``outdata`` entirely from ``Engine.render_into``, read
``status`` every call, take no lock, do no I/O. The recording is copied into a
preallocated ring there and written to disk by a separate thread.
"""

from __future__ import annotations

import gc
import os
import threading
import time

import numpy as np

from engine.engine import Engine

__all__ = ["AudioOutput", "AudioError", "Recorder", "list_devices"]

#: Callbacks whose start times anchor :meth:`AudioOutput.frame_at` (8 blocks: 21 ms at
#: 128 frames and 48 kHz). The earliest-running of them sets the clock, so one callback
#: delayed by a busy machine does not shift the notes that arrive just after it, while
#: a lasting shift (the device dropped cycles after an underrun) is followed within
#: the window.
CLOCK_WINDOW = 8


class AudioError(RuntimeError):
    """The audio device could not be opened, or stopped working."""


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise AudioError(f"cannot load PortAudio ({exc}); install libportaudio2") from exc
    return sd


def list_devices() -> list[dict]:
    """Output devices PortAudio sees: index, name, host API, channels, default rate."""
    sd = _sd()
    apis = sd.query_hostapis()
    result = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_output_channels"] > 0:
            result.append({
                "index": i,
                "name": d["name"],
                "hostapi": apis[d["hostapi"]]["name"],
                "channels": d["max_output_channels"],
                "default_samplerate": d["default_samplerate"],
            })
    return result


class Recorder:
    """Writes what the callback played to a WAV file from a background thread.

    Args:
        path: output .wav (32-bit float).
        sample_rate: Hz.
        ring_s: seconds of audio the ring holds before frames are dropped (and counted).
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int, ring_s: float = 10.0) -> None:
        import soundfile as sf

        self.path = os.fspath(path)
        self._ring = np.zeros((int(ring_s * sample_rate), 2), dtype=np.float32)
        self._write = 0  # frames pushed (audio thread)
        self._read = 0  # frames written (writer thread)
        self.dropped_frames = 0
        self._file = sf.SoundFile(self.path, "w", samplerate=int(sample_rate), channels=2, subtype="FLOAT")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="promptsynth-recorder", daemon=True)
        self._thread.start()

    def push(self, block: np.ndarray) -> None:
        """Audio thread: copy one block into the ring (no lock, no allocation)."""
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
        self._file.close()


class AudioOutput:
    """Streams an Engine to an output device.

    Args:
        engine: the engine to render; its sample rate is the stream's.
        device: PortAudio device index or a substring of its name; None = default.
        blocksize: frames per callback.
        latency: seconds, or "low"/"high" as PortAudio understands them.
        record: optional path of a WAV file receiving exactly what is played.
    """

    def __init__(
        self,
        engine: Engine,
        device: int | str | None = None,
        blocksize: int = 128,
        latency: float | str = "low",
        record: str | os.PathLike | None = None,
    ) -> None:
        if isinstance(blocksize, bool) or not isinstance(blocksize, int) or not 16 <= blocksize <= 8192:
            raise ValueError(f"blocksize must be an int in range 16..8192, got {blocksize!r}")
        self.engine = engine
        self.device = device
        self.blocksize = blocksize
        self.latency = latency
        self.underflows = 0
        self.callback_errors = 0
        self.last_error: str | None = None
        self._record_path = record
        self.recorder: Recorder | None = None
        self._stream = None
        # Each callback's start time less its first frame's time: the smallest of the
        # recent ones is the stream's true pacing (a late callback only adds to it).
        self._offsets = np.full(CLOCK_WINDOW, np.inf)
        self._offsets[0] = time.monotonic()
        self._n_clock = 0
        self._closed = False
        self._blas_limit = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> AudioOutput:
        if self._closed:
            raise AudioError("this AudioOutput is closed; make a new one")
        if self._stream is not None:
            return self
        sd = _sd()
        # The voices' matrix products run in BLAS. A multi-threaded BLAS hands them to
        # worker threads of ordinary priority, so a busy machine stalls the real-time
        # callback behind them (underruns); one thread keeps the work on the callback's.
        from threadpoolctl import threadpool_limits

        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        # Python's cyclic garbage collector runs in whichever thread allocates, the audio
        # callback included, and a full pass over every object of a large program (numpy,
        # a test runner, the host) takes milliseconds: an underrun. Freezing what exists
        # now leaves the collector only the objects made from here on.
        gc.collect()
        gc.freeze()
        try:
            if self._record_path is not None:
                self.recorder = Recorder(self._record_path, self.engine.sample_rate)
            self._stream = sd.OutputStream(
                samplerate=self.engine.sample_rate,
                blocksize=self.blocksize,
                device=self.device,
                channels=2,
                dtype="float32",
                latency=self.latency,
                callback=self._callback,
                finished_callback=self._finished,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            if self.recorder is not None:
                self.recorder.close()
            self._restore_blas()
            raise AudioError(
                f"cannot open audio output (device={self.device!r}, sample rate "
                f"{self.engine.sample_rate}, block {self.blocksize}): {exc}. "
                "`promptsynth devices` lists the devices; with JACK the sample rate must equal jackd's."
            ) from exc
        return self

    def stop(self) -> None:
        """Stop the stream and finalise the recording; safe to call twice."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        if self.recorder is not None:
            self.recorder.close()
        self._restore_blas()

    def _restore_blas(self) -> None:
        limit, self._blas_limit = self._blas_limit, None
        if limit is not None:
            limit.restore_original_limits()

    def close(self) -> None:
        self.stop()
        self._closed = True

    def __enter__(self) -> AudioOutput:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def panic(self) -> None:
        self.engine.panic()

    # -- state ---------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._stream is not None and self._stream.active

    @property
    def cpu_load(self) -> float:
        """PortAudio's estimate of the fraction of the callback's time budget in use."""
        return float(self._stream.cpu_load) if self._stream is not None else 0.0

    @property
    def output_latency_ms(self) -> float:
        return float(self._stream.latency) * 1000.0 if self._stream is not None else 0.0

    @property
    def device_name(self) -> str:
        sd = _sd()
        idx = self._stream.device if self._stream is not None else sd.default.device[1]
        try:
            return str(sd.query_devices(idx)["name"])
        except (sd.PortAudioError, ValueError, TypeError):
            return str(idx)

    def frame_at(self, when: float | None = None) -> int:
        """The engine frame at which an event that arrived at monotonic time ``when``
        should sound: one block later than its arrival, so that its spacing to other
        events is kept to the sample.
        """
        t = time.monotonic() if when is None else when
        offset = float(self._offsets.min())
        f = int(round((t - offset) * self.engine.sample_rate)) + self.blocksize
        return max(f, self.engine.frame)

    # -- the audio thread ----------------------------------------------------------------

    def _callback(self, outdata, frames, time_info, status) -> None:
        if status.output_underflow:
            self.underflows += 1
        self._offsets[self._n_clock % CLOCK_WINDOW] = (
            time.monotonic() - self.engine.frame / self.engine.sample_rate
        )
        self._n_clock += 1
        try:
            self.engine.render_into(outdata)
        except Exception as exc:  # noqa: BLE001 - the stream must outlive any bug
            outdata.fill(0.0)
            self.callback_errors += 1
            self.last_error = repr(exc)
            self.engine.frame += frames
        if self.recorder is not None:
            self.recorder.push(outdata)

    def _finished(self) -> None:
        pass
