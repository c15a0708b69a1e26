"""Fixtures for the host tests: JACK detection, a small real checkpoint, a host subprocess
(`promptsynth play`) and an OSC client that reads replies.

The host tests run against a real JACK server (CI: `jackd -d dummy -r 48000 -p 128`)
and skip with the reason where none runs.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pythonosc import osc_bundle_builder, osc_message, osc_message_builder

from tests.conftest import JACK_REASON, child_processes, cpu_steal_s, jack_running

ROOT = Path(__file__).resolve().parents[2]
SR = 48000


@pytest.fixture(scope="session")
def jack() -> None:
    """Skip unless a JACK server runs (jack_lsp answers with system:playback ports)."""
    if not jack_running():
        pytest.skip(JACK_REASON)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random key-tracked MiniLM checkpoint (the real encoder, an untrained flow
    conditioned on text, pitch and velocity, like the shipped default), built in a
    subprocess so this test process never imports torch. A checkpoint that cannot be
    built fails the tests that need it, with the reason: it is this suite's own part."""
    folder = tmp_path_factory.mktemp("ckpt") / "minilm"
    code = (
        "import sys; from pathlib import Path; from model import get_encoder; "
        "from tests.model.conftest import make_checkpoint; "
        "make_checkpoint(Path(sys.argv[1]), get_encoder('minilm'), key_tracked=True)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if r.returncode != 0:
        pytest.fail(f"cannot build a test checkpoint (exit status {r.returncode}): "
                    f"{r.stderr.strip()[-2000:]}", pytrace=False)
    return folder


# -- OSC --------------------------------------------------------------------------------


def message(address: str, *args, types: str | None = None) -> bytes:
    b = osc_message_builder.OscMessageBuilder(address=address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def bundle(timetag: float, *messages: bytes) -> bytes:
    b = osc_bundle_builder.OscBundleBuilder(timetag)
    for m in messages:
        b.add_content(osc_message.OscMessage(m))
    return b.build().dgram


class OscClient:
    """A UDP socket that sends to the host and collects every reply on a thread."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.replies: list[tuple[str, list]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            m = osc_message.OscMessage(data)
            with self._cond:
                self.replies.append((m.address, list(m.params)))
                self._cond.notify_all()

    def send(self, address: str, *args, types: str | None = None) -> None:
        self.sock.sendto(message(address, *args, types=types), self.target)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def expect(self, address: str, timeout: float = 10.0, where=None) -> list:
        """Wait for (and consume) the first reply to ``address`` matching ``where(params)``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, (a, p) in enumerate(self.replies):
                    if a == address and (where is None or where(p)):
                        del self.replies[i]
                        return p
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {address} reply within {timeout} s; got {self.replies}"
                    )
                self._cond.wait(left)

    def ask(self, address: str, *args, reply: str, timeout: float = 10.0) -> list:
        self.send(address, *args)
        return self.expect(reply, timeout)

    def clear(self) -> None:
        with self._cond:
            self.replies.clear()

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=1)
        self.sock.close()


# -- the host subprocess ----------------------------------------------------------------


class HostProcess:
    """`python -m server play ...` with --osc-port 0; ``port`` comes from its ready line."""

    def __init__(self, args: list[str], timeout: float = 90.0, env: dict | None = None) -> None:
        env = dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1")
        #: CPU stolen by the hypervisor before this host started (see assert_no_underruns).
        self.steal_start = cpu_steal_s()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "play", "--osc-port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.ready_line = self._wait_ready(timeout)
        self.port = int(re.search(r"osc [\d.]+:(\d+)", self.ready_line).group(1))
        self.returncode: int | None = None

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _wait_ready(self, timeout: float) -> str:
        result: list[str] = []

        def read():
            for line in self.proc.stdout:
                if line.startswith("promptsynth ready"):
                    result.append(line.strip())
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"host did not get ready in {timeout} s; stderr: {''.join(self.stderr)[-2000:]}"
            )
        return result[0]

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.returncode is None:
            self.proc.send_signal(sig)
            try:
                self.returncode = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.returncode = self.proc.wait()
        return self.returncode

    def worker_pids(self) -> list[int]:
        return [pid for pid, args in child_processes(self.proc.pid) if "spawn_main" in args]


# -- reading the recording --------------------------------------------------------------


def onsets(audio: np.ndarray, min_gap: int = 200) -> list[tuple[int, int]]:
    """(first non-zero frame, MIDI pitch of its strongest partial) after each stretch of
    at least ``min_gap`` exactly silent frames. ``audio``: [n_frames] or [n_frames, 2]."""
    x = audio[:, 0] if audio.ndim == 2 else audio
    nz = np.flatnonzero(x != 0.0)
    if nz.size == 0:
        return []
    starts = [int(nz[0])] + [int(b) for a, b in zip(nz[:-1], nz[1:]) if b - a > min_gap]
    result = []
    for s in starts:
        seg = x[s : s + 2048]
        n = len(seg) * 4
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), n))
        f = np.fft.rfftfreq(n, 1.0 / SR)[int(np.argmax(spec))]
        pitch = int(round(69 + 12 * np.log2(max(f, 1.0) / 440.0)))
        result.append((s, pitch))
    return result


def sounding_frames(audio: np.ndarray, start: int, min_gap: int = 200) -> int:
    """Frames from ``start`` until the next run of ``min_gap`` silent frames."""
    x = audio[start:, 0] if audio.ndim == 2 else audio[start:]
    nz = np.flatnonzero(x != 0.0)
    gaps = np.flatnonzero(np.diff(nz) > min_gap)
    return int(nz[gaps[0]] if gaps.size else nz[-1]) + 1


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def recorded(path: str | os.PathLike, start: int = 0) -> np.ndarray:
    """The frames from ``start`` on that a recording still being written holds so far
    ([n_frames, 2] float32; the render process writes ``--record`` files as 32-bit float
    stereo WAV, and their header's sizes only at the end): the data chunk is read to
    the end of the file, in whole frames."""
    with open(path, "rb") as f:
        data = f.read()
    i = 12  # after "RIFF", the size, "WAVE"
    while data[i:i + 4] != b"data":
        size = int.from_bytes(data[i + 4:i + 8], "little")
        i += 8 + size + (size & 1)
        assert i < len(data), f"{path}: no data chunk yet"
    body = data[i + 8:]
    n = len(body) // 8
    return np.frombuffer(body[:n * 8], dtype=np.float32).reshape(n, 2)[start:]


def recorded_frames(path: str | os.PathLike) -> int:
    """How many frames a recording being written holds so far."""
    return recorded(path).shape[0]


def wait_recorded(path: str | os.PathLike, start: int, seconds: float, timeout: float = 10.0) -> np.ndarray:
    """The recording from frame ``start`` once it holds ``seconds`` of audio from there
    (the writer thread flushes every 50 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        audio = recorded(path, start)
        if audio.shape[0] >= seconds * SR:
            return audio
        assert time.monotonic() < deadline, (
            f"{path}: {audio.shape[0]} frames from {start} after {timeout} s, waiting for {seconds * SR:.0f}")
        time.sleep(0.05)


class UdpRelay:
    """A UDP relay between a client and the host that notes when each OSC message from the
    client arrived (monotonic s, address, arguments): the arrival times at the host, but
    for the relay's own forwarding (microseconds). Replies go back to the client."""

    def __init__(self, host_port: int) -> None:
        self.target = ("127.0.0.1", host_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[tuple[float, str, list]] = []
        self._client = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            try:
                data, addr = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            t = time.monotonic()
            if addr == self.target:
                if self._client is not None:
                    self.sock.sendto(data, self._client)
                continue
            self._client = addr
            self.sock.sendto(data, self.target)
            if data.startswith(b"/"):
                m = osc_message.OscMessage(data)
                self.arrivals.append((t, m.address, list(m.params)))

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=1)
        self.sock.close()
