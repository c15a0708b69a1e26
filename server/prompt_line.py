"""The prompt line of `promptsynth play`: type the next sound while playing.

When the host runs in a terminal, each line typed is a prompt for the current channel
and a few commands start with ``:``. Every line goes through the OSC address space
(:class:`server.addresses.AddressSpace`), as if it had come as a packet: the same
checks, the same errors, the same replies (written for a person here). Line editing and
history come from the terminal's readline where Python has it.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["PromptLine", "HELP"]

HELP = """type words and Enter: a patch for them on the current channel. Commands:
  :save NAME         save the channel's patch in the bank
  :load NAME         play a bank patch on the channel
  :morph A B T       the patch at T (0..1) between prompts A and B (quote words: "a b")
  :next              the next instrument for the channel's last words (up to 8, then round)
  :prev              the one before
  :choices           the list :next walks (the one playing marked)
  :choose N          play entry N (1-8) of that list
  :channel N         which channel (1-16) lines and commands act on
  :list              the bank's patches
  :status            voices, underruns, latency, MIDI inputs
  :panic             all notes off, at once
  :help              this
  :quit              stop the host (as Ctrl-C)"""


class TerminalReply:
    """Where the address space's replies go: written as lines for a person."""

    sender = ("terminal", 0)

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def send(self, address: str, *args) -> None:
        w = self.write
        if address == "/prompt/done":
            w(f"  {args[1]!r}: ready{_instrument(args[-1])} ({_timbre(args[2:-1])})")
        elif address == "/prompt/choice":
            w(f"  {args[1]!r} {args[2]}/{args[3]}{_instrument(args[4])} ({_timbre(args[5:])})")
        elif address == "/prompt/choices.reply":
            names = "".join(f"\n    {i}. {n}{'  <- playing' if i == args[2] else ''}" for i, n in enumerate(args[3:], 1))
            w(f"  {args[1]!r}:{names}")
        elif address == "/morph/done":
            w(f"  {args[0]!r} ~ {args[1]!r} at {args[2]:g}: ready ({_timbre(args[3:])})")
        elif address == "/patch/saved":
            w(f"  saved {args[0]!r} (channel {args[1]})")
        elif address == "/patch/loaded":
            w(f"  playing {args[0]!r} on channel {args[1]}")
        elif address == "/patch/list.reply":
            w("  " + (", ".join(args) if args else "no patches in the bank"))
        elif address == "/status.reply":
            w(f"  {args[0]} voices sounding, {args[1]} underruns, latency {args[5]:.1f} ms, "
              f"render load {100 * args[2]:.0f}%, MIDI inputs {args[15] if len(args) > 15 else '?'}")
        else:
            w(f"  {address} {' '.join(str(a) for a in args)}")

    def fail(self, address: str, reason: str, *extra) -> None:
        self.write(f"  error: {reason}")


def _instrument(name: str) -> str:
    return f": {name}" if name else ""


def _timbre(values) -> str:
    names = ("attack", "decay", "sustain", "release", "ratio", "index")
    return ", ".join(f"{n} {v:.3g}" for n, v in zip(names, values))


class PromptLine:
    """Reads lines from the terminal on a thread of its own until ``:quit`` or end of input
    (Ctrl-D), which set ``stop``.

    Args:
        host: a started :class:`server.host.Host` (its address space and bank).
        stop: set when the user quits.
        write: how a line reaches the user (default: printed).
    """

    def __init__(self, host, stop: threading.Event, write: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.stop = stop
        self.write = write or (lambda line: print(line, flush=True))
        self.channel = 1
        self._ids = 0
        self._reply = TerminalReply(self.write)
        self._thread: threading.Thread | None = None
        self._history = _history_file()

    def start(self) -> PromptLine:
        try:
            import readline

            readline.set_history_length(1000)
            if self._history is not None and self._history.is_file():
                readline.read_history_file(self._history)
        except (ImportError, OSError):
            pass
        self.write(f"type a prompt for channel {self.channel}, or :help")
        self._thread = threading.Thread(target=self._run, name="promptsynth-prompt-line", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        try:
            import readline

            if self._history is not None:
                self._history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(self._history)
        except (ImportError, OSError):
            pass

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                line = input(f"promptsynth [{self.channel}]> ")
            except EOFError:
                self.write("")
                self.stop.set()
                return
            except (OSError, ValueError):
                return
            try:
                self.handle(line)
            except Exception as exc:  # noqa: BLE001 - the prompt line never dies
                self.write(f"  error: {exc}")

    def handle(self, line: str) -> None:
        """One typed line: a prompt, or a command."""
        text = line.strip()
        if not text:
            return
        if not text.startswith(":"):
            self._ids += 1
            self._send("/prompt", [text, self.channel, self._ids])
            return
        try:
            words = shlex.split(text[1:])
        except ValueError as exc:
            self.write(f"  error: {exc}; quote words with \"...\"")
            return
        cmd, args = (words[0].lower(), words[1:]) if words else ("", [])
        if cmd in ("quit", "q", "exit"):
            self.stop.set()
        elif cmd in ("help", "h", "?"):
            self.write(HELP)
        elif cmd == "channel":
            self._set_channel(args)
        elif cmd in ("save", "load") and args:
            # The rest of the line is the name: `:save warm pad` needs no quotes.
            name = " ".join(args)
            self._send("/patch/save" if cmd == "save" else "/patch/load", [name, self.channel])
        elif cmd == "morph" and len(args) == 3:
            try:
                t = float(args[2])
            except ValueError:
                self.write(f"  error: t must be a number in range 0..1, got {args[2]!r}")
                return
            self._send("/morph", [args[0], args[1], t, self.channel])
        elif cmd in ("next", "prev", "choices") and not args:
            self._send(f"/prompt/{cmd}", [self.channel])
        elif cmd == "choose" and len(args) == 1:
            # The address checks the place (an int in range 1..8), as from OSC.
            place = int(args[0]) if args[0].isdigit() else args[0]
            self._send("/prompt/choose", [place, self.channel])
        elif cmd == "list" and not args:
            self._send("/patch/list", [])
        elif cmd == "status" and not args:
            self._send("/status", [])
        elif cmd == "panic" and not args:
            self._send("/panic", [])
        else:
            self.write(f"  error: {text!r} is not a command (or has the wrong arguments); :help lists them")

    def _set_channel(self, args: list[str]) -> None:
        try:
            n = int(args[0]) if len(args) == 1 else -1
        except ValueError:
            n = -1
        if not 1 <= n <= 16:
            self.write(f"  error: channel must be an int in range 1..16, got {' '.join(args)!r}")
            return
        self.channel = n
        self.write(f"  channel {n}")

    def _send(self, address: str, args: list) -> None:
        """As a packet from OSC would: checked by the address space, then applied."""
        from server.osc import Refused

        try:
            actions = self.host.addresses(address, args, self._reply)
        except Refused as exc:
            self._reply.fail(exc.address or address, exc.reason)
            return
        for action in actions:
            action(None)


def _history_file() -> Path | None:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "promptsynth" / "prompt_history"
