"""`promptsynth play` flags: --patch, --bank, SIGTERM, and user errors (exit 2)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from engine import KeyTable
from tests.server.conftest import ROOT, HostProcess, OscClient


def play(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server", "play", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["--latency", "soon"], "--latency must be 'low', 'high' or seconds"),
        (["--no-model", "--prompt", "x"], "--prompt needs the model"),
        (["--prompt", "x", "--patch", "y"], "give --prompt or --patch, not both"),
        (
            ["--no-model", "--patch", "no-such-patch", "--bank", "/tmp/ps-empty-bank"],
            "--patch no-such-patch: no patch named",
        ),
        (["--osc-port", "70000"], "--osc-port must be in range 0..65535"),
        (["--no-model", "--bank-next-cc", "64"], "--bank-next-cc: CC 64 is the engine's sustain"),
        (["--no-model", "--bank-next-cc", "20", "--bank-prev-cc", "20"], "must differ, both are 20"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, words):
    r = play(*args)
    assert r.returncode == 2 and words in r.stderr, r.stderr


@pytest.mark.jack
def test_patch_file_is_the_first_patch_and_sigterm_exits_0(jack, tmp_path):
    from patches import Patch, save_patch

    path = save_patch(Patch("start", KeyTable.flat({"mod_ratio": 3.5, "attack_s": 0.2})), tmp_path / "start.json")
    h = HostProcess(["--no-model", "--patch", str(path), "--bank", str(tmp_path / "bank")])
    try:
        assert "model: unavailable" in h.ready_line
        c = OscClient(h.port)
        try:
            assert c.ask("/patch/save", "copy", reply="/patch/saved") == ["copy", 1]
        finally:
            c.close()
        saved = json.loads((tmp_path / "bank" / "copy.json").read_text())
        values = saved["keytable"]["values"]
        assert values["mod_ratio"] == [[3.5]] and values["attack_s"] == [[0.2]]
        # The port is taken while it runs: a second host says so and exits 2.
        r = play("--no-model", "--osc-port", str(h.port))
        assert r.returncode == 2 and "cannot listen for OSC" in r.stderr
    finally:
        assert h.stop(signal.SIGTERM) == 0


def test_a_signal_while_the_play_loop_holds_the_stop_lock_still_stops_it():
    """Ctrl-C lands between two bytecodes of the main thread, which may be inside the
    play loop's wait, holding its event's lock: the handler must take no lock (an
    ``Event.set`` there waited forever, and the host hung on Ctrl-C now and then).
    ``Event._cond`` is CPython's lock inside the event: held here as the loop holds it."""
    import threading

    from server.commands.play import StopRequest

    stop = StopRequest()
    done = threading.Event()

    def signal_inside_wait():
        with stop.event._cond:
            stop.on_signal(signal.SIGINT, None)
        done.set()

    threading.Thread(target=signal_inside_wait, daemon=True).start()
    assert done.wait(5), "the signal handler blocked on the lock the play loop holds"
    assert stop.wait(0) is True
    assert StopRequest().wait(0) is False


def test_the_prompt_line_quitting_stops_the_play_loop():
    import threading

    from server.commands.play import StopRequest

    stop = StopRequest()
    threading.Timer(0.05, stop.event.set).start()
    assert stop.wait(5) is True
