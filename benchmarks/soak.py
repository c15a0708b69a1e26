"""Soak the live host: random traffic from three OSC clients and a MIDI port for a while.

    python benchmarks/soak.py [--seconds 600] [--model CHECKPOINT | --no-model]
                              [--voices 32] [--blocksize 128] [--json]

A real `promptsynth play` subprocess on the running JACK server gets notes, controllers,
pitch bend, timbre changes, prompts, morphs and /status queries from three OSC clients
(127.0.0.1 only) and notes, controllers and bends through a JACK MIDI port. At the end
every client releases what it holds; the voices must die out within the release time.

Prints: messages sent by kind, prompts answered, underruns, the worst cpu_load seen,
the host's resident memory after a warm-up and at the end (growth), voices left sounding
one release time after the end (stuck), and the host's exit status. Exit status 0 when
there were no underruns, no stuck voice and (runs of 5 minutes or more) memory grew by
less than 5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pythonosc import osc_message, osc_message_builder  # noqa: E402

MIDI_PORT = "soak"
PROMPTS = [
    "a warm brass pad",
    "a glassy bell",
    "a plucked string",
    "a dark bass",
    "bright metallic lead",
    "soft flute",
    "hollow wooden marimba",
    "distorted organ",
]
MAX_RELEASE_S = 0.5


def build(address: str, *args) -> bytes:
    b = osc_message_builder.OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


class Client(threading.Thread):
    """One OSC client: random traffic until ``deadline``, then releases all it holds."""

    def __init__(self, port: int, deadline: float, seed: int, use_model: bool, channels) -> None:
        super().__init__(daemon=True)
        self.target = ("127.0.0.1", port)
        self.deadline = deadline
        self.rng = random.Random(seed)
        self.use_model = use_model
        self.channels = channels
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.sent: Counter = Counter()
        self.replies: Counter = Counter()
        self.fails: list[str] = []
        self.held: set[tuple[int, int]] = set()
        self.status: list | None = None

    def send(self, kind: str, address: str, *args) -> None:
        self.sock.sendto(build(address, *args), self.target)
        self.sent[kind] += 1

    def drain(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                return
            m = osc_message.OscMessage(data)
            self.replies[m.address] += 1
            if m.address == "/status.reply":
                self.status = list(m.params)
            elif m.address == "/fail" and len(self.fails) < 20:
                self.fails.append(f"{m.params[0]}: {m.params[1]}")

    def run(self) -> None:
        rng = self.rng
        next_prompt = time.monotonic() + rng.uniform(0.5, 2.0)
        while time.monotonic() < self.deadline:
            ch = rng.choice(self.channels)
            r = rng.random()
            if r < 0.35:
                pitch = rng.randrange(36, 96)
                self.send("note", "/note", pitch, rng.randrange(1, 128), ch)
                self.held.add((pitch, ch))
            elif r < 0.65 and self.held:
                pitch, c = self.held.pop()
                self.send("note_off", "/note/off", pitch, c)
            elif r < 0.75:
                self.send("cc", "/cc", rng.choice([1, 7, 10]), rng.randrange(128), ch)
            elif r < 0.82:
                self.send("bend", "/bend", rng.uniform(-1, 1), ch)
            elif r < 0.90:
                name, lo, hi = rng.choice(
                    [
                        ("mod_index", 0, 8),
                        ("mod_ratio", 0.5, 4),
                        ("sustain", 0, 1),
                        ("release_s", 0.01, MAX_RELEASE_S),
                    ]
                )
                self.send("param", f"/param/{name}", rng.uniform(lo, hi), ch)
            elif r < 0.95:
                self.send("status", "/status")
            elif self.use_model and time.monotonic() > next_prompt:
                next_prompt = time.monotonic() + rng.uniform(0.5, 2.0)
                if rng.random() < 0.7:
                    self.send("prompt", "/prompt", rng.choice(PROMPTS), ch, rng.randrange(1000))
                else:
                    a, b = rng.sample(PROMPTS, 2)
                    self.send("morph", "/morph", a, b, rng.random(), ch)
            self.drain()
            time.sleep(rng.uniform(0.002, 0.02))
        self.release()

    def release(self) -> None:
        for pitch, ch in sorted(self.held):
            self.send("note_off", "/note/off", pitch, ch)
        self.held.clear()
        self.drain()


class MidiClient(threading.Thread):
    """Notes, controllers and bends through a JACK MIDI output into the host's port."""

    def __init__(self, deadline: float, seed: int) -> None:
        super().__init__(daemon=True)
        import rtmidi

        self.deadline = deadline
        self.rng = random.Random(seed)
        self.out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="ps-soak")
        names = self.out.get_ports()
        match = [i for i, n in enumerate(names) if n.endswith(f"promptsynth:{MIDI_PORT}")]
        if not match:
            raise RuntimeError(f"host MIDI port not found among {names}")
        self.out.open_port(match[0])
        time.sleep(0.2)
        self.sent: Counter = Counter()
        self.held: set[tuple[int, int]] = set()

    def run(self) -> None:
        rng = self.rng
        while time.monotonic() < self.deadline:
            ch = rng.randrange(8, 12)
            r = rng.random()
            if r < 0.4:
                pitch = rng.randrange(36, 96)
                self.out.send_message([0x90 | ch, pitch, rng.randrange(1, 128)])
                self.held.add((pitch, ch))
                self.sent["note"] += 1
            elif r < 0.8 and self.held:
                pitch, c = self.held.pop()
                self.out.send_message([0x80 | c, pitch, 0])
                self.sent["note_off"] += 1
            elif r < 0.9:
                self.out.send_message([0xB0 | ch, rng.choice([1, 7, 10]), rng.randrange(128)])
                self.sent["cc"] += 1
            else:
                v = rng.randrange(16384)
                self.out.send_message([0xE0 | ch, v & 0x7F, v >> 7])
                self.sent["bend"] += 1
            time.sleep(rng.uniform(0.002, 0.02))
        for pitch, ch in sorted(self.held):
            self.out.send_message([0x80 | ch, pitch, 0])
            self.sent["note_off"] += 1
        self.held.clear()

    def close(self) -> None:
        self.out.close_port()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ask_status(sock: socket.socket, port: int) -> list:
    sock.sendto(build("/status"), ("127.0.0.1", port))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(65536)
        except (TimeoutError, OSError):
            continue
        m = osc_message.OscMessage(data)
        if m.address == "/status.reply":
            return list(m.params)
    raise RuntimeError("no /status reply")


def soak(args) -> dict:
    bank = tempfile.mkdtemp(prefix="ps-soak-bank-")
    cmd = [
        sys.executable,
        "-m",
        "server",
        "play",
        "--osc-port",
        "0",
        "--midi-virtual",
        MIDI_PORT,
        "--voices",
        str(args.voices),
        "--blocksize",
        str(args.blocksize),
        "--bank",
        bank,
    ]
    cmd += ["--no-model"] if args.no_model else (["--model", args.model] if args.model else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    host = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(host.stderr), daemon=True).start()
    line = host.stdout.readline()
    m = re.search(r"osc [\d.]+:(\d+)", line)
    if not m:
        host.kill()
        raise RuntimeError(f"host did not start: {line!r} {''.join(stderr)[-2000:]}")
    port = int(m.group(1))
    mon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mon.bind(("127.0.0.1", 0))
    mon.settimeout(0.2)

    t0 = time.monotonic()
    deadline = t0 + args.seconds
    use_model = not args.no_model
    clients = [
        Client(port, deadline, args.seed + i, use_model, list(range(1 + 2 * i, 3 + 2 * i)))
        for i in range(3)
    ]
    midi = MidiClient(deadline, args.seed + 10)
    start_status = ask_status(mon, port)
    for c in clients:
        c.start()
    midi.start()

    warmup = min(30.0, args.seconds / 5)
    rss_base = None
    rss_max = 0
    cpu_max = 0.0
    while time.monotonic() < deadline:
        time.sleep(1.0)
        s = ask_status(mon, port)
        cpu_max = max(cpu_max, s[2])
        rss = rss_kb(host.pid)
        rss_max = max(rss_max, rss)
        if rss_base is None and time.monotonic() - t0 >= warmup:
            rss_base = rss
    for c in clients:
        c.join(timeout=10)
    midi.join(timeout=10)
    # Pedals up and all notes off on every channel as a final all-notes-off, then the
    # voices must be gone within the longest release time the soak sets (plus a block).
    released_at = time.monotonic()
    voices_end = None
    while time.monotonic() - released_at < MAX_RELEASE_S + 1.0:
        voices_end = ask_status(mon, port)[0]
        if voices_end == 0:
            break
        time.sleep(0.05)
    stuck = ask_status(mon, port)[0]
    for c in clients:
        c.drain()
    end = ask_status(mon, port)
    rss_end = rss_kb(host.pid)
    host.send_signal(signal.SIGINT)
    try:
        rc = host.wait(timeout=30)
    except subprocess.TimeoutExpired:
        host.kill()
        rc = host.wait()
    midi.close()
    sent = Counter()
    replies = Counter()
    for c in clients:
        sent.update(c.sent)
        replies.update(c.replies)
    sent.update({f"midi_{k}": v for k, v in midi.sent.items()})
    rss_base = rss_base or rss_end
    return {
        "seconds": args.seconds,
        "voices": args.voices,
        "blocksize": args.blocksize,
        "sent": dict(sent),
        "messages": sum(sent.values()),
        "prompts_done": replies["/prompt/done"],
        "morphs_done": replies["/morph/done"],
        "fails": replies["/fail"],
        "fail_examples": sorted({f for c in clients for f in c.fails})[:10],
        "underruns": end[1] - start_status[1],
        # Of them: blocks the render thread filled too late (ring), and the device's own
        # underflows (under JACK: an xrun anywhere in the graph).
        "ring_underruns": end[13] - start_status[13],
        "device_underflows": end[14] - start_status[14],
        "headroom_min_ms": round(end[12], 3),
        "cpu_load_max": round(cpu_max, 3),
        "rss_base_kb": rss_base,
        "rss_end_kb": rss_end,
        "rss_max_kb": rss_max,
        "rss_growth_kb": rss_end - rss_base,
        "stuck_voices": stuck,
        "internal_errors": end[8],
        "midi_errors": end[10],
        "model_restarts": end[9],
        "exit_status": rc,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600.0)
    p.add_argument("--model", help="checkpoint folder (default: the shipped one)")
    p.add_argument("--no-model", action="store_true", help="no prompts or morphs")
    p.add_argument("--voices", type=int, default=32)
    p.add_argument("--blocksize", type=int, default=128)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    r = soak(args)
    if args.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k:>16}: {v}")
    ok = r["underruns"] == 0 and r["stuck_voices"] == 0 and r["exit_status"] == 0
    if args.seconds >= 300:
        ok = ok and r["rss_growth_kb"] < 5 * 1024
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
