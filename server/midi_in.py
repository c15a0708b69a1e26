"""MIDI input (python-rtmidi): virtual ports, and ports of other programs that come
and go (a keyboard unplugged and plugged in again on stage).

Under JACK each event is read on its own in JACK's cycle, with its frame time
(:mod:`server.jackmidi`); elsewhere rtmidi's clock stamps the messages. A thread of the
host queues each for the engine frame :meth:`AudioOutput.frame_at` gives, so notes keep their
spacing. Every byte goes through :class:`server.midiparse.MidiParser`: running status is
understood, a SysEx ends at the next status byte (or with its JACK event), malformed
messages are dropped, counted and told (``/midi/error``); System Reset (FF) silences and
resets the channels its input played on.
Note on/off, every CC (the engine acts on 1, 6/38 with RPN 0 = bend range, 7, 10, 64, 74,
100/101, 120, 121, 123), pitch bend, channel and polyphonic key pressure (``engine.expression``)
and program change (a bank patch) on all 16 channels.

:class:`MidiHub` keeps the wanted inputs connected: it looks at the MIDI sources every
:data:`WATCH_S`. An input whose source vanished is released (every note it started gets
its note-off, its sustain pedal is lifted) and closed; a source that matches what was
asked for (``--midi-in NAME`` or ``all``) is opened whenever it appears.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time

from engine import CC, QueueFull
from server.midiparse import RESET, SYSEX, MidiParser

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


#: How often the poll thread looks for rtmidi's messages (s): at most this much added
#: latency. Under JACK the thread is woken by JACK's cycle instead.
POLL_S = 0.001
#: Under JACK, the longest the reader sleeps when nothing comes (s).
JACK_WAIT_S = 0.1
#: Most rtmidi messages taken per poll (32 per ms: ten times what a MIDI cable carries).
POLL_BATCH = 32
#: A source's malformed MIDI is told (``/midi/error``, the play command's console) at
#: most this often (s); the rest are counted, and the next notice says how many.
ERROR_NOTICE_S = 1.0


def _rtmidi_api():
    import rtmidi

    api = os.environ.get("PROMPTSYNTH_MIDI_API")
    if api is None and sys.platform.startswith("linux"):
        api = "UNIX_JACK" if _jack_running() else None
    return getattr(rtmidi, f"API_{api}", rtmidi.API_UNSPECIFIED) if api else rtmidi.API_UNSPECIFIED


def _reads_jack() -> bool:
    """Whether inputs read JACK MIDI themselves (:mod:`server.jackmidi`), event by event."""
    import rtmidi

    from server import jackmidi

    return _rtmidi_api() == rtmidi.API_UNIX_JACK and jackmidi.available()


def mts_single_note_tuning(body: tuple[int, ...]) -> dict[int, float]:
    """The keys and notes of a MIDI Tuning Standard real-time single-note tuning change
    (``F0 7F dev 08 02 program count [key semitone frac-MSB frac-LSB]... F7``; ``body``:
    the bytes between F0 and F7), for any device id; {} for any other SysEx. A note is
    ``semitone + frac / 16384`` (7F 7F 7F: that key unchanged)."""
    if len(body) < 6 or body[0] != 0x7F or body[2] != 0x08 or body[3] != 0x02:
        return {}
    count = body[5]
    notes = {}
    for i in range(count):
        part = body[6 + 4 * i : 10 + 4 * i]
        if len(part) < 4:
            break
        key, semi, msb, lsb = part
        if (semi, msb, lsb) == (0x7F, 0x7F, 0x7F):
            continue
        notes[key] = semi + ((msb << 7) | lsb) / 16384.0
    return notes


#: Each MIDI input's generation: the render process starts a new parser where it changes.
_GENERATIONS = itertools.count(1)


class MidiInput:
    """One open input port feeding ``host``'s engine; ``close()`` is safe twice.

    No Python runs on the MIDI backend's thread. Under JACK the port is read event by
    event by compiled code in JACK's own cycle (:class:`server.jackmidi.JackMidiIn`),
    each event stamped with its frame, and a thread of the host wakes when a cycle brought
    events; elsewhere rtmidi queues the messages (4096 deep) and the thread polls them
    every :data:`POLL_S`. It queues each for the engine at the frame of its arrival. Every byte reaches :class:`MidiParser`, SysEx included,
    so a malformed message ends where the MIDI spec says and costs nothing after it;
    each one is counted (:attr:`malformed`) and told (:data:`ERROR_NOTICE_S`).
    """

    #: The render process queues this input's events in JACK's cycle (it renders there,
    #: and a MIDI area of the shared memory was free).
    in_cycle = False
    _slot: int | None = None

    def __init__(self, host, name: str, virtual: bool = False) -> None:
        self.host = host
        self.virtual = virtual
        self.name = name
        self.errors = 0
        self.received = 0
        self.last_error: str | None = None
        #: (channel, pitch) of the notes this input started and has not ended, and the
        #: channels whose sustain (CC64) or sostenuto (CC66) pedal it holds down: what
        #: :meth:`release` lets go of when the source vanishes.
        self.held: set[tuple[int, int]] = set()
        self.pedals: set[tuple[int, int]] = set()
        #: Channels this input has sent a channel message to (what a System Reset resets).
        self.channels: set[int] = set()
        self._notice_at = -ERROR_NOTICE_S
        self._unnoticed = 0
        self._lost_seen = 0
        self._rt = None
        self._jack = None
        self.in_cycle = False
        self._slot = None
        if _reads_jack():
            from server.jackmidi import JackMidiError, JackMidiIn

            self.parser = MidiParser(events=True, on_error=self._malformed)
            order = getattr(host.output, "order_port", None)
            claim = getattr(host.engine, "claim_midi_slot", None)
            slot = claim() if order and claim is not None else None
            try:
                # Shown to others as "promptsynth:NAME" (virtual: an input others send
                # to), or connected from the source ``name``.
                self._jack = JackMidiIn(
                    CLIENT_NAME, name if virtual else "in", None if virtual else name,
                    shared=slot[1:] if slot else None, order_to=order if slot else None,
                    generation=next(_GENERATIONS),
                )
            except JackMidiError as exc:
                if slot:
                    host.engine.release_midi_slot(slot[0])
                raise MidiError(f"cannot open MIDI input {name!r}: {exc}") from exc
            if slot:
                self._slot, self.in_cycle = slot[0], True
        else:
            self.parser = MidiParser(events=False, on_error=self._malformed)
            self._open_rtmidi(name, virtual)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="promptsynth-midi", daemon=True)
        self._thread.start()

    def _open_rtmidi(self, name: str, virtual: bool) -> None:
        import rtmidi

        try:
            self._rt = rtmidi.MidiIn(_rtmidi_api(), CLIENT_NAME, queue_size_limit=4096)
            # Clock and active sensing never leave rtmidi; SysEx does, so that the parser
            # sees where one ends.
            self._rt.ignore_types(sysex=False, timing=True, active_sense=True)
            if virtual:
                self._rt.open_virtual_port(name)
            else:
                ports = self._rt.get_ports()
                self._rt.open_port(ports.index(name), "in")
        except Exception as exc:  # noqa: BLE001 - rtmidi raises several kinds
            if self._rt is not None:
                self._rt.delete()
            raise MidiError(f"cannot open MIDI input {name!r}: {exc}") from exc

    @property
    def malformed(self) -> int:
        """Malformed MIDI messages from this input, and events lost to a full ring."""
        return self.parser.dropped + (self._jack.lost if self._jack is not None else 0)

    def close(self) -> None:
        """Stop reading (what already arrived is played first) and close the port."""
        if self._closed:
            return
        self._closed = True
        if self._jack is not None:
            self._jack.wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        jack, self._jack = self._jack, None
        if jack is not None:
            self._dispatch_events(jack.take())
            jack.close()
        if self._slot is not None:
            self.host.engine.release_midi_slot(self._slot)
            self._slot = None
        rt, self._rt = self._rt, None
        if rt is not None:
            self._drain(rt.get_message)
            rt.close_port()
            # delete(): a JACK client left to the garbage collector stays in the graph.
            rt.delete()

    def abandon(self) -> None:
        """Stop reading and touch no port (the audio server died: its clients hang)."""
        self._closed = True
        if self._jack is not None:
            self._jack.abandon()

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

    # -- reading -------------------------------------------------------------------------

    def _drain(self, get) -> None:
        batch = []
        while (m := get()) is not None:
            batch.append(m)
        if batch:
            self._dispatch(batch, time.monotonic())

    def _run(self) -> None:
        from server.rt import promote_current_thread

        promote_current_thread()
        jack = self._jack
        if jack is not None:
            while not self._closed:
                # Woken by JACK's cycle when events came (at once, not at a poll's next
                # tick); the timeout only bounds how soon a full ring is told.
                jack.wait(JACK_WAIT_S)
                events = jack.take()
                if events:
                    self._dispatch_events(events)
                if jack.lost > self._lost_seen:
                    self._malformed(f"{jack.lost - self._lost_seen} MIDI events lost: the input's ring was full")
                    self._lost_seen = jack.lost
            return
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
        """rtmidi's messages: each arrived its successors' deltas before the last, which
        arrived (within one poll period) at ``now``."""
        t = now
        times = []
        for _, delta in reversed(batch):
            times.append(t)
            t -= delta
        times.reverse()
        self._dispatch_events([(arrived, data, len(data)) for (data, _), arrived in zip(batch, times)])

    def _dispatch_events(self, events: list[tuple[float, bytes, int]]) -> None:
        """``(arrived, data, size)`` each: parse, and queue each message for the frame
        of its arrival (``size`` above ``len(data)``: the event was cut)."""
        frame_at = self.host.output.frame_at
        for arrived, data, size in events:
            self.received += 1
            try:
                frame = frame_at(arrived)
                for kind, ch, args in self.parser.feed(data, arrived, cut=size > len(data)):
                    self.handle(kind, ch, args, frame)
            except (QueueFull, ValueError, TypeError) as exc:
                self.errors += 1
                self.last_error = str(exc)
            except Exception as exc:  # noqa: BLE001 - the poll thread never dies
                self.errors += 1
                self.last_error = repr(exc)

    def _malformed(self, what: str) -> None:
        """The parser's word on one malformed message: told at most every
        :data:`ERROR_NOTICE_S`, the ones in between counted in the next notice."""
        now = time.monotonic()
        if now - self._notice_at < ERROR_NOTICE_S:
            self._unnoticed += 1
            return
        if self._unnoticed:
            what += f" (and {self._unnoticed} more malformed since the last notice)"
        self._notice_at, self._unnoticed = now, 0
        tell = getattr(self.host, "midi_error", None)
        if tell is not None:
            try:
                tell(self.name, what)
            except Exception:  # noqa: BLE001 - a notice must not stop the input
                pass

    # -- acting --------------------------------------------------------------------------

    def handle(self, kind: int, ch: int, args: tuple[int, ...], frame: int | None) -> None:
        """Queue one message for ``frame``, and keep what this input holds. A System Reset
        (:data:`RESET`) silences and resets the channels this input has played on. In
        JACK's cycle (:attr:`in_cycle`) the render process has queued the engine's
        events already: here only what it holds is kept, and a program change applied."""
        engine = self.host.engine
        if not self.in_cycle:
            queue_midi(engine, kind, ch, args, frame, self.channels if kind == RESET else None)
        elif kind == 0xB0:
            engine.remember_control(ch, args[0], args[1])  # the sends /status reports
        elif kind == RESET and self.channels:
            engine.remember_reset(sorted(self.channels))
        if kind == SYSEX:
            return
        if kind == RESET:
            # Only the channels played since the last reset: a source that sends FF again
            # and again costs next to nothing.
            if self.channels:
                self.held = {(c, p) for c, p in self.held if c not in self.channels}
                self.pedals = {(c, n) for c, n in self.pedals if c not in self.channels}
                self.channels = set()
            return
        self.channels.add(ch)
        if kind == 0x90:
            if args[1]:
                self.held.add((ch, args[0]))
            else:
                self.held.discard((ch, args[0]))
        elif kind == 0x80:
            self.held.discard((ch, args[0]))
        elif kind == 0xB0:
            control, value = args
            if control in (CC.SUSTAIN, CC.SOSTENUTO):
                if value >= 64:
                    self.pedals.add((ch, control))
                else:
                    self.pedals.discard((ch, control))
            elif control in (CC.ALL_SOUND_OFF, CC.ALL_NOTES_OFF):
                self.held = {(c, p) for c, p in self.held if c != ch}
            elif control == CC.RESET_ALL_CONTROLLERS:  # the pedals are up
                self.pedals = {(c, n) for c, n in self.pedals if c != ch}
        elif kind == 0xC0:
            bank = self.host.bank
            patch = bank.program(args[0]) if bank is not None else None
            if patch is not None:
                self.host.channels.apply_bank_patch(ch, patch, frame)


def queue_midi(engine, kind: int, ch: int, args: tuple[int, ...], frame: int | None, played) -> None:
    """Queue the engine's events for one parsed MIDI message at ``frame`` (``played``:
    for a System Reset, the channels its source has played on, which it resets). A program
    change queues none here: the bank is the host's. The host's inputs and the render
    process (server/render.py, in JACK's cycle) both queue through this."""
    if kind == SYSEX:
        notes = mts_single_note_tuning(args)
        if notes:
            engine.retune_keys(notes, frame)
    elif kind == RESET:
        if played:
            engine.reset_channels(sorted(played), frame)
    elif kind == 0x90:
        engine.note_on(ch, args[0], args[1], frame)
    elif kind == 0x80:
        engine.note_off(ch, args[0], frame)
    elif kind == 0xB0:
        engine.control_change(ch, args[0], args[1], frame)
    elif kind == 0xE0:
        engine.pitch_bend(ch, (args[0] | args[1] << 7) - 8192, frame)
    elif kind == 0xD0:
        engine.channel_pressure(ch, args[0], frame)
    elif kind == 0xA0:
        engine.poly_pressure(ch, args[0], args[1], frame)


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
        """MIDI that could not be applied (a full queue) or was malformed, all inputs."""
        return self.retired_errors + sum(i.errors + i.malformed for i in self.inputs)

    def abandon(self) -> None:
        """Stop watching, touch no port (the audio server died: its clients hang)."""
        self._closed = True
        for port in self.inputs:
            port.abandon()

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
                self.retired_errors += port.errors + port.malformed
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
