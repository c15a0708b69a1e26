"""MIDI input (mido + python-rtmidi): existing ports by name, or virtual ports.

Each message is timestamped on arrival (monotonic clock) and queued for the engine
frame :meth:`AudioOutput.frame_at` gives, so notes keep their spacing to the sample.
Note on/off, every CC (the engine acts on 1, 6/38 with RPN 0 = bend range, 7, 10, 64,
100/101, 120, 121, 123), pitch bend and program change (a bank patch) on all 16 channels.
"""

from __future__ import annotations

import os
import sys
import time

from engine import QueueFull

__all__ = ["MidiError", "MidiInput", "backend", "list_inputs", "open_midi_inputs"]


class MidiError(RuntimeError):
    """A MIDI port that cannot be found or opened."""


def backend():
    """mido's rtmidi backend: JACK MIDI where a JACK server runs, else the default API.

    ``PROMPTSYNTH_MIDI_API`` picks one (``UNIX_JACK``, ``LINUX_ALSA``, ``MACOSX_CORE``...).
    """
    import mido

    api = os.environ.get("PROMPTSYNTH_MIDI_API")
    if api is None and sys.platform.startswith("linux"):
        api = "UNIX_JACK" if _jack_running() else None
    name = "mido.backends.rtmidi" + (f"/{api}" if api else "")
    return mido.Backend(name, load=True)


def _jack_running() -> bool:
    try:
        import rtmidi

        if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
            return False
        midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK)
        ok = True
        del midi_in
        return ok
    except Exception:  # noqa: BLE001 - no JACK: use the default API
        return False


def list_inputs() -> list[str]:
    try:
        return list(backend().get_input_names())
    except Exception as exc:  # noqa: BLE001
        raise MidiError(f"cannot list MIDI inputs: {exc}") from exc


class MidiInput:
    """One open input port feeding ``host``'s engine; ``close()`` is safe twice."""

    def __init__(self, host, name: str, virtual: bool = False) -> None:
        self.host = host
        self.errors = 0
        self.received = 0
        self.last_error: str | None = None
        try:
            if virtual:
                # Shown to others as "promptsynth:NAME" (an input others send to).
                self._port = backend().open_input(
                    name, virtual=True, callback=self._callback, client_name="promptsynth"
                )
            else:
                self._port = backend().open_input(name, callback=self._callback)
        except Exception as exc:  # noqa: BLE001 - rtmidi raises several kinds
            raise MidiError(f"cannot open MIDI input {name!r}: {exc}") from exc
        self.name = name if virtual else self._port.name

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()

    def _callback(self, msg) -> None:
        """rtmidi's thread: never raise, never block."""
        arrived = time.monotonic()
        self.received += 1
        try:
            self.handle(msg, self.host.output.frame_at(arrived))
        except (QueueFull, ValueError, TypeError) as exc:
            self.errors += 1
            self.last_error = str(exc)
        except Exception as exc:  # noqa: BLE001
            self.errors += 1
            self.last_error = repr(exc)

    def handle(self, msg, frame: int | None) -> None:
        """Queue one mido message for ``frame``; other message types are ignored."""
        engine = self.host.engine
        kind = msg.type
        if kind == "note_on":
            engine.note_on(msg.channel, msg.note, msg.velocity, frame)
        elif kind == "note_off":
            engine.note_off(msg.channel, msg.note, frame)
        elif kind == "control_change":
            engine.control_change(msg.channel, msg.control, msg.value, frame)
        elif kind == "pitchwheel":
            engine.pitch_bend(msg.channel, msg.pitch, frame)
        elif kind == "program_change":
            bank = self.host.bank
            patch = bank.program(msg.program) if bank is not None else None
            if patch is not None:
                self.host.apply_patch(
                    msg.channel, patch.theta, patch.name, frame=frame, prompt=patch.prompt
                )


def open_midi_inputs(host, names: list[str], virtual: list[str]) -> list[MidiInput]:
    """Open ``names`` (each a substring of an existing input's name) and ``virtual`` ports."""
    if not names and not virtual:
        return []
    opened: list[MidiInput] = []
    try:
        if names:
            available = list_inputs()
        for want in names:
            matches = [n for n in available if want.lower() in n.lower()]
            if not matches:
                raise MidiError(
                    f"no MIDI input matches {want!r}; inputs: {', '.join(available) or 'none'} "
                    "(--list-midi lists them)"
                )
            opened.append(MidiInput(host, matches[0]))
        for name in virtual:
            opened.append(MidiInput(host, name, virtual=True))
    except BaseException:
        for port in opened:
            port.close()
        raise
    return opened
