"""Shared test fixtures: is a JACK server running?"""

from __future__ import annotations

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
