"""Latency figures of the live host, on the real audio path (JACK dummy in CI).

    python benchmarks/bench_latency.py [--model CHECKPOINT] [--n 30]

Prints:
- OSC /note and MIDI note-on -> first non-zero output sample: time from sending to the
  moment that sample is rendered (block callback time + its offset), and the same plus the
  stream's output latency (what reaches the DAC);
- placement error of timetagged bundles: onsets of notes tagged k * 100 ms apart, against
  k * 4800 frames (samples; 0 = exact);
- /prompt -> the new patch in use: from sending the prompt to the block in which the
  engine switched the channel's patch (warm, each prompt new to the model's cache).

The host runs in this process (the same Host `promptsynth play` builds) so that the audio
callback can be watched; the model still runs in its worker process.
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


class Probe:
    """Wraps Engine.render_into: notes the time of the first non-zero sample after arm(),
    and the block in which channel ``ch``'s patch changed."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.engine = host.engine
        self._render = self.engine.render_into
        self.engine.render_into = self._wrapped
        self.sr = self.engine.sample_rate
        self.armed = False
        self.onsets: list[tuple[float, int]] = []  # (render time of the sample, frame)
        self.patch_ch = 0
        self._patch = self.engine.tables[0]
        self.patch_changes: list[float] = []
        self.silent_since = 0

    def _wrapped(self, out) -> None:
        t = time.monotonic()
        start = self.engine.frame
        self._render(out)
        nz = np.flatnonzero(out[:, 0])
        if nz.size == 0:
            self.silent_since += out.shape[0]
        elif self.silent_since > 0:
            off = int(nz[0])
            self.onsets.append((t + off / self.sr, start + off))
            self.silent_since = 0
        table = self.engine.tables[self.patch_ch]  # a new KeyTable object per patch change
        if table is not self._patch:
            self._patch = table
            self.patch_changes.append(t)


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


def bench_notes(host: Host, probe: Probe, send, n: int) -> list[float]:
    lat = []
    for i in range(n):
        k = len(probe.onsets)
        t = time.monotonic()
        send(60 + i % 12, True)
        if wait_for(lambda k=k: len(probe.onsets) > k, 2.0):
            lat.append((probe.onsets[k][0] - t) * 1000)
        time.sleep(0.03)
        send(60 + i % 12, False)
        time.sleep(0.05)
    return lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="checkpoint folder (default: a random MiniLM one built now)")
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()
    model = args.model
    if model is None:
        from model import get_encoder
        from tests.model.conftest import make_checkpoint

        model = str(make_checkpoint(Path(tempfile.mkdtemp()) / "ckpt", get_encoder("minilm")))
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    port_name = f"bench-{os.getpid()}"
    t0 = time.monotonic()
    host = Host(
        HostConfig(osc_port=0, model=model, bank=tempfile.mkdtemp(), midi_virtual=[port_name])
    ).start()
    print(f"start to ready (in-process, imports excluded): {time.monotonic() - t0:.2f} s")
    print(host.describe())
    probe = Probe(host)
    underruns_at_ready = host.output.underflows
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    target = ("127.0.0.1", host.osc.port)
    # A sine with instant attack and release on channel 1, so onsets are exact.
    for name, v in [("attack_s", 0.0), ("sustain", 1.0), ("release_s", 0.001), ("mod_index", 0.0)]:
        sock.sendto(msg(f"/param/{name}", v, 1), target)
    time.sleep(0.2)
    latency_ms = host.output.output_latency_ms
    block_ms = 1000 * host.output.blocksize / host.engine.sample_rate

    osc = bench_notes(
        host, probe, lambda p, on: sock.sendto(msg("/note", p, 100 if on else 0), target), args.n
    )
    print(
        f"OSC /note -> first sample rendered: {summary(osc)}; +output latency {latency_ms:.2f} ms "
        f"(block {block_ms:.2f} ms)"
    )

    import mido

    out = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True).open_output(
        f"promptsynth:{port_name}"
    )
    time.sleep(0.2)
    midi = bench_notes(
        host,
        probe,
        lambda p, on: out.send(mido.Message("note_on", note=p, velocity=100 if on else 0)),
        args.n,
    )
    out.close()
    print(
        f"MIDI note-on -> first sample rendered: {summary(midi)}; +output latency {latency_ms:.2f} ms"
    )

    # Bundles tagged k * 100 ms apart (4800 frames), sent out of order, 0.5 s ahead.
    k0 = len(probe.onsets)
    base = time.time() + 0.5
    step = 4800 / host.engine.sample_rate
    order = list(range(args.n))
    order = order[1::2] + order[0::2]
    for k in order:
        for dt, vel in ((0.0, 100), (0.03, 0)):
            b = osc_bundle_builder.OscBundleBuilder(base + k * step + dt)
            b.add_content(osc_message.OscMessage(msg("/note", 72, vel)))
            sock.sendto(b.build().dgram, target)
    wait_for(lambda: len(probe.onsets) >= k0 + args.n, 0.5 + args.n * step + 2)
    frames = [f for _, f in probe.onsets[k0 : k0 + args.n]]
    errors = [abs(f - frames[0] - k * 4800) for k, f in enumerate(frames)]
    print(
        f"timetagged bundles, placement error vs k*4800 frames: max {max(errors)} samples, "
        f"mean {statistics.mean(errors):.2f} (n={len(frames)}; re-anchors {host.clock.reanchors})"
    )

    # /prompt -> new patch in use (channel 2), each prompt new to the model's caches.
    probe.patch_ch = 1
    probe._patch = host.engine.tables[1]
    pl = []
    for i in range(args.n):
        k = len(probe.patch_changes)
        t = time.monotonic()
        sock.sendto(
            msg("/prompt", f"benchmark timbre {i} {os.getpid()} {time.time()}", 2, i), target
        )
        if wait_for(lambda k=k: len(probe.patch_changes) > k, 10.0):
            pl.append((probe.patch_changes[k] - t) * 1000)
        time.sleep(0.05)
    print(f"/prompt -> new patch in use (warm, uncached prompt): {summary(pl)}")
    print(
        f"underruns: {underruns_at_ready} while starting, {host.output.underflows - underruns_at_ready} "
        "during the measurements"
    )
    sock.close()
    host.close()
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
