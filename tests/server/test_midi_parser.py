"""The MIDI byte parser of the host, without JACK: running status, system messages,
broken data."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.midi_in import MidiParser


def test_running_status_and_system_messages():
    p = MidiParser()
    assert p.feed([0x90, 60, 100]) == [(0x90, 0, (60, 100))]
    assert p.feed([62, 100, 64, 0]) == [(0x90, 0, (62, 100)), (0x90, 0, (64, 0))]
    # Real-time bytes anywhere change nothing; running status survives them.
    assert p.feed([0xF8, 65, 0xFE, 1]) == [(0x90, 0, (65, 1))]
    # SysEx cancels running status; its data bytes are skipped.
    # SysEx cancels running status: data bytes after it belong to no message.
    assert p.feed([0xF0, 1, 2, 3, 0xF7, 66, 1]) == []
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


def test_an_input_knows_what_it_holds_and_releases_exactly_that():
    """What a vanished keyboard leaves sounding: its unfinished notes and its pedals."""
    from types import SimpleNamespace

    from server.midi_in import MidiInput

    engine = _Engine()
    port = MidiInput.__new__(MidiInput)  # no rtmidi port: only the bookkeeping
    port.host = SimpleNamespace(engine=engine, bank=None)
    port.held, port.pedals, port.errors = set(), set(), 0
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
