"""Shared test fixtures: is a JACK server running?"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


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


class XrunControl:
    """The control a zero-underrun check is judged against: a silent JACK client in the
    test process that counts JACK's own xruns. JACK tells every client of every xrun in
    its graph, its own late cycles included, so when the machine stalls (the hypervisor
    takes the CPU, another process hogs it) this counts it, in the same window as the
    host under test. A C client that does nothing but listen cannot cause one itself.
    """

    def __init__(self) -> None:
        import jack

        self.count = 0
        self._client = jack.Client("promptsynth-test-control", no_start_server=True)
        self._client.set_xrun_callback(self._xrun)
        self._client.activate()

    def _xrun(self, delay_usecs: float) -> None:
        self.count += 1

    def close(self) -> None:
        self._client.deactivate()
        self._client.close()


@pytest.fixture
def xruns(jack) -> XrunControl:
    """A running :class:`XrunControl` (needs a JACK server)."""
    control = XrunControl()
    yield control
    control.close()


def assert_no_underruns(underruns: int, control_xruns: int, what: str) -> None:
    """The host's own underruns in a window (blocks its render side filled too late: a
    click) are none, unless JACK itself missed cycles in the same window (the control),
    and never more than it did. A stall of the machine clicks every client; one of ours
    alone is our defect."""
    assert underruns <= control_xruns, (
        f"{underruns} underruns {what}, while JACK itself had {control_xruns} xruns in "
        f"the same window (hypervisor steal so far: {cpu_steal_s() * 1000:.0f} ms)"
    )
