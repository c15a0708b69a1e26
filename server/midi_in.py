"""MIDI input (python-rtmidi): virtual ports, and ports of other programs that come
and go (a keyboard unplugged and plugged in again on stage).

Under JACK each event is read on its own in JACK's cycle, with its frame time
(:mod:`server.jackmidi`); elsewhere rtmidi's clock stamps the messages. A thread of the
host queues each for the engine frame :meth:`AudioOutput.frame_at` gives, so notes keep their
spacing. Every byte goes through :class:`server.midiparse.MidiParser`: running status is
understood, a SysEx ends at the next status byte (or with its JACK event), malformed
messages are dropped, counted and told (``/midi/error``); System Reset (FF) silences and
resets the channels its input played on.
Note on/off, every CC (the engine acts on those ``engine.CC`` names), pitch bend, channel
and polyphonic key pressure (``engine.expression``) and program change (a bank patch) on
all 16 channels. A program change, and a press of a controller mapped to the bank's steps
(``play --bank-next-cc``, ``--bank-prev-cc``), go through the address space
(``/program``, ``/bank/next``, ``/bank/prev``), as the same messages from OSC or the page.

An input is given what it feeds (:class:`MidiTargets`): the engine, the audio output's
clock, the address space's way in and where malformed MIDI is told; never the host.
The inputs are kept connected while sources come and go by :class:`server.midi_hub.MidiHub`;
which MIDI system they use is :mod:`server.midi_system`'s.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine import CC, QueueFull
from server.midi_system import (
    CLIENT_NAME,
    MidiError,
    _reads_jack,
    _rtmidi_api,
    backend,
    list_inputs,
)
from server.midimap import SWITCH_ON
from server.midiparse import RESET, SYSEX, MidiParser, mts_single_note_tuning

__all__ = [
    "MidiError", "MidiInput", "MidiParser", "MidiTargets", "backend", "list_inputs", "mts_single_note_tuning",
    "queue_midi",
]


@dataclass(frozen=True)
class MidiTargets:
    """What the MIDI inputs feed.

    Args:
        engine: where events go (an :class:`engine.sender.EventSender`; under JACK also
            ``claim_midi_slot`` and ``release_midi_slot``, the render process's MIDI areas).
        output: the audio output: ``frame_at(arrived)``, and ``order_port`` where the
            render process reads JACK MIDI in JACK's cycle.
        route: ``route(address, args, reply, frame)``, the address space's way in
            (:meth:`server.addresses.AddressSpace.run`): program changes and bank steps.
        on_error: ``on_error(source, what)``: malformed MIDI from ``source`` (at most once
            a second a source).
        bank_steps: controller number -> ``/bank/next`` or ``/bank/prev`` (:func:`bank_steps`).
    """

    engine: object
    output: object
    route: Callable | None = None
    on_error: Callable[[str, str], None] | None = None
    bank_steps: Mapping[int, str] = field(default_factory=dict)


class _MidiReply:
    """Where the address space's answers to a MIDI message go: nowhere (MIDI has no way
    back), but a failure to apply (a full queue) is counted as the input's error."""

    sender = ("midi", 0)

    def __init__(self, port: MidiInput) -> None:
        self.port = port

    def send(self, address: str, *args) -> None:
        pass

    def fail(self, address: str, reason: str, *extra) -> None:
        self.port.errors += 1
        self.port.last_error = reason


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


#: Each MIDI input's generation: the render process starts a new parser where it changes.
_GENERATIONS = itertools.count(1)


class MidiInput:
    """One open input port feeding ``targets`` (:class:`MidiTargets`); ``close()`` is
    safe twice.

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
    route: Callable | None = None
    on_error: Callable[[str, str], None] | None = None
    bank_steps: Mapping[int, str] = MappingProxyType({})
    last_error: str | None = None

    def __init__(self, targets: MidiTargets, name: str, virtual: bool = False) -> None:
        self.engine = targets.engine
        self.output = targets.output
        self.route = targets.route
        self.on_error = targets.on_error
        self.bank_steps = targets.bank_steps
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
        if _reads_jack():
            from server.jackmidi import JackMidiError, JackMidiIn

            self.parser = MidiParser(events=True, on_error=self._malformed)
            order = getattr(self.output, "order_port", None)
            claim = getattr(self.engine, "claim_midi_slot", None)
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
                    self.engine.release_midi_slot(slot[0])
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
            self.engine.release_midi_slot(self._slot)
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
        engine = self.engine
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
        frame_at = self.output.frame_at
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
        tell = self.on_error
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
        events already: here only what it holds is kept, and a program change or a bank
        step applied (the address space's, in both ways)."""
        engine = self.engine
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
                if value >= SWITCH_ON:
                    self.pedals.add((ch, control))
                else:
                    self.pedals.discard((ch, control))
            elif control in (CC.ALL_SOUND_OFF, CC.ALL_NOTES_OFF):
                self.held = {(c, p) for c, p in self.held if c != ch}
            elif control == CC.RESET_ALL_CONTROLLERS:  # the pedals are up
                self.pedals = {(c, n) for c, n in self.pedals if c != ch}
            elif control in self.bank_steps and value >= SWITCH_ON:  # a button pressed
                self._route(self.bank_steps[control], [ch + 1], frame)
        elif kind == 0xC0:
            self._route("/program", [args[0], ch + 1], frame)

    def _route(self, address: str, args: list, frame: int | None) -> None:
        """One message through the address space, at ``frame``. A refusal (a program
        with no patch, no bank) changes nothing and is not an error of the input: MIDI
        has no way to answer, and a keyboard sends program changes it cannot know of."""
        if self.route is None:
            return
        from server.osc import Refused  # not at import: the render process imports this module

        try:
            self.route(address, args, _MidiReply(self), frame)
        except Refused as exc:
            self.last_error = f"{exc.address}: {exc.reason}"


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
