"""Key to sound beside FluidSynth: one JACK graph, one probe, both synths, one run.

    python benchmarks/bench_key_to_sound.py [--notes 20] [--render ahead|cycle] [--latency low] [--soundfont F]

Starts its own JACK server (``jackd -n promptsynth-k2s -d dummy -r 48000 -p 128``, as
`.ci/run` starts one), then FluidSynth (``-a jack -m jack``, FluidR3_GM, the peer a
keyboard player would otherwise use; apt ``fluidsynth fluid-soundfont-gm``) and
`promptsynth play --no-model` (attack 0) on it. A probe JACK client
(tests/server/jackprobe.py) writes a MIDI note-on at the first frame of a cycle into a
synth's MIDI input and finds the first sample above 1e-3 in that synth's output, on
JACK's frame clock: key to sound, in frames, through the same feedback cycle for both.
Notes alternate between the two synths, so both are measured in the same window.

For the host it also measures OSC ``/note`` (unbundled, over UDP): from JACK's frame
estimate read just before the packet is sent to the first sample above 1e-3.

Prints median, range and jitter (max - min) in ms for each; then each synth's CPU (a
share of one core) while ready with no note sounding, side by side.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = "promptsynth-k2s"
SR = 48000
BLOCK = 128
SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def osc(address: str, *args) -> bytes:
    from pythonosc import osc_message_builder

    b = osc_message_builder.OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def wait_port(client, pattern: str, midi: bool, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = client.get_ports(pattern, is_midi=midi, is_audio=not midi)
        if ports:
            return ports[0].name
        time.sleep(0.1)
    raise RuntimeError(f"no JACK port matching {pattern!r}")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its children alive now (the
    host's render process and model worker)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def idle_cpu(procs: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's share of one core over ``seconds`` with no note sounding."""
    before = {k: cpu_s(p) for k, p in procs.items()}
    time.sleep(seconds)
    return {k: (cpu_s(p) - before[k]) / seconds for k, p in procs.items()}


def summary(frames: list[int]) -> str:
    ms = [f * 1000.0 / SR for f in frames]
    return (f"median {statistics.median(ms):5.2f} ms, range {min(ms):5.2f}-{max(ms):5.2f} ms, "
            f"jitter {max(ms) - min(ms):4.2f} ms  (n={len(ms)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=20)
    ap.add_argument("--latency", default="low", help="the host's --latency (with --render ahead)")
    ap.add_argument("--render", default="ahead", choices=("cycle", "ahead"), help="the host's --render")
    ap.add_argument("--soundfont", default=SOUNDFONT)
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="how long the idle CPU is measured")
    args = ap.parse_args()

    import jack

    from tests.server.jackprobe import JackProbe

    env = dict(os.environ, JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1", PYTHONUNBUFFERED="1")
    os.environ.update(JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1")
    procs: list[subprocess.Popen] = []
    jackd = subprocess.Popen(["jackd", "-n", SERVER, "-d", "dummy", "-r", str(SR), "-p", str(BLOCK)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probes: list[JackProbe] = []
    try:
        time.sleep(1.5)
        fluid = subprocess.Popen(
            ["fluidsynth", "-a", "jack", "-m", "jack", "-r", str(SR), "-g", "1.0",
             "-o", "audio.jack.id=fs-audio", "-o", "midi.jack.id=fs-midi",
             "-o", "audio.jack.autoconnect=0", args.soundfont],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        procs.append(fluid)
        bank = tempfile.mkdtemp(prefix="ps-k2s-bank-")
        host = subprocess.Popen(
            [sys.executable, "-m", "server", "play", "--no-model", "--osc-port", "0", "--midi-virtual", "k2s",
             "--latency", args.latency, "--render", args.render, "--bank", bank, "--no-prompt-line"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        procs.append(host)
        for line in host.stdout:
            if line.startswith("promptsynth ready"):
                break
        else:
            raise RuntimeError("host did not start")
        port = int(line.split("osc ")[1].split()[0].split(":")[1])
        print(line.strip())
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(osc("/param/attack_s", 0.0, 1), ("127.0.0.1", port))
        sock.sendto(osc("/param/release_s", 0.05, 1), ("127.0.0.1", port))

        look = jack.Client("ps-k2s-look", no_start_server=True)
        fs_midi = wait_port(look, "fs-midi", midi=True)
        # One JACK client for both drivers when both are JACK: named after midi.jack.id.
        fs_audio = wait_port(look, "^fs-(audio|midi):left$", midi=False)
        ps_midi = wait_port(look, ":k2s$", midi=True)
        ps_audio = wait_port(look, "promptsynth-audio.*:out_0$", midi=False)
        look.close()
        fs = JackProbe(fs_midi, fs_audio, name="k2s-probe-fluidsynth")
        ps = JackProbe(ps_midi, ps_audio, name="k2s-probe-promptsynth")
        probes += [fs, ps]
        time.sleep(0.5)

        on, off = bytes([0x90, 60, 100]), bytes([0x80, 60, 0])
        results: dict[str, list[int]] = {"fluidsynth MIDI": [], "promptsynth MIDI": [], "promptsynth OSC /note": []}
        for probe in (fs, ps):  # one unmeasured note each: caches, first allocations
            probe.key_to_sound([on])
            probe.send([off])
            time.sleep(0.3)
        for _ in range(args.notes):
            for name, probe in (("fluidsynth MIDI", fs), ("promptsynth MIDI", ps)):
                results[name].append(probe.key_to_sound([on]))
                time.sleep(0.15)
                probe.send([off])
                time.sleep(0.35)
            results["promptsynth OSC /note"].append(
                ps.key_to_sound_by(lambda: sock.sendto(osc("/note", 60, 100, 1), ("127.0.0.1", port))))
            time.sleep(0.15)
            sock.sendto(osc("/note/off", 60, 1), ("127.0.0.1", port))
            time.sleep(0.35)
        print(f"\nkey to sound, one JACK graph ({SR} Hz, {BLOCK} frames), {args.notes} notes each, "
              f"first sample above 1e-3 (host --render {args.render} --latency {args.latency}):")
        for name, frames in results.items():
            print(f"  {name:<24} {summary(frames)}")
        med = {k: statistics.median(v) * 1000.0 / SR for k, v in results.items()}
        print(f"\n  promptsynth MIDI - fluidsynth MIDI: {med['promptsynth MIDI'] - med['fluidsynth MIDI']:+.2f} ms (median)")
        time.sleep(1.0)  # every release over
        idle = idle_cpu({"fluidsynth": fluid.pid, "promptsynth (host, render process, model worker)": host.pid},
                        args.idle_seconds)
        print(f"\nready, no note sounding, {args.idle_seconds:g} s, share of one core (user + system):")
        for name, share in idle.items():
            print(f"  {name:<50} {100 * share:5.1f} %")
        return 0
    finally:
        for p in probes:
            p.close()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(2)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        jackd.terminate()
        jackd.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
