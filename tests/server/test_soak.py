"""The soak (benchmarks/soak.py) for 60 s, as CI runs it: three OSC clients and a MIDI
port playing, prompting and morphing at once; no underrun, no stuck voice at the end.
(Memory growth is checked by the 10-minute run, not here: a minute is too short.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import assert_no_underruns, cpu_steal_s
from tests.server.conftest import ROOT

pytestmark = [pytest.mark.jack, pytest.mark.slow]


def test_soak_60_s(jack, checkpoint):
    steal0 = cpu_steal_s()
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
    # The soak overloads the machine on purpose: the test process's three clients, the
    # host, the model worker and jackd on 2 cores. A Python callback waits for the GIL,
    # which the host's OSC thread holds between messages; when the other processes then
    # take that thread's core, the callback misses its block (seen: up to 19 in a minute,
    # with no steal). One block in a thousand (0.1%) is tolerated here; the engine being
    # too slow would miss most blocks. The 10-minute run reports the real figure.
    blocks = int(60 * 48000 / 128)
    assert_no_underruns(
        result["underruns"],
        cpu_steal_s() - steal0,
        f"in the soak: {result}",
        tolerated=blocks // 1000,
    )
    assert result["exit_status"] == 0, result
