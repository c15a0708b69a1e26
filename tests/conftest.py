"""Shared test fixtures: is a JACK server running?"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

# The CI gate: counts the tests that ran by kind, and fails a CI run over a forbidden
# skip (tests/ci_gate.py).
from tests.ci_gate import pytest_configure  # noqa: F401


def jack_running() -> bool:
    """True when a JACK server answers (CI starts `jackd -d dummy -r 48000 -p 128`)."""
    if shutil.which("jack_lsp") is None:
        return False
    try:
        r = subprocess.run(["jack_lsp"], capture_output=True, timeout=5, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and "system:playback" in r.stdout


JACK_REASON = "needs a running JACK server (start: jackd -d dummy -r 48000 -p 128)"


@pytest.fixture(scope="session")
def jack() -> None:
    """Skip the test unless a JACK server runs."""
    if not jack_running():
        pytest.skip(JACK_REASON)


def cpu_steal_s() -> float:
    """CPU time the hypervisor has taken from this virtual machine so far, in seconds
    (/proc/stat's steal column; 0.0 where there is none). Printed beside failures."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def steal_resolution_s() -> float:
    """The most CPU time the hypervisor can steal without /proc/stat showing it: one tick
    per CPU (the summed counter moves in whole ticks per CPU)."""
    return (os.cpu_count() or 1) / os.sysconf("SC_CLK_TCK")


def _stall_s() -> float:
    from engine.device import parse_latency

    return parse_latency("low", 128, 48000) - 0.001


#: A CPU stall the default render-ahead (2 blocks, 5.3 ms at 128 frames) cannot absorb,
#: with a render of up to ~1 ms: 4.3 ms. Shorter stalls are not counted: they cannot
#: make the host click, so they must not excuse a click either.
STALL_S = _stall_s()

_STALL_PROBE = r"""
import os, select, sys, time
cpu, threshold, priority = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
os.sched_setaffinity(0, {cpu})
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
except OSError as exc:
    print(f"refused {exc}", flush=True)
    sys.exit(0)
print("ready", flush=True)
last = time.monotonic()
while True:
    ready, _, _ = select.select([sys.stdin], [], [], 0.0005)
    now = time.monotonic()
    if ready and not sys.stdin.readline():
        break
    if now - last > threshold:
        print(f"{now:.6f} {now - last:.6f}", flush=True)
    last = now
"""


def probe_priority() -> int:
    """The stall probes' SCHED_FIFO priority: one above the render loop's, so that a
    render running long cannot hold a probe off. In JACK's cycle the render loop takes its
    JACK client's priority (engine.realtime.JACK_CLIENT_PRIORITY, 5), so the probes sit
    above JACK's client threads (they wake for microseconds) and below its server (10),
    which they must not delay."""
    from engine.realtime import JACK_CLIENT_PRIORITY, RENDER_PRIORITY

    return max(RENDER_PRIORITY, JACK_CLIENT_PRIORITY) + 1


class XrunControl:
    """The control a zero-underrun check is judged against, measured in the same window
    as the host under test, from things the host cannot make happen:

    - JACK's own xruns, counted by a silent JACK client in the test process: JACK tells
      every client of every xrun in its graph, its own late cycles included; the host's
      render loop cannot cause one (it writes a ring that a C callback reads; a ring run
      dry is silence, not a late cycle);
    - stalls of each CPU: one small process per CPU, pinned to it at SCHED_FIFO priority
      :func:`probe_priority` (above the render loop's), wakes every 0.5 ms and notes every
      gap longer than :data:`STALL_S`. Only what outranks it can stall it: the hypervisor
      taking the CPU away (on this virtual machine, seen: up to 10 ms, a few times a
      minute), the kernel, JACK's threads. A render loop that runs long, or any other
      work of the host's, is preempted by the probe and never counts.

    Where SCHED_FIFO is refused the probes cannot tell the machine's stalls from ordinary
    load: in CI (tests/ci_gate.py's ``gate_on``) that is an error; elsewhere stalls are
    not counted at all (``note`` says so), so the check excuses nothing but JACK's xruns.

    ``count``: everything the control saw that would make any audio client click.
    """

    def __init__(self) -> None:
        import subprocess
        import sys
        import threading

        import jack

        from tests.ci_gate import gate_on

        self.xruns = 0
        #: When each JACK xrun was reported (monotonic s).
        self.xrun_times: list[float] = []
        #: Each CPU stall: (when it ended, how long it lasted), monotonic s and s.
        self.stalls: list[tuple[float, float]] = []
        priority = probe_priority()
        self.note = f"JACK xruns and CPU stalls seen at SCHED_FIFO {priority}"
        self._probes = []
        for cpu in sorted(os.sched_getaffinity(0)):
            proc = subprocess.Popen(
                [sys.executable, "-c", _STALL_PROBE, str(cpu), str(STALL_S), str(priority)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            first = proc.stdout.readline().strip()
            if first != "ready":
                proc.wait(timeout=5)
                self._close_probes()
                why = f"the stall probes' SCHED_FIFO {priority} was refused ({first})"
                if gate_on():
                    raise RuntimeError(f"{why}: in CI the control must run at real-time "
                                       "priority (run as root, or give rtprio in limits.conf)")
                self.note = f"JACK xruns only: {why}, so CPU stalls are not counted"
                break
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()
            self._probes.append(proc)
        self._client = jack.Client("promptsynth-test-control", no_start_server=True)
        self._client.set_xrun_callback(self._xrun)
        self._client.activate()

    def _xrun(self, delay_usecs: float) -> None:
        self.xrun_times.append(time.monotonic())
        self.xruns += 1

    def _read(self, proc) -> None:
        for line in proc.stdout:
            t, gap = (float(x) for x in line.split())
            self.stalls.append((t, gap))

    @property
    def count(self) -> int:
        return self.xruns + len(self.stalls)

    def count_between(self, t0: float, t1: float) -> int:
        """What the control saw between monotonic times ``t0`` and ``t1``: JACK xruns
        reported then, and CPU stalls that lasted into that span."""
        return (sum(1 for t in list(self.xrun_times) if t0 <= t <= t1)
                + sum(1 for end, gap in list(self.stalls) if end >= t0 and end - gap <= t1))

    def _close_probes(self) -> None:
        for proc in self._probes:
            proc.stdin.close()
            proc.wait(timeout=5)
        self._probes = []

    def close(self) -> None:
        self._client.deactivate()
        self._client.close()
        self._close_probes()


@pytest.fixture
def xruns(jack) -> XrunControl:
    """A running :class:`XrunControl` (needs a JACK server)."""
    control = XrunControl()
    yield control
    control.close()


def assert_no_underruns(underruns: int, control_xruns: int, what: str) -> None:
    """The host's own underruns in a window (blocks its render side filled too late: a
    click) are none, unless the control (:class:`XrunControl`) saw JACK xruns or CPU
    stalls in the same window, and never more than it saw. The control counts only what
    the host cannot cause: a stall of the machine clicks any client; one of ours alone
    is our defect. ``tests/engine/test_live.py`` holds this check to failing on a render
    that overruns."""
    assert underruns <= control_xruns, (
        f"{underruns} underruns {what}, while the control saw {control_xruns} JACK xruns "
        f"or CPU stalls in the same window (hypervisor steal so far: "
        f"{cpu_steal_s() * 1000:.0f} ms)"
    )


class PortWatch:
    """A JACK client in the test process whose input is connected to the JACK output
    ``port``: it notes the JACK frame time (JACK's own clock) of the first non-zero
    sample that reaches it after :meth:`arm`. What a client of the host would receive,
    measured where the host's part of the path ends."""

    def __init__(self, port: str) -> None:
        import jack

        self.onset_frame: int | None = None
        self._armed = False
        self._client = jack.Client("promptsynth-test-watch", no_start_server=True)
        self._in = self._client.inports.register("in")
        self._client.set_process_callback(self._process)
        self._client.activate()
        self._client.connect(port, self._in)

    def _process(self, frames: int) -> None:
        if self._armed and self.onset_frame is None:
            import numpy as np

            nz = np.flatnonzero(self._in.get_array())
            if nz.size:
                self.onset_frame = self._client.last_frame_time + int(nz[0])

    def arm(self) -> int:
        """Watch for the next onset; JACK's frame time now."""
        self.onset_frame = None
        self._armed = True
        return self._client.frame_time

    def now(self) -> int:
        """JACK's frame time now."""
        return self._client.frame_time

    def disarm(self) -> None:
        self._armed = False

    def wait(self, timeout_s: float = 1.0) -> int:
        deadline = time.monotonic() + timeout_s
        while self.onset_frame is None:
            assert time.monotonic() < deadline, f"no sound reached the watch in {timeout_s} s"
            time.sleep(0.002)
        self._armed = False
        return self.onset_frame

    def close(self) -> None:
        self._client.deactivate()
        self._client.close()


#: A sine with no attack: its first non-zero sample is the one after the note's frame.
SINE_PATCH = {"attack_s": 0.0, "sustain": 1.0, "mod_index": 0.0, "release_s": 0.01}


#: Most JACK frames between the two readings of JACK's clock around ``frame_at`` in
#: :func:`measure_note_latency_ms` (0.1 ms at 48 kHz; they are microseconds apart).
BRACKET_FRAMES = 5


def measure_note_latency_ms(out, engine, port: str, notes: int = 9) -> list[float]:
    """From a note's arrival (``out.frame_at(now)``, as the host places an event that
    arrives now) to its first sample on the JACK output ``port``, in JACK's frame clock,
    for ``notes`` notes of :data:`SINE_PATCH` (channel 0 must hold it), in ms."""
    sr = engine.sample_rate
    watch = PortWatch(port)
    try:
        result = []
        for _ in range(3 * notes):
            if len(result) == notes:
                break
            jack_now = watch.arm()
            frame = out.frame_at(time.monotonic())
            if (watch.now() - jack_now) & 0xFFFFFFFF > BRACKET_FRAMES:
                # This thread was held off between the two clock readings (a busy
                # machine): the note would measure the test, not the host. Again.
                watch.disarm()
                continue
            engine.note_on(0, 69, 127, frame)
            onset = watch.wait()
            engine.note_off(0, 69, frame + sr // 50)
            result.append((onset - 1 - jack_now) / sr * 1000.0)
            time.sleep(0.06)  # the note and its release, then silence
        assert len(result) >= notes // 2, f"only {len(result)} of {3 * notes} tries were not held off"
        return result
    finally:
        watch.close()


def assert_within(check, within_s: float, control: XrunControl, since: int, what: str,
                  stalled_s: float = 2.0):
    """Poll ``check()`` until it returns a true value (which is returned) within
    ``within_s`` of this call. Later than that is a failure, unless the control counted a
    JACK xrun or a CPU stall since ``since`` (its ``count`` when the awaited event was
    sent): a stalled machine delays every client, so then up to ``stalled_s`` is allowed."""
    t0 = time.monotonic()
    while True:
        value = check()
        if value:
            return value
        waited = time.monotonic() - t0
        if waited > within_s and (control.count == since or waited > stalled_s):
            stalls = control.count - since
            raise AssertionError(
                f"{what}: not within {within_s * 1000:.0f} ms (waited {waited * 1000:.0f} ms; "
                f"the control saw {stalls} JACK xruns or CPU stalls meanwhile, hypervisor "
                f"steal so far: {cpu_steal_s() * 1000:.0f} ms)"
            )
        time.sleep(0.005)


def child_processes(ppid: int) -> list[tuple[int, str]]:
    """The running children of process ``ppid``: (pid, command line) each."""
    r = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(ppid)],
                       capture_output=True, text=True, check=False)
    out = []
    for line in r.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        out.append((int(pid), args))
    return out


@pytest.fixture(scope="module", autouse=True)
def no_host_outlives_its_module():
    """A host left playing after its tests' module renders on at real-time pace and takes
    CPU from the next modules' hosts (an underrun in a later, unrelated test). Each
    module's hosts are stopped by the module's own fixtures; one still running here is
    killed, and the module fails with its command line."""
    yield
    left = [(pid, args) for pid, args in child_processes(os.getpid())
            if "-m server play" in args or "-m engine.live" in args]
    for pid, _ in left:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    assert not left, "a host outlived its tests' module (killed): " + "; ".join(a for _, a in left)
