"""Stage-proof: odd prompts against the real model, --allow and the warning off loopback,
and the audio server dying under a running host (a private jackd, so that the shared one
the other tests use is untouched)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import soundfile as sf

from engine import TIMBRE_NAMES
from tests.conftest import child_processes
from tests.server.conftest import ROOT, HostProcess, OscClient
from tests.server.oscfuzz import msg

pytestmark = [pytest.mark.jack, pytest.mark.slow]

N_TIMBRE = len(TIMBRE_NAMES)  # a reply's patch: its centre's timbre values, schema order


# -- prompts ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_host(jack, checkpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prompts")
    h = HostProcess(["--model", str(checkpoint), "--bank", str(tmp / "bank")])
    c = OscClient(h.port)
    yield h, c
    c.close()
    h.stop()


@pytest.mark.parametrize(
    "text, reply",
    [
        ("", "text must contain some text"),
        ("\x01\x02\t\n\x7f", "text must contain some text"),  # only control characters
        ("   ", "text must contain some text"),
        ("x" * 10_240, "text must be at most 1000 characters, got 10240"),
        ("a" * 1000, None),  # at the limit: a patch
        ("a\x00b", None),  # NUL cannot travel in an OSC string; Pd sends words: see below
        ("a bright\x07 bell\r\nwith\ttabs", None),
        ("暖かいブラスのパッド", None),
        ("جرس زجاجي لامع", None),
        ("тёплый струнный пэд", None),
        ("🔔✨🎹", None),
        ("🎺" * 1000, None),
        ("e\u0301\u200b\u202e reversed", None),  # combining mark, zero width, RTL override
    ],
)
def test_odd_prompts_give_a_clear_error_or_a_sane_patch(model_host, text, reply):
    host, c = model_host
    if "\x00" in text:
        text = text.replace("\x00", " ")
    rid = abs(hash(text)) % 100_000
    c.send("/prompt", text, 3, rid)
    if reply is not None:
        fail = c.expect("/fail", where=lambda p: p[0] == "/prompt", timeout=30)
        assert reply in fail[1]
        return
    done = c.expect("/prompt/done", where=lambda p: p[0] == rid, timeout=60)
    assert len(done) == 2 + N_TIMBRE + 1 and isinstance(done[-1], str)  # the instrument last
    # Control characters became spaces, runs of space one space.
    assert done[1] == " ".join(
        "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text).split()
    )
    import math

    from engine import PARAMS

    for p, v in zip([p for p in PARAMS if p.timbre], done[2:]):
        assert math.isfinite(v) and p.minimum <= v <= p.maximum, (p.name, v)
    assert host.proc.poll() is None


def test_cli_prompt_over_the_limit_is_a_user_error():
    r = subprocess.run(
        [sys.executable, "-m", "server", "play", "--prompt", "x" * 1001],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--prompt must be at most 1000 characters" in r.stderr


def test_worker_killed_mid_prediction_keeps_the_music_playing(model_host):
    """The worker dies while a prompt is pending: /fail for it, a new worker, and the
    note held through it all still sounds."""
    host, c = model_host
    c.send("/param/attack_s", 0.0, 5)
    c.send("/note", 48, 100, 5)
    time.sleep(0.1)
    (pid,) = host.worker_pids()
    os.kill(pid, signal.SIGSTOP)
    c.send("/prompt", "never answered", 6, 777)
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    p = c.expect("/fail", timeout=30, where=lambda q: q[0] == "/prompt" and q[-1] == 777)
    assert "model worker died" in p[1]
    c.send("/prompt", "a warm pad", 6, 778)
    c.expect("/prompt/done", timeout=90, where=lambda q: q[0] == 778)
    s = c.ask("/status", reply="/status.reply")
    assert s[0] >= 1, "the held note stopped"
    assert s[9] == 1, "one worker restart in /status"
    c.send("/note/off", 48, 5)


# -- who may talk to the host --------------------------------------------------------------


def test_allow_drops_and_counts_other_senders(jack, tmp_path):
    h = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--allow", "127.0.0.2/32"])
    try:
        assert "warning" not in "".join(h.stderr)  # still loopback only
        stranger = OscClient(h.port)  # bound to 127.0.0.1: not allowed
        friend = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        friend.bind(("127.0.0.2", 0))
        friend.settimeout(5)
        try:
            for _ in range(5):
                stranger.send("/note", 60, 100)
            stranger.send("/status")
            time.sleep(0.3)
            assert stranger.replies == [], "nothing goes back to a stranger"
            friend.sendto(msg("/status"), ("127.0.0.1", h.port))
            data, _ = friend.recvfrom(65536)
            from pythonosc.osc_message import OscMessage

            reply = OscMessage(data)
            assert reply.address == "/status.reply"
            assert reply.params[0] == 0, "the stranger's notes did not play"
            assert reply.params[6] == 6, "six packets dropped and counted"
        finally:
            stranger.close()
            friend.close()
    finally:
        assert h.stop() == 0


def test_listening_off_loopback_warns(jack, tmp_path):
    h = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--osc-host", "0.0.0.0"])
    try:
        time.sleep(0.2)
        err = "".join(h.stderr)
        assert "warning: OSC listens on 0.0.0.0" in err and "--allow" in err, err
    finally:
        assert h.stop() == 0


def test_bad_allow_is_a_user_error():
    r = subprocess.run(
        [sys.executable, "-m", "server", "play", "--allow", "10.0.0.0/33"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "--allow must be an address or CIDR network" in r.stderr


# -- the audio server dies ------------------------------------------------------------------


# A fixed name: JACK keeps a SIGKILLed server's entry in its shared-memory registry (8
# slots) and reclaims it only for a server of the same name, so a fresh name per run
# would fill the registry ("Too many servers already active") within 8 runs.
DYING = "promptsynth-test-dying"


@pytest.fixture()
def dying_jackd(jack):
    """A private jackd for one test to kill: (process, env that makes clients use it)."""
    if shutil.which("jackd") is None:
        pytest.skip("needs jackd")
    jackd = subprocess.Popen(
        ["jackd", "-n", DYING, "-d", "dummy", "-r", "48000", "-p", "128"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        env = dict(os.environ, JACK_DEFAULT_SERVER=DYING)
        deadline = time.monotonic() + 10
        while subprocess.run(["jack_lsp"], env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "private jackd did not start"
            time.sleep(0.1)
        yield jackd, env
    finally:
        jackd.kill()
        jackd.wait(timeout=10)


def test_jackd_killed_exits_3_with_one_line_and_a_whole_recording(dying_jackd, tmp_path):
    jackd, env = dying_jackd
    wav = tmp_path / "rec.wav"
    h = HostProcess(
        [
            "--no-model",
            "--bank",
            str(tmp_path / "bank"),
            "--record",
            str(wav),
            "--midi-virtual",
            "dying",
        ],
        env=env,
    )
    time.sleep(0.5)
    jackd.kill()
    t0 = time.monotonic()
    rc = h.proc.wait(timeout=15)
    took = time.monotonic() - t0
    time.sleep(0.1)
    err = "".join(h.stderr)
    assert rc == 3, err
    assert took < 3.0, took
    lines = [ln for ln in err.splitlines() if ln.startswith("promptsynth play:")]
    assert lines == [lines[0]] and "audio server stopped" in lines[0], err
    info = sf.info(str(wav))  # finalised: readable, with what was played
    assert info.samplerate == 48000 and info.frames > 0.3 * 48000


def test_host_killed_just_after_jackd_died_leaves_no_render_process(dying_jackd, tmp_path):
    # The host watches the audio server and tells its render process to abandon the
    # stream; killed before it can, the render process finds its parent gone and closes
    # the stream itself, which blocks for good on a dead JACK server. It must exit anyway
    # (it used to sleep on forever), with its recording finalised.
    jackd, env = dying_jackd
    wav = tmp_path / "rec.wav"
    h = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav)], env=env)
    time.sleep(0.5)
    render = [pid for pid, args in child_processes(h.proc.pid)
              if "-m engine.live" in args or "-m server.render" in args]
    assert len(render) == 1, child_processes(h.proc.pid)
    jackd.kill()
    jackd.wait(timeout=10)
    h.proc.kill()
    h.proc.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _running(render[0]):
        if time.monotonic() > deadline:
            os.kill(render[0], signal.SIGKILL)
            pytest.fail("the render process outlived its host and its audio server by 15 s")
        time.sleep(0.1)
    info = sf.info(str(wav))
    assert info.samplerate == 48000 and info.frames > 0.3 * 48000


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (not gone, not a zombie waiting for init to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
