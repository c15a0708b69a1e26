"""JACK's own xrun count: the live host beside a silent client and pyo, in one run.

    python benchmarks/bench_xruns.py [--seconds 8] [--rounds 3] [--voices 32 64]
        [--latency cycle low high] [--scenarios held churn fuzz burst] [--no-pyo] [--no-model] [--effects]

Starts its own JACK server (``jackd -n promptsynth-bench -d dummy -r 48000 -p 128``,
real-time scheduling as `.ci/run` starts one) and, in interleaved rounds, runs on it:

- ``silent``: a sounddevice client whose (Python) callback writes silence;
- ``pyo``: pyo with 32 FM/ADSR voices (when pyo is installed: ``pip install -e .[bench]``);
- ``host``: `promptsynth play` at each --voices and --latency (``cycle``: rendered in
  JACK's cycle, ``--render cycle``; ``low``, ``high`` or seconds: rendered that far
  ahead, ``--render ahead``), under each scenario:
  ``held`` (a held chord of that many notes), ``churn`` (the chord, 4 note-ons and
  4 note-offs every 50 ms and a /prompt each second), ``fuzz`` (the chord and hostile OSC
  at the host's packet limit, 5,000 packets a second), ``burst`` (the chord and a
  1,000-note JACK MIDI burst every 2 s), ``hotplug`` (the chord, and a MIDI keyboard
  process that appears, holds three keys and closes its port, about once a second; the
  host follows it with ``--midi-in ps-hotplug``) and ``hotplug-kill`` (the same, the
  keyboard process killed instead: JACK then counts the dead client and the host's input
  connected to it as late, whatever the host does) and ``typing`` (the chord, and a line
  typed into the host's prompt line twice a second: prompts and commands) and
  ``midifuzz`` (the chord, and random and malformed JACK MIDI at 10,000 events a second:
  random bytes, SysEx that never ends, stray data, undefined status bytes, notes and
  controllers; then pedals up and all notes off, and the time until no voice sounds).

For each phase it prints JACK's xruns from jackd's log: ``client`` (``JackEngine::XRun:
client = ... was not finished``, a client missed the cycle's deadline; ``host``: of them,
the host's own clients, ``control``: a silent client that runs beside the host in every
host phase, the control in the same window; a late client makes the clients after it in
the graph late too) and ``driver``
(``JackTimedDriver::Process XRun``: the server's own thread woke late, the machine's
doing), the hypervisor's steal in the same seconds, and for the host its own count of
blocks the render thread did not fill in time (``ring``) and its smallest headroom
(how far ahead of the device it stayed, ms). Target: the host has 0 client xruns and
0 ring underruns in every round where the silent client and pyo have 0.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pythonosc import osc_message, osc_message_builder  # noqa: E402

#: The bench's JACK server's name (PROMPTSYNTH_BENCH_SERVER: another, so that two benches
#: on one machine do not share one).
SERVER = os.environ.get("PROMPTSYNTH_BENCH_SERVER", "promptsynth-bench")
#: The host's JACK clients: the render process's audio, its MIDI ports (rtmidi).
HOST_CLIENTS = ("promptsynth",)
#: A silent client that runs beside the host in every host phase: the control measured
#: in the same window (it is Python on JACK's thread, like the "silent" phase's).
CONTROL = "silent-control"
SR = 48000
BLOCK = 128
PROMPTS = ["a warm nylon guitar", "a soft flute", "a bowed cello", "a glassy bell", "a dark bass"]

SILENT = """
import sys, time, sounddevice as sd
def cb(outdata, frames, t, status):
    outdata.fill(0)
with sd.OutputStream(samplerate=48000, blocksize=128, channels=2, dtype="float32", latency="low", callback=cb):
    print("ready", flush=True)
    sys.stdin.read()
"""

SILENT_BESIDE = """
import sys, jack
c = jack.Client("silent-control", no_start_server=True)
port = c.outports.register("out")
@c.set_process_callback
def process(frames):
    port.get_array().fill(0.0)
c.activate()
print("ready", flush=True)
sys.stdin.read()
c.deactivate()
c.close()
"""

KEYBOARD = """
import sys, mido
out = mido.Backend("mido.backends.rtmidi/UNIX_JACK", load=True).open_output(
    "ps-hotplug", virtual=True, client_name="ps-bench-kbd")
print("ready", flush=True)
for line in sys.stdin:
    for p in line.split():
        out.send(mido.Message("note_on", note=int(p), velocity=100))
    print("sent", flush=True)
out.close()  # end of input: the port goes away as a driver removes an unplugged device
"""

PYO = """
import sys, pyo
s = pyo.Server(sr=48000, nchnls=2, buffersize=128, duplex=0, audio="jack")
s.setVerbosity(0)
s.boot()
voices = []
for i in range(32):
    env = pyo.Adsr(attack=0.01, decay=0.5, sustain=0.7, release=0.3, dur=0, mul=0.02)
    fm = pyo.FM(carrier=440.0 * 2 ** ((36 + i - 69) / 12), ratio=2.0, index=3.0, mul=env).out()
    env.play()
    voices.append((env, fm))
s.start()
print("ready", flush=True)
sys.stdin.read()
s.stop()
"""


def osc(address: str, *args) -> bytes:
    b = osc_message_builder.OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


class Jack:
    """Our own jackd; every line of its log is kept with the phase running when it came."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.counts: dict[str, dict[str, int]] = {}
        #: Client xruns by the client that missed its deadline, over the whole run.
        self.who: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._pending_counts: dict = {}
        self.phase_start = time.monotonic()
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "-eL", "jackd", "-n", SERVER, "-d", "dummy", "-r", str(SR), "-p", str(BLOCK)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        env = dict(os.environ, JACK_DEFAULT_SERVER=SERVER)
        for _ in range(50):
            if subprocess.run(["jack_lsp"], env=env, capture_output=True).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("jackd did not start")

    def _read(self) -> None:
        last = 0.0
        for line in self.proc.stdout:
            now = time.monotonic()
            if self.phase is None or ("XRun" not in line and "xrun" not in line):
                continue
            with self._lock:
                c = self.counts.setdefault(self.phase, {"client": 0, "driver": 0})
                # Lines less than 1 ms apart belong to one late cycle (one event): a
                # late client makes those after it in the graph late too.
                if now - last > 0.001:
                    self._flush()
                if not self._pending:
                    self._pending_counts = c  # the phase the event began in
                last = now
                if "JackEngine::XRun" in line:
                    c["client"] += 1
                    m = re.search(r"client = (.+?) was not finished", line)
                    if m:
                        who = m.group(1)
                        self._pending.add(who)
                        self.who[who] = self.who.get(who, 0) + 1
                        if who.startswith(HOST_CLIENTS):
                            c["host"] = c.get("host", 0) + 1
                        elif who == CONTROL:
                            c["control"] = c.get("control", 0) + 1
                else:
                    c["driver"] += 1
                    self._pending.add("(driver)")
            if os.environ.get("BENCH_XRUN_TIMES"):
                print(f"    {now - self.phase_start:7.3f} s {self.phase}: {line.strip()}", flush=True)

    def flush(self) -> None:
        """Count the event in progress (at the end of a phase)."""
        with self._lock:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._event(self._pending_counts, self._pending)
            self._pending = set()

    @staticmethod
    def _event(c: dict, clients: set[str]) -> None:
        """Count one late cycle; "ours" when only the host's clients were late in it."""
        c["events"] = c.get("events", 0) + 1
        if clients and all(w.startswith(HOST_CLIENTS) for w in clients):
            c["ours"] = c.get("ours", 0) + 1

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def steal_ms() -> float:
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) * 1000.0 / os.sysconf("SC_CLK_TCK")


class Host:
    """`promptsynth play` on the bench's JACK server, with an OSC socket to drive it."""

    def __init__(self, voices: int, latency: str, use_model: bool, env: dict, extra: tuple[str, ...] = ()) -> None:
        self.bank = tempfile.mkdtemp(prefix="ps-bench-bank-")
        # "cycle": rendered in JACK's cycle; else rendered ahead, by that --latency.
        timing = ["--render", "cycle"] if latency == "cycle" else ["--render", "ahead", "--latency", latency]
        cmd = [sys.executable, "-m", "server", "play", "--osc-port", "0", "--voices", str(voices),
               *timing, "--midi-virtual", "bench", "--midi-in", "ps-hotplug",
               "--bank", self.bank, *extra]
        if not use_model:
            cmd.append("--no-model")
        # Its stdin is a terminal (a pseudo-terminal): the prompt line runs, as for a
        # musician at a keyboard; the "typing" scenario types into it.
        import pty

        self.tty, slave = pty.openpty()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=dict(env, PYTHONUNBUFFERED="1"))
        os.close(slave)
        line = self.proc.stdout.readline()
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        threading.Thread(target=self._drain_tty, daemon=True).start()
        m = re.search(r"osc [\d.]+:(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"host did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.ready_line = line.strip()
        self.target = ("127.0.0.1", int(m.group(1)))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)

    def _drain_tty(self) -> None:
        try:
            while os.read(self.tty, 65536):
                pass
        except OSError:
            pass

    def type(self, line: str) -> None:
        os.write(self.tty, (line + "\n").encode())

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def status(self, watcher: bool = False) -> list:
        """/status, over a socket of its own for the watcher thread."""
        if watcher:
            if not hasattr(self, "wsock"):
                self.wsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.wsock.bind(("127.0.0.1", 0))
                self.wsock.settimeout(0.2)
            return self._ask_status(self.wsock, 2.0)
        return self._ask_status(self.sock)

    def _ask_status(self, sock: socket.socket, wait_s: float = 20.0) -> list:
        sock.sendto(osc("/status"), self.target)
        deadline = time.monotonic() + wait_s  # after a flood, behind what waits in the socket
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            if data.startswith(b"#bundle"):
                continue
            m = osc_message.OscMessage(data)
            if m.address == "/status.reply":
                return list(m.params)
        raise RuntimeError("no /status reply")

    def chord(self, n: int, patch: str | None = None) -> None:
        self.send(osc("/panic"))
        time.sleep(0.2)
        if patch:  # the bank's patch on every channel (spectra: every voice on tables)
            for ch in range(1, 17):
                self.send(osc("/patch/load", patch, ch))
            time.sleep(0.2)
        for i in range(n):
            self.send(osc("/note", 36 + i % 60, 90, 1 + i % 16))

    def close(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def host_midi_out(client: str):
    """An rtmidi JACK output named ``client``, connected to the host's virtual input."""
    import rtmidi

    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
    names = out.get_ports()
    match = [i for i, n in enumerate(names) if n.endswith("promptsynth:bench")]
    if not match:
        raise RuntimeError(f"host MIDI port not found among {names}")
    out.open_port(match[0])
    time.sleep(0.2)  # let JACK connect
    return out


def drive(host: Host, scenario: str, seconds: float, voices: int) -> None:
    """Traffic for one phase (the chord is already held)."""
    end = time.monotonic() + seconds
    rng = random.Random(1)
    if scenario == "held":
        time.sleep(seconds)
    elif scenario == "churn":
        next_prompt = time.monotonic()
        held: list[int] = []
        while time.monotonic() < end:
            for _ in range(4):
                p = rng.randrange(40, 100)
                host.send(osc("/note", p, rng.randrange(40, 128), 16))
                held.append(p)
            while len(held) > 4:
                host.send(osc("/note/off", held.pop(0), 16))
            if time.monotonic() >= next_prompt:
                host.send(osc("/prompt", rng.choice(PROMPTS), 15, rng.randrange(100)))
                next_prompt += 1.0
            time.sleep(0.05)
    elif scenario == "fuzz":
        from tests.server.oscfuzz import raw_cases

        cases = [d for d, _ in raw_cases(2000)]
        # A socket of its own: the /fail replies it earns are not read.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        i = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            for _ in range(50):  # 50 packets per 10 ms: 5,000 a second, the host's limit
                sock.sendto(cases[i % len(cases)], host.target)
                i += 1
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t0)))
        sock.close()
    elif scenario == "typing":
        # A musician typing into the prompt line: a new prompt or a command twice a second.
        lines = [":status", "a bright bell", ":channel 2", "a warm pad", ":list", ":channel 1"]
        i = 0
        while time.monotonic() < end:
            host.type(lines[i % len(lines)] + (f" {i}" if not lines[i % len(lines)].startswith(":") else ""))
            i += 1
            time.sleep(0.5)
    elif scenario in ("hotplug", "hotplug-kill"):
        # A keyboard plugged in, three keys held, unplugged (its port closed, or the
        # process killed), again and again.
        while time.monotonic() < end:
            kbd = subprocess.Popen([sys.executable, "-c", KEYBOARD], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)
            kbd.stdout.readline()
            time.sleep(0.2)  # the host connects it within 50 ms
            kbd.stdin.write("60 64 67\n")
            kbd.stdin.flush()
            kbd.stdout.readline()
            time.sleep(0.3)
            if scenario == "hotplug":
                kbd.stdin.close()
            else:
                kbd.kill()
            kbd.wait()
            time.sleep(0.2)
    elif scenario == "midifuzz":
        midi_fuzz(host, end, rng)
    elif scenario == "burst":
        out = host_midi_out("ps-bench")
        notes = [(0x90 | (i // 128) % 16, i % 128) for i in range(1000)]
        while time.monotonic() < end:
            for st, p in notes:
                out.send_message([st, p, 100])
            time.sleep(1.0)
            for st, p in notes:
                out.send_message([st & 0x0F | 0x80, p, 0])
            time.sleep(1.0)
        out.close_port()
        out.delete()  # the JACK client itself, or it lingers in the graph


#: Malformed MIDI the fuzz mixes in (each one JACK event), beside random bytes.
MALFORMED = [
    [0xF0, 0x7E, 0x01],  # a SysEx that never ends
    [0xF0, 0x43, 0x10, 0x90, 60],  # a SysEx cut by a status byte, and a cut note-on
    [0xF7], [60, 100, 62],  # an F7 with no SysEx, data bytes with no status
    [0xF4], [0xF5, 1], [0xF9], [0xFD],  # undefined status bytes
    [0x90, 0xF8, 61],  # a real-time byte inside a note-on, which the next event cuts
    [0xB0, 7],  # a cut control change
    [0xF0, *range(1, 128), *range(1, 128), 0xF7],  # a whole SysEx, 256 bytes
]


def midi_fuzz(host: Host, end: float, rng: random.Random, per_s: int = 10_000) -> None:
    """Random and malformed MIDI at ``per_s`` events a second into the host's JACK MIDI
    input (rtmidi's JACK output: C on JACK's thread, so the sender is no late Python
    client; it sends no empty event and nothing over 3 bytes but a SysEx, so longer
    random events go as F0 + bytes: a SysEx cut by the status bytes in it; the exact
    malformed events are tests/server/test_midi_malformed.py's), then pedals up and all
    notes off on every channel; prints how long the voices took to stop and the host's
    midi_errors."""
    out = host_midi_out("ps-bench-fuzz")
    errors0 = host.status()[10]
    sent = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        for _ in range(per_s // 100):  # every 10 ms
            r = rng.random()
            if r < 0.4:
                m = [rng.randrange(256) for _ in range(rng.randrange(1, 12))]
                if len(m) > 3 and m[0] != 0xF0:
                    m.insert(0, 0xF0)  # rtmidi sends nothing longer unless it is a SysEx
            elif r < 0.6:
                m = list(rng.choice(MALFORMED))
            else:  # well-formed channel messages, notes mostly
                st = rng.choice((0x80, 0x90, 0x90, 0x90, 0xB0, 0xE0, 0xD0, 0xA0)) | rng.randrange(16)
                m = [st, rng.randrange(128)] + ([] if st & 0xF0 == 0xD0 else [rng.randrange(128)])
            out.send_message(m)
            sent += 1
        time.sleep(max(0.0, 0.01 - (time.monotonic() - t0)))
    for ch in range(16):
        for control in (64, 66, 123):
            out.send_message([0xB0 | ch, control, 0])
    t_off = time.monotonic()
    voices = None
    while time.monotonic() - t_off < 10.0:
        voices = host.status()[0]
        if voices == 0:
            break
        time.sleep(0.01)
    silent_s = time.monotonic() - t_off
    errors = host.status()[10] - errors0
    # The fuzz's program changes choose the bank's patches: their longest release is
    # how long a released voice may rightly sound.
    import numpy as np

    from engine.schema import TIMBRE_INDEX
    from patches import Bank

    bank = Bank(Path(host.bank), factory=True)
    release = max([0.3] + [float(np.max(bank.program(n).table.values[..., TIMBRE_INDEX["release_s"]]))
                           for n in bank.programs()])
    print(f"  midifuzz: {sent} events, {errors} counted in midi_errors; {voices} voices "
          f"{silent_s:.2f} s after pedals up and all notes off (longest release of the bank's "
          f"patches {release:.2f} s); host {'alive' if host.proc.poll() is None else 'DEAD'}", flush=True)
    out.close_port()
    out.delete()


def run_client(code: str, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:  # pyo prints a banner first
        if line.startswith("ready"):
            return proc
    proc.kill()
    raise RuntimeError(f"client did not start: {proc.stderr.read()[-1500:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds per phase")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--voices", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--latency", nargs="+", default=["low"],
                    help="how the host renders: 'cycle' (--render cycle, in JACK's cycle), or a "
                    "--latency of --render ahead ('low', 'high', seconds)")
    ap.add_argument("--scenarios", nargs="+", default=["held", "churn", "fuzz", "burst", "hotplug", "typing", "midifuzz"])
    ap.add_argument("--no-pyo", action="store_true")
    ap.add_argument("--patch", help="a bank patch every channel plays (e.g. 'church organ': onset "
                    "and held spectra, every voice on the harmonic carrier); default: the sine")
    ap.add_argument("--no-model", action="store_true", help="churn sends no prompts")
    ap.add_argument("--effects", action="store_true",
                    help="the host with every channel's reverb, chorus and delay sends at 0.5")
    ap.add_argument("--no-controls", action="store_true", help="skip the silent client and pyo")
    args = ap.parse_args()
    try:
        import pyo  # noqa: F401

        have_pyo = not args.no_pyo
    except ImportError:
        have_pyo = False
    env = dict(os.environ, JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1", PYO_GUI_WX="0")
    os.environ.update(JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1")
    jack = Jack()
    rows = []

    def phase(name: str, rnd: int, body, host: Host | None = None) -> None:
        key = f"{name}#{rnd}"
        s0 = host.status() if host else None
        st0 = steal_ms()
        jack.phase_start = time.monotonic()
        jack.phase = key
        headroom = []
        if host:
            # /status gives the last second's smallest headroom: ask every half second.
            done = threading.Event()

            def watch():
                while not done.wait(0.5):
                    try:
                        headroom.append(host.status(watcher=True)[12])
                    except RuntimeError:  # lost in a flood (the kernel drops beyond it)
                        pass

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
        body()
        if host:
            done.set()
            watcher.join()
        time.sleep(0.05)  # the log's last lines of the phase
        jack.flush()
        jack.phase = None
        st1 = steal_ms()
        row = {"phase": name, "round": rnd, "host": 0, "control": 0, "events": 0, "ours": 0,
               **jack.counts.get(key, {"client": 0, "driver": 0}), "steal_ms": st1 - st0}
        if host:
            s1 = host.status()
            row["ring"] = s1[13] - s0[13]
            row["device"] = s1[14] - s0[14]
            row["headroom_ms"] = min(headroom + [s1[12]])
        rows.append(row)
        print(_fmt(row), flush=True)

    print(f"{'phase':<28}{'round':>6}{'events':>7}{'ours':>5}{'client':>8}{'host':>6}{'control':>8}{'driver':>8}{'steal_ms':>10}"
          f"{'ring':>6}{'device':>8}{'headroom_ms':>13}")
    try:
        for rnd in range(1, args.rounds + 1):
            controls = [("silent", SILENT)] + ([("pyo-32", PYO)] if have_pyo else [])
            if args.no_controls:
                controls = []
            for name, code in controls:
                proc = run_client(code, env)
                time.sleep(0.5)
                phase(name, rnd, lambda: time.sleep(args.seconds))
                proc.stdin.close()
                proc.wait(timeout=10)
            for latency in args.latency:
                for voices in args.voices:
                    # The control joins the graph before the host: nothing changes the
                    # graph during the host's phases but what the phase does.
                    beside = run_client(SILENT_BESIDE, env)
                    fx = ("--reverb-send", "0.5", "--chorus-send", "0.5", "--delay-send", "0.5") if args.effects else ()
                    host = Host(voices, latency, not args.no_model, env, fx)
                    try:
                        time.sleep(1.0)
                        for sc in args.scenarios:
                            host.chord(voices, args.patch)
                            time.sleep(0.3)
                            phase(f"host-{voices}-{latency}-{sc}", rnd,
                                  lambda sc=sc, host=host, voices=voices: drive(host, sc, args.seconds, voices), host)
                    finally:
                        host.close()
                        beside.stdin.close()
                        beside.wait(timeout=10)
    finally:
        jack.close()
    print("\nclient xruns by client:", jack.who or "none")
    print("\ntotals over rounds: late cycles (events), those where only the host's clients were late "
          "(ours); client xruns (the host's clients', the control's) / driver xruns / "
          "ring underruns; steal ms; rounds with no xrun at all")
    names = dict.fromkeys(r["phase"] for r in rows)
    for n in names:
        rs = [r for r in rows if r["phase"] == n]
        ring = sum(r.get("ring", 0) for r in rs)
        clean = sum(1 for r in rs if r["client"] == 0 and r["driver"] == 0 and r.get("ring", 0) == 0)
        print(f"  {n:<28} events {sum(r['events'] for r in rs):>3}, ours {sum(r['ours'] for r in rs):>3};  "
              f"{sum(r['client'] for r in rs):>4} ({sum(r['host'] for r in rs)}, "
              f"{sum(r['control'] for r in rs)}) / {sum(r['driver'] for r in rs):>3} / "
              f"{ring if 'ring' in rs[0] else '-':>3};  steal {sum(r['steal_ms'] for r in rs):>4.0f};  "
              f"clean {clean}/{len(rs)}")
    return 0


def _fmt(r: dict) -> str:
    ring = f"{r['ring']:>6}{r['device']:>8}{r['headroom_ms']:>13.2f}" if "ring" in r else f"{'-':>6}{'-':>8}{'-':>13}"
    return (f"{r['phase']:<28}{r['round']:>6}{r['events']:>7}{r['ours']:>5}{r['client']:>8}{r['host']:>6}{r['control']:>8}{r['driver']:>8}"
            f"{r['steal_ms']:>10.0f}{ring}")


if __name__ == "__main__":
    sys.exit(main())
