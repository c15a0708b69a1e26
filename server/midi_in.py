"""MIDI input (mido + python-rtmidi): existing ports by name, or virtual ports.

Each message is timestamped on arrival (rtmidi's clock, read by a poll thread) and
queued for the engine frame :meth:`AudioOutput.frame_at` gives, so notes keep their
spacing. Running status is understood; SysEx and broken messages are dropped.
Note on/off, every CC (the engine acts on 1, 6/38 with RPN 0 = bend range, 7, 10, 64,
100/101, 120, 121, 123), pitch bend and program change (a bank patch) on all 16 channels.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from engine import QueueFull

__all__ = ["MidiError", "MidiInput", "MidiParser", "backend", "list_inputs", "open_midi_inputs"]


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


#: Data bytes each channel message takes, by status high nibble.
_DATA_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
#: How often the poll thread looks for messages (s): at most this much added latency.
POLL_S = 0.001
#: Most messages taken per poll (32 per ms: ten times what a MIDI cable carries).
POLL_BATCH = 32


def _rtmidi_api():
    import rtmidi

    api = os.environ.get("PROMPTSYNTH_MIDI_API")
    if api is None and sys.platform.startswith("linux"):
        api = "UNIX_JACK" if _jack_running() else None
    return getattr(rtmidi, f"API_{api}", rtmidi.API_UNSPECIFIED) if api else rtmidi.API_UNSPECIFIED


class MidiParser:
    """Raw MIDI bytes -> (status, channel, data) channel messages, with running status.

    System messages (SysEx, common, real-time) are skipped and cancel running status as
    the MIDI spec says (real-time bytes do not); a message with a missing or out-of-range
    data byte is dropped and counted in :attr:`dropped`.
    """

    def __init__(self) -> None:
        self.running: int | None = None
        self.dropped = 0

    def feed(self, data) -> list[tuple[int, int, tuple[int, ...]]]:
        out = []
        if any(b >= 0xF8 for b in data):  # real-time: may sit anywhere, changes nothing
            data = [b for b in data if b < 0xF8]
        i, n = 0, len(data)
        while i < n:
            b = data[i]
            if b >= 0xF0:  # SysEx / system common: skip it and its data bytes
                self.running = None
                i += 1
                while i < n and data[i] < 0x80:
                    i += 1
                continue
            if b >= 0x80:
                self.running = b
                i += 1
            elif self.running is None:
                self.dropped += 1  # a stray data byte
                i += 1
                continue
            status = self.running
            need = _DATA_LEN[status & 0xF0]
            args = tuple(data[i : i + need])
            if len(args) < need or any(x >= 0x80 for x in args):
                self.dropped += 1
                while i < n and data[i] < 0x80:
                    i += 1
                continue
            i += need
            out.append((status & 0xF0, status & 0x0F, args))
        return out


class MidiInput:
    """One open input port feeding ``host``'s engine; ``close()`` is safe twice.

    No Python runs on the MIDI backend's thread: under JACK that thread is the port's
    JACK process callback, and a callback that waits for the GIL there stalls the whole
    JACK graph (every client underruns, events are lost). rtmidi queues the messages
    (4096 deep) and a thread of the host polls them every :data:`POLL_S`, placing each
    at the frame of its arrival (from rtmidi's own inter-message times).
    """

    def __init__(self, host, name: str, virtual: bool = False) -> None:
        import rtmidi

        self.host = host
        self.errors = 0
        self.received = 0
        self.last_error: str | None = None
        self.parser = MidiParser()
        try:
            self._rt = rtmidi.MidiIn(_rtmidi_api(), "promptsynth", queue_size_limit=4096)
            # SysEx, clock and active sensing never leave rtmidi.
            self._rt.ignore_types(sysex=True, timing=True, active_sense=True)
            if virtual:
                # Shown to others as "promptsynth:NAME" (an input others send to).
                self._rt.open_virtual_port(name)
                self.name = name
            else:
                ports = self._rt.get_ports()
                self._rt.open_port(ports.index(name))
                self.name = name
        except Exception as exc:  # noqa: BLE001 - rtmidi raises several kinds
            raise MidiError(f"cannot open MIDI input {name!r}: {exc}") from exc
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="promptsynth-midi", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        rt, self._rt = self._rt, None
        if rt is not None:
            rt.close_port()
            del rt

    def _run(self) -> None:
        from server.rt import promote_current_thread

        promote_current_thread()
        get = self._rt.get_message
        batch: list = []
        while not self._closed:
            # At most one block's worth of events per poll: a burst (a 1000-note dump)
            # is taken in steps, never as one long stretch holding the GIL.
            while len(batch) < POLL_BATCH:
                m = get()
                if m is None:
                    break
                batch.append(m)
            if batch:
                self._dispatch(batch, time.monotonic())
                batch.clear()
            time.sleep(POLL_S)

    def _dispatch(self, batch: list, now: float) -> None:
        """Each message arrived its successors' deltas before the last, which arrived
        (within one poll period) at ``now``."""
        t = now
        times = []
        for _, delta in reversed(batch):
            times.append(t)
            t -= delta
        times.reverse()
        frame_at = self.host.output.frame_at
        for (data, _), arrived in zip(batch, times):
            self.received += 1
            try:
                frame = frame_at(arrived)
                for kind, ch, args in self.parser.feed(data):
                    self.handle(kind, ch, args, frame)
            except (QueueFull, ValueError, TypeError) as exc:
                self.errors += 1
                self.last_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - the poll thread never dies
                self.errors += 1
                self.last_error = repr(exc)

    def handle(self, kind: int, ch: int, args: tuple[int, ...], frame: int | None) -> None:
        """Queue one channel message for ``frame``; other kinds (aftertouch) are ignored."""
        engine = self.host.engine
        if kind == 0x90:
            engine.note_on(ch, args[0], args[1], frame)
        elif kind == 0x80:
            engine.note_off(ch, args[0], frame)
        elif kind == 0xB0:
            engine.control_change(ch, args[0], args[1], frame)
        elif kind == 0xE0:
            engine.pitch_bend(ch, (args[0] | args[1] << 7) - 8192, frame)
        elif kind == 0xC0:
            bank = self.host.bank
            patch = bank.program(args[0]) if bank is not None else None
            if patch is not None:
                self.host.apply_patch(ch, patch.keytable, patch.name, frame=frame, prompt=patch.prompt)


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
