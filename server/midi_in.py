"""MIDI input (python-rtmidi): virtual ports, and ports of other programs that come
and go (a keyboard unplugged and plugged in again on stage).

Each message is timestamped on arrival (rtmidi's clock, read by a poll thread) and
queued for the engine frame :meth:`AudioOutput.frame_at` gives, so notes keep their
spacing. Running status is understood; SysEx and broken messages are dropped.
Note on/off, every CC (the engine acts on 1, 6/38 with RPN 0 = bend range, 7, 10, 64,
100/101, 120, 121, 123), pitch bend and program change (a bank patch) on all 16 channels.

:class:`MidiHub` keeps the wanted inputs connected: it looks at the MIDI sources every
:data:`WATCH_S`. An input whose source vanished is released (every note it started gets
its note-off, its sustain pedal is lifted) and closed; a source that matches what was
asked for (``--midi-in NAME`` or ``all``) is opened whenever it appears.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from engine import QueueFull

__all__ = ["MidiError", "MidiHub", "MidiInput", "MidiParser", "backend", "list_inputs", "ALL", "WATCH_S"]

#: ``--midi-in all``: every MIDI source there is, and every one that appears later.
ALL = "all"
#: How often the hub looks for sources that vanished or appeared (s).
WATCH_S = 0.05
#: The rtmidi client name of the host's inputs: sources of this client are the host's
#: own and never connected by ``all`` (nothing loops).
CLIENT_NAME = "promptsynth"


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
        # delete(): a JACK client left to the garbage collector stays in JACK's graph.
        midi_in.delete()
        return True
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
        self.virtual = virtual
        self.errors = 0
        self.received = 0
        self.last_error: str | None = None
        self.parser = MidiParser()
        #: (channel, pitch) of the notes this input started and has not ended, and the
        #: channels whose sustain (CC64) or sostenuto (CC66) pedal it holds down: what
        #: :meth:`release` lets go of when the source vanishes.
        self.held: set[tuple[int, int]] = set()
        self.pedals: set[tuple[int, int]] = set()
        self._rt = None
        try:
            self._rt = rtmidi.MidiIn(_rtmidi_api(), CLIENT_NAME, queue_size_limit=4096)
            # SysEx, clock and active sensing never leave rtmidi.
            self._rt.ignore_types(sysex=True, timing=True, active_sense=True)
            if virtual:
                # Shown to others as "promptsynth:NAME" (an input others send to).
                self._rt.open_virtual_port(name)
                self.name = name
            else:
                ports = self._rt.get_ports()
                self._rt.open_port(ports.index(name), "in")
                self.name = name
        except Exception as exc:  # noqa: BLE001 - rtmidi raises several kinds
            if self._rt is not None:
                self._rt.delete()
            raise MidiError(f"cannot open MIDI input {name!r}: {exc}") from exc
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="promptsynth-midi", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading (what already arrived is played first) and close the port."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        rt, self._rt = self._rt, None
        if rt is not None:
            self._drain(rt.get_message)
            rt.close_port()
            # delete(): a JACK client left to the garbage collector stays in the graph.
            rt.delete()

    def release(self) -> int:
        """Let go of everything this input holds: a note-off for each note it started
        (so release tails sound as usual) and its pedals up. Returns the notes released."""
        engine = self.host.engine
        notes = sorted(self.held)
        for ch, pitch in notes:
            try:
                engine.note_off(ch, pitch)
            except Exception as exc:  # noqa: BLE001 - a full queue: count, go on
                self.errors += 1
                self.last_error = repr(exc)
        for ch, control in sorted(self.pedals):
            try:
                engine.control_change(ch, control, 0)
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                self.last_error = repr(exc)
        self.held.clear()
        self.pedals.clear()
        return len(notes)

    def _drain(self, get) -> None:
        batch = []
        while (m := get()) is not None:
            batch.append(m)
        if batch:
            self._dispatch(batch, time.monotonic())

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
            if args[1]:
                self.held.add((ch, args[0]))
            else:
                self.held.discard((ch, args[0]))
        elif kind == 0x80:
            engine.note_off(ch, args[0], frame)
            self.held.discard((ch, args[0]))
        elif kind == 0xB0:
            engine.control_change(ch, args[0], args[1], frame)
            control, value = args
            if control in (64, 66):
                if value >= 64:
                    self.pedals.add((ch, control))
                else:
                    self.pedals.discard((ch, control))
            elif control in (120, 123):  # all sound off / all notes off
                self.held = {(c, p) for c, p in self.held if c != ch}
            elif control == 121:  # reset all controllers: the pedals are up
                self.pedals = {(c, n) for c, n in self.pedals if c != ch}
        elif kind == 0xE0:
            engine.pitch_bend(ch, (args[0] | args[1] << 7) - 8192, frame)
        elif kind == 0xC0:
            bank = self.host.bank
            patch = bank.program(args[0]) if bank is not None else None
            if patch is not None:
                self.host.channels.apply_bank_patch(ch, patch, frame)


class MidiHub:
    """The host's MIDI inputs, kept connected while sources come and go.

    Args:
        host: the host whose engine the inputs feed.
        wants: ``--midi-in`` values: a part of a source's name (case-insensitive), or
            :data:`ALL` for every source but the host's own.
        virtual: names of virtual inputs to offer (``promptsynth:NAME``).
        on_change: ``on_change(kind, name, released)`` after an input was connected
            (``kind`` "connected") or lost ("lost", with the notes it released); called
            on the hub's thread.
    """

    def __init__(self, host, wants: list[str], virtual: list[str], on_change=None) -> None:
        self.host = host
        self.wants = [w for w in wants if w.lower() != ALL]
        self.all = any(w.lower() == ALL for w in wants)
        self.on_change = on_change
        self._lock = threading.Lock()
        self._inputs: dict[str, MidiInput] = {}  # source name -> input (virtual: its name)
        self._lister = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.retired_errors = 0
        try:
            for name in virtual:
                self._inputs[f"{CLIENT_NAME}:{name}"] = MidiInput(host, name, virtual=True)
            if self.wants or self.all:
                import rtmidi

                self._lister = rtmidi.MidiIn(_rtmidi_api(), f"{CLIENT_NAME}-watch")
                self._scan(initial=True)
                self._thread = threading.Thread(target=self._watch, name="promptsynth-midi-watch", daemon=True)
                self._thread.start()
        except BaseException:
            self.close()
            raise

    # -- state ---------------------------------------------------------------------------

    @property
    def inputs(self) -> list[MidiInput]:
        with self._lock:
            return list(self._inputs.values())

    def available(self) -> list[str]:
        """MIDI sources there are now (the host's own excluded)."""
        return [n for n in list_inputs() if not _is_own(n)]

    def waiting(self) -> list[str]:
        """``--midi-in`` names that match no connected input."""
        with self._lock:
            names = list(self._inputs)
        return [w for w in self.wants if not any(w.lower() in n.lower() for n in names)]

    @property
    def errors(self) -> int:
        return self.retired_errors + sum(i.errors for i in self.inputs)

    def abandon(self) -> None:
        """Stop watching, touch no port (the audio server died: its clients hang)."""
        self._closed = True

    def close(self) -> None:
        """Close every input (what they hold is released first); safe twice."""
        self._closed = True
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        with self._lock:
            inputs, self._inputs = list(self._inputs.values()), {}
        for port in inputs:
            port.close()
        lister, self._lister = self._lister, None
        if lister is not None:
            lister.delete()

    # -- the watcher ---------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed:
            time.sleep(WATCH_S)
            try:
                self._scan()
            except Exception:  # noqa: BLE001 - the watcher never dies (rtmidi hiccups)
                continue

    def _scan(self, initial: bool = False) -> None:
        present = [n for n in self._lister.get_ports() if not _is_own(n)]
        with self._lock:
            connected = {n: i for n, i in self._inputs.items() if not i.virtual}
        for name, port in connected.items():
            if name not in present:
                with self._lock:
                    self._inputs.pop(name, None)
                port.close()
                released = port.release()
                self.retired_errors += port.errors
                self._report("lost", name, released)
        for name in present:
            if name in connected and name in self._inputs:
                continue
            if not (self.all or any(w.lower() in name.lower() for w in self.wants)):
                continue
            if self._closed:
                return
            try:
                port = MidiInput(self.host, name)
            except MidiError:
                continue  # gone again, or not openable now: the next look retries
            with self._lock:
                self._inputs[name] = port
            self._report("connected", name, 0)

    def _report(self, kind: str, name: str, released: int) -> None:
        if self.on_change is not None:
            try:
                self.on_change(kind, name, released)
            except Exception:  # noqa: BLE001 - a report must not stop the watcher
                pass


def _is_own(source: str) -> bool:
    """A source of the host's own MIDI client (``promptsynth:...``, ``promptsynth-01:...``)."""
    client = source.split(":", 1)[0]
    return client == CLIENT_NAME or client.startswith(f"{CLIENT_NAME}-")
