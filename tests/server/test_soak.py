"""The soak (benchmarks/soak.py) for 60 s, as CI runs it: three OSC clients and a MIDI
port playing, prompting and morphing at once; no underrun, no stuck voice at the end.
(Memory growth is checked by the 10-minute run, not here: a minute is too short.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import assert_no_underruns
from tests.server.conftest import ROOT

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def test_soak_60_s(jack, checkpoint, xruns):
    x0 = xruns.count
    r = subprocess.run(
        [
            sys.executable,
            "benchmarks/soak.py",
            "--seconds",
            "60",
            "--model",
            str(checkpoint),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    assert lines, r.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result["messages"] > 5000 and result["prompts_done"] > 0, result
    assert result["internal_errors"] == 0, result
    assert result["stuck_voices"] == 0, result
    # The soak overloads the machine on purpose: three OSC clients and a MIDI client,
    # the host, the model worker and jackd on 2 cores. The render process must still fill
    # every block in time, unless JACK itself missed cycles in the same minute.
    assert_no_underruns(result["ring_underruns"], xruns.count - x0, f"in the soak: {result}")
    assert result["exit_status"] == 0, result
