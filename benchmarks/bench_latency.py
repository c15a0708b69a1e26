"""Latency figures of the live host, on the real audio path (JACK dummy in CI).

    python benchmarks/bench_latency.py [--model CHECKPOINT] [--n 30] [--latency low]

Prints:
- OSC /note and MIDI note-on -> its first sample taken by the device: from sending to
  the moment PortAudio's callback takes the block holding that sample (read from the
  recording, placed on the render process's clock), and the same plus the device's own
  output latency (what reaches the DAC); the host's ready line gives the figure it
  promises for the total;
- placement error of timetagged bundles: onsets of notes tagged k * 100 ms apart, against
  k * 4800 frames (samples; 0 = exact);
- /prompt -> the new patch in use: from sending the prompt to the render process
  applying the patch (its per-channel patch counter, warm, each prompt new to the
  model's cache).

The host runs in this process (the same Host `promptsynth play` builds); the engine
renders in its render process and the model runs in its worker process.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pythonosc import osc_bundle_builder, osc_message, osc_message_builder  # noqa: E402

from server.host import Host, HostConfig  # noqa: E402


def msg(address: str, *args) -> bytes:
    b = osc_message_builder.OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def wait_for(pred, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.0005)
    return False


def summary(xs: list[float], unit: str = "ms") -> str:
    return (
        f"median {statistics.median(xs):.2f} {unit}, min {min(xs):.2f}, max {max(xs):.2f} "
        f"(n={len(xs)})"
    )


def onset_frames(audio: np.ndarray, min_gap: int = 2000) -> list[int]:
    """First non-zero frame after each run of at least ``min_gap`` silent frames."""
    nz = np.flatnonzero(audio[:, 0] != 0.0)
    if nz.size == 0:
        return []
    return [int(nz[0])] + [int(b) for a, b in zip(nz[:-1], nz[1:]) if b - a > min_gap]


def send_notes(send, n: int) -> list[float]:
    """Send n short notes, 80 ms apart; their send times (monotonic)."""
    times = []
    for i in range(n):
        times.append(time.monotonic())
        send(60 + i % 12, True)
        time.sleep(0.03)
        send(60 + i % 12, False)
        time.sleep(0.05)
    return times


def take_time(host: Host, frame: int) -> float:
    """When the device takes ``frame`` (monotonic), on the render process's clock: block
    j is taken at offset + (j + 1) * period."""
    sr = host.engine.sample_rate
    block = host.output.blocksize
    offset = float(host.engine._shared.status["offset"])
    return offset + (frame // block + 1) * block / sr + (frame % block) / sr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint folder (default: a random MiniLM one built now)")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--latency", default="low", help="the host's --latency (render-ahead)")
    args = ap.parse_args()
    model = args.model
    if model is None:
        from model import get_encoder
        from tests.model.conftest import make_checkpoint

        model = str(make_checkpoint(Path(tempfile.mkdtemp()) / "ckpt", get_encoder("minilm")))
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    port_name = f"bench-{os.getpid()}"
    wav = Path(tempfile.mkdtemp()) / "bench.wav"
    latency = args.latency if args.latency in ("low", "high") else float(args.latency)
    t0 = time.monotonic()
    host = Host(
        HostConfig(osc_port=0, model=model, bank=tempfile.mkdtemp(), midi_virtual=[port_name],
                   record=str(wav), latency=latency)
    ).start()
    print(f"start to ready (in-process, imports excluded): {time.monotonic() - t0:.2f} s")
    print(host.describe())
    underruns_at_ready = host.output.underflows
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    target = ("127.0.0.1", host.osc.port)
    # A sine with instant attack and release on channel 1, so onsets are exact.
    for name, v in [("attack_s", 0.0), ("sustain", 1.0), ("release_s", 0.001), ("mod_index", 0.0)]:
        sock.sendto(msg(f"/param/{name}", v, 1), target)
    time.sleep(0.2)
    device_ms = host.output.device_latency_ms

    osc_sent = send_notes(lambda p, on: sock.sendto(msg("/note", p, 100 if on else 0), target), args.n)
    time.sleep(0.2)

    import mido

    out = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True).open_output(
        f"promptsynth:{port_name}"
    )
    time.sleep(0.2)
    midi_sent = send_notes(
        lambda p, on: out.send(mido.Message("note_on", note=p, velocity=100 if on else 0)), args.n
    )
    out.close()
    time.sleep(0.2)

    # Bundles tagged k * 100 ms apart (4800 frames), sent out of order, 0.5 s ahead.
    base = time.time() + 0.5
    step = 4800 / host.engine.sample_rate
    order = list(range(args.n))
    order = order[1::2] + order[0::2]
    for k in order:
        for dt, vel in ((0.0, 100), (0.03, 0)):
            b = osc_bundle_builder.OscBundleBuilder(base + k * step + dt)
            b.add_content(osc_message.OscMessage(msg("/note", 72, vel)))
            sock.sendto(b.build().dgram, target)
    time.sleep(0.5 + args.n * step + 0.5)
    takes = [take_time(host, 0)]  # the clock, kept before the host stops

    # /prompt -> new patch in use (channel 2), each prompt new to the model's caches.
    pl = []
    for i in range(args.n):
        k = host.engine.patch_serial(1)
        t = time.monotonic()
        sock.sendto(
            msg("/prompt", f"benchmark timbre {i} {os.getpid()} {time.time()}", 2, i), target
        )
        if wait_for(lambda k=k: host.engine.patch_serial(1) > k, 10.0):
            pl.append((time.monotonic() - t) * 1000)
        time.sleep(0.05)
    under = host.output.underflows - underruns_at_ready
    sock.close()
    host.close()

    import soundfile as sf

    audio, _ = sf.read(str(wav), dtype="float32")
    onsets = onset_frames(audio)
    n = args.n
    if len(onsets) < 3 * n:
        print(f"only {len(onsets)} onsets in the recording for {3 * n} notes")
        return 1
    offset0 = takes[0]  # take time of frame 0's block

    def when(frame: int) -> float:
        block = host.output.blocksize
        sr = host.engine.sample_rate
        return offset0 + (frame // block) * block / sr + (frame % block) / sr

    osc_lat = [(when(f) - t) * 1000 for f, t in zip(onsets[:n], osc_sent)]
    midi_lat = [(when(f) - t) * 1000 for f, t in zip(onsets[n : 2 * n], midi_sent)]
    print(f"promised by the ready line: {host.output.latency_ms:.2f} ms to the DAC "
          f"({host.output.latency_ms - device_ms:.2f} ms to the device)")
    print(f"OSC /note -> taken by the device: {summary(osc_lat)}; +device latency {device_ms:.2f} ms")
    print(f"MIDI note-on -> taken by the device: {summary(midi_lat)}; +device latency {device_ms:.2f} ms")
    frames = onsets[2 * n : 3 * n]
    errors = [abs(f - frames[0] - k * 4800) for k, f in enumerate(frames)]
    print(
        f"timetagged bundles, placement error vs k*4800 frames: max {max(errors)} samples, "
        f"mean {statistics.mean(errors):.2f} (n={len(frames)}; re-anchors {host.clock.reanchors})"
    )
    print(f"/prompt -> new patch in use (warm, uncached prompt): {summary(pl)}")
    print(f"underruns: {underruns_at_ready} while starting, {under} during the measurements")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
