"""Shared test fixtures: is a JACK server running?"""

from __future__ import annotations

import math
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
    (/proc/stat's steal column; 0.0 where there is none)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def assert_no_underruns(
    underruns: int, stolen_s: float, what: str, period_s: float = 128 / 48000
) -> None:
    """Zero underruns, save those that CPU stolen by the hypervisor explains.

    On a shared virtual machine the host can take the CPU away from the whole guest for
    milliseconds at a time; no process inside can meet a deadline then (measured here:
    underruns track /proc/stat's steal column, and none come with zero steal). So each
    block period of stolen time may excuse one underrun; with no steal, none is excused.
    """
    allowed = math.ceil(stolen_s / period_s - 1e-9) if stolen_s > 0 else 0
    assert underruns <= allowed, (
        f"{underruns} underruns {what}; the hypervisor took {stolen_s * 1000:.0f} ms of CPU "
        f"in that time, which explains at most {allowed}"
    )
