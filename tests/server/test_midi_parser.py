"""The MIDI byte parser of the host, without JACK: running status, system messages,
broken data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.midi_in import MidiParser
from server.midiparse import RESET, SYSEX


def test_running_status_and_system_messages():
    p = MidiParser()
    assert p.feed([0x90, 60, 100]) == [(0x90, 0, (60, 100))]
    assert p.feed([62, 100, 64, 0]) == [(0x90, 0, (62, 100)), (0x90, 0, (64, 0))]
    # Real-time bytes anywhere change nothing; running status survives them.
    assert p.feed([0xF8, 65, 0xFE, 1]) == [(0x90, 0, (65, 1))]
    # SysEx cancels running status; its data bytes are skipped.
    # SysEx cancels running status: data bytes after it belong to no message.
    assert p.feed([0xF0, 1, 2, 3, 0xF7, 66, 1]) == [(SYSEX, 0, (1, 2, 3))]
    assert p.feed([0xC5, 7, 0xE1, 0x7F, 0x7F]) == [(0xC0, 5, (7,)), (0xE0, 1, (0x7F, 0x7F))]


def test_broken_messages_are_dropped():
    p = MidiParser()
    # A byte above 127 is a status byte: a short note-on, then program change 100 on ch 9.
    assert p.feed([0x90, 200, 100]) == [(0xC0, 8, (100,))]
    assert p.feed([0x90, 60]) == []
    assert p.feed([60]) == []  # running status 0x90 from above: one data byte is short
    assert p.dropped >= 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=64))
def test_any_bytes_give_only_well_formed_messages(data):
    for kind, ch, args in MidiParser().feed(data):
        if kind == RESET:
            assert (ch, args) == (0, ())
            continue
        if kind == SYSEX:
            assert ch == 0 and all(a < 0x80 for a in args)
            continue
        assert kind in (0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0) and 0 <= ch <= 15
        assert all(0 <= a <= 127 for a in args)
        assert len(args) == (1 if kind in (0xC0, 0xD0) else 2)


class _Engine:
    """Records the events an input queues (the engine's side is tested elsewhere)."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def note_on(self, ch, pitch, vel, frame=None):
        self.events.append(("on", ch, pitch, vel))

    def note_off(self, ch, pitch, frame=None):
        self.events.append(("off", ch, pitch))

    def control_change(self, ch, control, value, frame=None):
        self.events.append(("cc", ch, control, value))

    def pitch_bend(self, ch, value, frame=None):
        self.events.append(("bend", ch, value))

    def reset_channels(self, channels, frame=None):
        self.events.append(("reset", tuple(channels)))


def test_an_input_knows_what_it_holds_and_releases_exactly_that():
    """What a vanished keyboard leaves sounding: its unfinished notes and its pedals."""

    from server.midi_in import MidiInput

    engine = _Engine()
    port = MidiInput.__new__(MidiInput)  # no rtmidi port: only the bookkeeping
    port.engine = engine
    port.held, port.pedals, port.channels, port.errors = set(), set(), set(), 0
    for kind, ch, args in [
        (0x90, 0, (60, 100)), (0x90, 0, (64, 100)), (0x90, 0, (64, 0)),  # 64 ended (vel 0)
        (0x90, 1, (67, 90)), (0x80, 1, (67, 0)),  # 67 ended
        (0xB0, 2, (64, 127)), (0xB0, 3, (66, 100)), (0xB0, 3, (66, 0)),  # sostenuto up again
        (0x90, 4, (70, 90)), (0xB0, 4, (123, 0)),  # all notes off on channel 5
        (0x90, 5, (72, 90)),
    ]:
        port.handle(kind, ch, args, None)
    assert port.held == {(0, 60), (5, 72)}
    assert port.pedals == {(2, 64)}
    engine.events.clear()
    assert port.release() == 2
    assert engine.events == [("off", 0, 60), ("off", 5, 72), ("cc", 2, 64, 0)]
    assert port.held == set() and port.pedals == set() and port.release() == 0


# -- malformed MIDI: nothing swallows what follows it ------------------------------------

WELL_FORMED_AFTER = [
    [0x80, 60, 0],  # note-off
    [0x90, 62, 100],  # note-on
    [0xB0, 123, 0],  # all notes off
    [0xB5, 64, 0],  # sustain up, channel 6
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(st.integers(0, 255), max_size=40), max_size=6), st.sampled_from(WELL_FORMED_AFTER))
def test_after_any_events_the_next_whole_message_acts(garbage, message):
    """JACK MIDI: one event, one message. Whatever events came before (unfinished SysEx,
    stray data, undefined status bytes, cut messages), the next well-formed event gives
    exactly its message (System Resets from real-time bytes aside)."""
    p = MidiParser(events=True)
    for event in garbage:
        p.feed(event)
    got = [m for m in p.feed(message) if m[0] not in (RESET, SYSEX)]
    assert got == [(message[0] & 0xF0, message[0] & 0x0F, tuple(message[1:]))]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=200), st.sampled_from(WELL_FORMED_AFTER))
def test_in_a_byte_stream_the_next_status_byte_ends_anything(garbage, message):
    """A byte stream: any status byte ends what came before it, an unfinished SysEx too."""
    p = MidiParser(events=False)
    p.feed(garbage)
    got = [m for m in p.feed(message) if m[0] not in (RESET, SYSEX)]
    assert got == [(message[0] & 0xF0, message[0] & 0x0F, tuple(message[1:]))]


def _errors(events, stream=False):
    seen = []
    p = MidiParser(events=not stream, on_error=seen.append)
    out = []
    for e in events:
        out += p.feed(e)
    assert p.dropped == len(seen)
    return out, seen


def test_each_malformed_message_is_named_and_counted():
    cases = {
        "SysEx of 2 bytes ended at the event's end without F7": [[0xF0, 0x7E, 0x01]],
        "SysEx of 1 bytes ended by 0x80 without F7": [[0xF0, 0x7E, 0x80, 60, 0]],
        "data byte 0x3C with no status byte": [[60, 100]],
        "undefined status byte 0xF4": [[0xF4]],
        "undefined status byte 0xF5": [[0xF5, 1]],
        "undefined real-time byte 0xF9": [[0xF9]],
        "undefined real-time byte 0xFD": [[0xFD]],
        "an F7 (end of SysEx) with no SysEx": [[0xF7]],
        "an empty MIDI event": [[]],
        "note-on cut short at the event's end: 1 of 2 data bytes": [[0x90, 60]],
        "control change cut short by 0x90: 1 of 2 data bytes": [[0xB0, 7, 0x90, 60, 1]],
    }
    for what, events in cases.items():
        _, seen = _errors(events)
        assert seen == [what], (what, seen)
    # Well-formed input is never an error: real-time bytes inside a message, a whole
    # SysEx, system common messages, running status across events.
    out, seen = _errors([[0x90, 0xF8, 60, 0xFE, 100], [0xF0, 1, 2, 0xF7], [0xF2, 1, 2], [0xF6],
                         [0x80, 60, 0], [61, 0]])
    assert seen == []
    assert out == [(0x90, 0, (60, 100)), (SYSEX, 0, (1, 2)), (0x80, 0, (60, 0)), (0x80, 0, (61, 0))]


def test_the_cases_of_the_deaf_keyboard():
    """The issue's reproduction, event by event: a SysEx that never ends takes nothing
    after it."""
    out, seen = _errors([[0x90, 60, 100], [0xF0, 0x7E, 0x01], [0x80, 60, 0], [0x90, 62, 100],
                         [0xB0, 123, 0]])
    assert out == [(0x90, 0, (60, 100)), (0x80, 0, (60, 0)), (0x90, 0, (62, 100)), (0xB0, 0, (123, 0))]
    assert len(seen) == 1


def test_system_reset_is_reported_where_it_stands():
    out, seen = _errors([[0x90, 60, 0xFF, 100], [0xFF]])
    assert out == [(RESET, 0, ()), (0x90, 0, (60, 100)), (RESET, 0, ())] and seen == []


def test_a_byte_stream_bounds_a_sysex_in_length_and_time():
    from server.midiparse import MAX_SYSEX_BYTES, SYSEX_TIMEOUT_S

    p = MidiParser(events=False)
    assert p.feed([0xF0, 1, 2], now=0.0) == [] and p.dropped == 0  # may go on
    assert p.feed([3, 4], now=0.5) == [] and p.dropped == 0
    # Timed out: the 5 belongs to the dead SysEx; the next status byte starts afresh.
    assert p.feed([5], now=0.5 + SYSEX_TIMEOUT_S + 0.1) == []
    assert p.dropped == 1 and "unfinished after" in p.last
    assert p.feed([0x90, 60, 1], now=2.0) == [(0x90, 0, (60, 1))] and p.dropped == 1
    q = MidiParser(events=False)
    q.feed([0xF0] + [1] * (MAX_SYSEX_BYTES + 10))
    assert q.dropped == 1 and "longer than" in q.last
    # A cut event (kept in part by the JACK reader): a SysEx in it is no error.
    r = MidiParser(events=True)
    assert r.feed([0xF0, 1, 2], cut=True) == [] and r.dropped == 0
    assert r.feed([0x90, 1, 2, 3, 4], cut=True) == [(0x90, 0, (1, 2)), (0x90, 0, (3, 4))]
    assert r.dropped == 1 and "cut" in r.last


def test_a_system_reset_silences_and_resets_the_channels_its_input_played():

    from server.midi_in import MidiInput

    engine = _Engine()
    port = MidiInput.__new__(MidiInput)
    port.engine = engine
    port.held, port.pedals, port.channels, port.errors = set(), set(), set(), 0
    port.handle(0x90, 2, (60, 100), None)
    port.handle(0xB0, 2, (64, 127), None)
    port.handle(0x90, 9, (40, 100), None)
    engine.events.clear()
    port.handle(RESET, 0, (), None)
    assert engine.events == [("reset", (2, 9))]
    assert port.held == set() and port.pedals == set()
    port.handle(RESET, 0, (), None)  # nothing played since: nothing to reset
    port.handle(0x90, 4, (60, 100), None)
    port.handle(RESET, 0, (), None)
    assert engine.events == [("reset", (2, 9)), ("on", 4, 60, 100), ("reset", (4,))]


def test_malformed_midi_is_told_at_most_once_a_second_a_source(monkeypatch):

    from server import midi_in
    from server.midi_in import MidiInput

    told = []
    clock = [100.0]
    monkeypatch.setattr(midi_in.time, "monotonic", lambda: clock[0])
    port = MidiInput.__new__(MidiInput)
    port.name = "keys"
    port.on_error = lambda source, what: told.append((source, what))
    port._notice_at, port._unnoticed = -midi_in.ERROR_NOTICE_S, 0
    port._malformed("a")
    for _ in range(5):
        clock[0] += 0.1
        port._malformed("b")
    clock[0] += 0.6
    port._malformed("c")
    assert told == [("keys", "a"), ("keys", "c (and 5 more malformed since the last notice)")]


def test_a_mts_single_note_tuning_change_retunes_its_keys():
    from types import SimpleNamespace

    from server.midi_in import MidiInput, mts_single_note_tuning

    # Key 60 to 60.5 (a quarter tone up), key 61 unchanged (7F 7F 7F), key 62 to 61.
    body = (0x7F, 0x7F, 0x08, 0x02, 0, 3, 60, 60, 0x40, 0x00, 61, 0x7F, 0x7F, 0x7F, 62, 61, 0, 0)
    assert mts_single_note_tuning(body) == {60: 60.5, 62: 61.0}
    assert mts_single_note_tuning((0x7E, 0x7F, 0x06, 0x01)) == {}  # an identity request: not tuning
    p = MidiParser(events=True)
    assert p.feed([0xF0, *body, 0xF7]) == [(SYSEX, 0, body)]
    calls = []
    port = MidiInput.__new__(MidiInput)
    port.engine = SimpleNamespace(retune_keys=lambda notes, frame: calls.append(notes))
    port.handle(SYSEX, 0, body, None)
    assert calls == [{60: 60.5, 62: 61.0}]
