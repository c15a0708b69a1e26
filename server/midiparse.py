"""Raw MIDI bytes -> channel messages and System Reset, with every malformed message
named and counted.

The rules, from the MIDI 1.0 specification:
- Running status: a channel message's status byte may be left out while it repeats, also
  from one event to the next.
- Real-time bytes (F8-FF) may sit anywhere, inside other messages included, and change
  nothing around them. FF (System Reset) is reported; F9 and FD are undefined.
- Any status byte other than a real-time one ends a SysEx. A SysEx also ends with the
  event it came in when the bytes come as events (JACK MIDI: one event, one message),
  after :data:`MAX_SYSEX_BYTES`, and after :data:`SYSEX_TIMEOUT_S` without a byte.
- SysEx and system common messages cancel running status.

So no malformed message can swallow the ones after it: at worst it costs itself and, for
a SysEx that never ends in a byte stream, the data bytes that follow it until the next
status byte.
"""

from __future__ import annotations

__all__ = ["KEPT_SYSEX_BYTES", "MAX_SYSEX_BYTES", "RESET", "SYSEX", "SYSEX_TIMEOUT_S", "MidiParser", "mts_single_note_tuning"]

#: Data bytes each channel message takes, by status high nibble.
_DATA_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_NAMES = {0x80: "note-off", 0x90: "note-on", 0xA0: "poly pressure", 0xB0: "control change",
          0xC0: "program change", 0xD0: "channel pressure", 0xE0: "pitch bend"}
#: Data bytes of the system common messages (F4 and F5 are undefined).
_COMMON_LEN = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}
#: The longest SysEx followed (the host reads none; this bounds a dump that never ends).
MAX_SYSEX_BYTES = 65536
#: A SysEx in a byte stream with no byte for this long has ended (s).
SYSEX_TIMEOUT_S = 1.0
#: The kind :meth:`MidiParser.feed` gives a System Reset (FF).
RESET = 0xFF
#: The kind it gives a whole SysEx of at most :data:`KEPT_SYSEX_BYTES` (the bytes between
#: F0 and F7): what the host reads of SysEx (MIDI Tuning Standard); longer ones (dumps)
#: are followed to their end and dropped.
SYSEX = 0xF0
KEPT_SYSEX_BYTES = 512


class MidiParser:
    """A stateful MIDI parser for one source.

    Args:
        events: the bytes come as events, each one whole message (JACK MIDI): a SysEx
            left unfinished at an event's end has ended there. False: a SysEx may span
            calls (it still ends at a status byte, a length or a timeout). A channel
            message left unfinished at the end of a call has ended either way.

    :meth:`feed` returns ``(kind, channel, data)`` tuples: a channel message's status high
    nibble (0x80 ... 0xE0), its channel 0..15 and its data bytes; ``(RESET, 0, ())``; or
    ``(SYSEX, 0, body)`` for a whole SysEx of at most :data:`KEPT_SYSEX_BYTES`.
    Malformed input is counted in :attr:`dropped` and named, the latest in :attr:`last`;
    ``on_error(what)``, if given, hears each one.
    """

    def __init__(self, events: bool = False, on_error=None) -> None:
        self.events = events
        self.on_error = on_error
        self.running: int | None = None
        self.dropped = 0
        self.last: str | None = None
        self._status: int | None = None  # the channel message being read
        self._data: list[int] = []
        self._common: int | None = None  # the system common message being read
        self._common_left = 0
        self._sysex: int | None = None  # bytes of the SysEx being read, or None
        self._body: list[int] = []  # its first KEPT_SYSEX_BYTES
        self._sysex_at = 0.0
        self._stray = False  # inside a run of data bytes with no status

    def _error(self, what: str) -> None:
        self.dropped += 1
        self.last = what
        if self.on_error is not None:
            self.on_error(what)

    def _end_partial(self, by: int | None, end_sysex: bool = True) -> None:
        """A status byte (or an event's end) arrived: whatever was unfinished ends (a
        SysEx only if ``end_sysex``)."""
        how = f"by 0x{by:02X}" if by is not None else "at the event's end"
        if end_sysex and self._sysex is not None and by != 0xF7:
            self._error(f"SysEx of {self._sysex} bytes ended {how} without F7")
            self._sysex = None
        if self._status is not None:
            need = _DATA_LEN[self._status & 0xF0]
            self._error(
                f"{_NAMES[self._status & 0xF0]} cut short {how}: "
                f"{len(self._data)} of {need} data bytes"
            )
        self._status, self._data = None, []
        if self._common is not None and self._common_left:
            self._error(f"system common 0x{self._common:02X} cut short {how}")
        self._common = None
        self._stray = False

    def feed(
        self, data, now: float | None = None, cut: bool = False
    ) -> list[tuple[int, int, tuple[int, ...]]]:
        """Parse ``data`` (bytes or ints 0..255); ``now``: its monotonic arrival time
        (for a byte stream's SysEx timeout); ``cut``: the event went on past ``data``
        (an over-long event kept in part): a SysEx in it ended unseen, not unfinished,
        and any other event that long is malformed."""
        out: list[tuple[int, int, tuple[int, ...]]] = []
        if self._sysex is not None and now is not None and now - self._sysex_at > SYSEX_TIMEOUT_S:
            self._error(f"SysEx of {self._sysex} bytes unfinished after {SYSEX_TIMEOUT_S:g} s")
            self._sysex = None
            self._stray = True  # what follows until a status byte belongs to nothing
        if not len(data) and self.events:
            self._error("an empty MIDI event")
        for b in data:
            if b >= 0xF8:  # real-time: anywhere, changes nothing around it
                if b == 0xFF:
                    out.append((RESET, 0, ()))
                elif b in (0xF9, 0xFD):
                    self._error(f"undefined real-time byte 0x{b:02X}")
                continue
            if b >= 0x80:
                self._end_partial(b)
                if b >= 0xF0:
                    self.running = None
                    if b == 0xF0:
                        self._sysex = 0
                        self._body = []
                        if now is not None:
                            self._sysex_at = now
                    elif b == 0xF7:
                        if self._sysex is None:
                            self._error("an F7 (end of SysEx) with no SysEx")
                        elif self._sysex <= KEPT_SYSEX_BYTES:
                            out.append((SYSEX, 0, tuple(self._body)))
                        self._sysex = None
                    elif b in _COMMON_LEN:
                        self._common, self._common_left = b, _COMMON_LEN[b]
                        if not self._common_left:
                            self._common = None
                    else:  # F4, F5
                        self._error(f"undefined status byte 0x{b:02X}")
                        self._stray = True  # its data bytes, if any, go with it
                else:
                    self.running = self._status = b
                continue
            # A data byte.
            if self._sysex is not None:
                self._sysex += 1
                if self._sysex <= KEPT_SYSEX_BYTES:
                    self._body.append(b)
                if now is not None:
                    self._sysex_at = now
                if self._sysex > MAX_SYSEX_BYTES:
                    self._error(f"SysEx longer than {MAX_SYSEX_BYTES} bytes")
                    self._sysex = None
                    self._stray = True
                continue
            if self._common is not None:
                self._common_left -= 1
                if not self._common_left:
                    self._common = None
                continue
            if self._status is None:
                if self.running is None:
                    if not self._stray:
                        self._error(f"data byte 0x{b:02X} with no status byte")
                        self._stray = True
                    continue
                self._status = self.running
            self._data.append(b)
            if len(self._data) == _DATA_LEN[self._status & 0xF0]:
                out.append((self._status & 0xF0, self._status & 0x0F, tuple(self._data)))
                self._data = []
                self._status = None  # the next data byte starts a running-status message
        # Every MIDI backend delivers a channel message whole: one left unfinished at the
        # end of a delivery has ended. A SysEx spans deliveries in a byte stream only.
        if cut:
            if self._sysex is None:
                self._error(f"an event longer than {len(data)} bytes (not a SysEx), cut")
            self._sysex = None
        self._end_partial(None, end_sysex=self.events)
        return out


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
