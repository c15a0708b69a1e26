"""The prompt line of `promptsynth play` in a real terminal (a pseudo-terminal here):
typed prompts and commands take the OSC addresses' own way, with their errors."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

from tests.conftest import assert_no_underruns
from tests.server.conftest import ROOT

pytestmark = [pytest.mark.jack, pytest.mark.slow]


class Terminal:
    """`promptsynth play` with a pseudo-terminal as its stdin and stdout."""

    def __init__(self, args: list[str], env: dict) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "play", "--osc-port", "0", *args],
            cwd=ROOT, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env,
        )
        os.close(slave)
        self.seen = ""

    def read_until(self, words: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while words not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {words!r} on the terminal; it shows:\n{self.seen[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        at = self.seen.index(words)
        out, self.seen = self.seen[: at + len(words)], self.seen[at + len(words):]
        return out

    def kill_if_running(self) -> None:
        """A host that did not stop would play on through the later tests, taking a third
        of a core from their hosts (a burst test underran beside one)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def type(self, line: str, then: str, timeout: float = 30.0) -> str:
        os.write(self.master, (line + "\n").encode())
        return self.read_until(then, timeout)


def test_typing_prompts_and_commands_while_playing(xruns, checkpoint, tmp_path):
    # The control (``xruns``) watches JACK and the CPUs over the host's whole life, model
    # loading included: the host's underruns are judged against it.
    bank = tmp_path / "bank"
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_STATE_HOME=str(tmp_path / "state"))
    t = Terminal(["--model", str(checkpoint), "--bank", str(bank)], env)
    try:
        t.read_until("promptsynth ready", 120)
        t.read_until("promptsynth [1]> ")
        # The instrument the words picked (this model has no library: its flow's patch).
        t.type("a warm brass pad", "'a warm brass pad': ready: flow candidate 1 (attack")
        # The next of the words' choices, and back.
        t.type(":next", "'a warm brass pad' 2/8: flow candidate 2 (attack")
        t.type(":prev", "'a warm brass pad' 1/8: flow candidate 1 (attack")
        t.type(":save my pad", "saved 'my pad' (channel 1)")  # no quotes needed
        assert (bank / "my-pad.json").is_file()
        t.type(":channel 2", "channel 2")
        t.read_until("promptsynth [2]> ")
        t.type(":load 'my pad'", "playing 'my pad' on channel 2")
        # The OSC addresses' own errors, word for word.
        t.type(":load no-such-patch", "error: no patch named 'no-such-patch'")
        t.type(":channel 17", "error: channel must be an int in range 1..16")
        t.type(":morph 'a bell' 'a bass' 2", "error: t must be a number in range 0..1")
        t.type(":shout", "is not a command")
        t.type(":channel 3", "channel 3")
        t.type(":next", "error: channel 3 has no words yet")
        t.type(":morph 'a glass bell' 'a deep bass' 0.5", "'a glass bell' ~ 'a deep bass' at 0.5: ready")
        line = t.type(":status", "MIDI inputs")
        underruns = int(re.search(r"voices sounding, (\d+) underruns", line).group(1))
        assert_no_underruns(underruns, xruns.count, "while typing prompts and commands")
        t.type(":help", ":quit")
        t.type(":quit", "")
        assert t.proc.wait(timeout=30) == 0
    finally:
        t.kill_if_running()
    # The history of what was typed is kept for the next time.
    history = (tmp_path / "state" / "promptsynth" / "prompt_history").read_text()
    assert "a warm brass pad" in history


def test_end_of_input_stops_the_host_cleanly(jack, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1", XDG_STATE_HOME=str(tmp_path / "state"))
    t = Terminal(["--no-model", "--bank", str(tmp_path / "bank")], env)
    try:
        t.read_until("promptsynth [1]> ", 60)
        t.type("a bell", "error: no model: started with --no-model")
        t.read_until("promptsynth [1]> ")
        os.write(t.master, b"\x04")  # Ctrl-D, at the prompt
        assert t.proc.wait(timeout=30) == 0
    finally:
        t.kill_if_running()


def test_no_prompt_line_without_a_terminal_or_when_asked(jack, tmp_path):
    """A service (stdin not a terminal) or --no-prompt-line: nothing is read or printed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t = Terminal(["--no-model", "--bank", str(tmp_path / "bank"), "--no-prompt-line"], env)
    try:
        t.read_until("promptsynth ready", 60)
        time.sleep(0.5)
        assert "promptsynth [1]>" not in t.seen
        t.proc.send_signal(2)
        assert t.proc.wait(timeout=30) == 0
    finally:
        t.kill_if_running()
