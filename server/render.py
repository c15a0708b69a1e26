"""The render process in JACK's cycle, with the MIDI of each cycle: ``python -m server.render``.

The engine's render process (engine/live.py) renders each block when JACK's cycle asks
for it (engine/jackout.py). This entry point gives it :class:`CycleMidi`, which reads
the host's JACK MIDI inputs from the shared memory, in the cycle that brought them:
their clients run before ours (each connects an output to our ``order`` input), so each
event of this cycle is queued at its own frame of the block now rendering, as
FluidSynth plays it. The host's input (server/midi_in.py) still reads the same events,
a moment later, for what only the host does: the notes an input holds (let go of when
its source vanishes), program changes from the bank, the notices of malformed MIDI.
"""

from __future__ import annotations

import json
import sys

from engine.render_process import render_main
from engine.sender import LocalSender
from server.jackmidi import _GEN, _READ2, _SYNC, read_events
from server.midi_in import queue_midi
from server.midiparse import RESET, SYSEX, MidiParser

__all__ = ["CycleMidi", "MAX_EVENTS_PER_CYCLE", "MAX_BYTES_PER_CYCLE", "main"]

#: Most MIDI events, and bytes, the render loop takes in one cycle (all inputs): a MIDI
#: cable carries about 3 events a cycle (128 frames at 48 kHz); a burst (a 1000-note
#: dump, a stream of junk) is taken over the next cycles, each event at the start of the
#: block it is taken in, instead of running the block past JACK's deadline.
MAX_EVENTS_PER_CYCLE = 32
MAX_BYTES_PER_CYCLE = 1024
#: A JACK MIDI event is one message (3 bytes, and real-time bytes inside it), or a SysEx.
#: A longer event that is not a SysEx is malformed, and of SysEx only the MIDI Tuning
#: Standard's real-time single-note change (F0 7F dev 08 02 ...) acts on the engine: the
#: render loop skips the rest unparsed (a 3 KB event of junk parsed byte by byte in
#: Python took a block's time). The host's input still parses each one, to count and
#: tell what was malformed.
SHORT_EVENT = 16


def _acts_here(data: bytes) -> bool:
    """Whether an event is worth the render loop's parsing: a message (with any real-time
    bytes inside it, as MIDI allows: at most :data:`SHORT_EVENT` bytes), or an MTS
    single-note change."""
    if data[:1] != b"\xf0":
        return len(data) <= SHORT_EVENT
    return len(data) >= 5 and data[1] in (0x7E, 0x7F) and data[3] == 0x08 and data[4] == 0x02


class CycleMidi:
    """Queues, for the block about to render, the events each MIDI area brought.

    Args:
        engine: the render process's Engine.
        areas: ``[(state, ring)]``, the shared MIDI areas (engine.live.MIDI_SLOTS).
    """

    def __init__(self, engine, areas) -> None:
        self.sender = LocalSender(engine.queue)
        self.areas = areas
        self._gen = [0] * len(areas)
        self._parsers: list[MidiParser | None] = [None] * len(areas)
        self._played: list[set[int]] = [set() for _ in areas]
        self.errors = 0
        self.last_error: str | None = None

    def feed(self, jack_frame: int, engine_frame: int, frames: int) -> None:
        """Queue this cycle's events: the cycle starts at JACK frame ``jack_frame``,
        which is ``engine_frame``; an event ``k`` frames into it is queued at
        ``engine_frame + k`` (one from an earlier cycle at the block's start)."""
        left_events, left_bytes = MAX_EVENTS_PER_CYCLE, MAX_BYTES_PER_CYCLE
        for i, (state, ring) in enumerate(self.areas):
            if not state[_SYNC]:
                continue
            if state[_GEN] != self._gen[i]:
                self._gen[i] = int(state[_GEN])
                self._parsers[i] = MidiParser(events=True)
                self._played[i] = set()
            if left_events <= 0 or left_bytes <= 0:
                break
            events = read_events(state, ring, _READ2, left_events, left_bytes)
            if not events:
                continue
            left_events -= len(events)
            left_bytes -= sum(len(e[1]) for e in events)
            parser, played = self._parsers[i], self._played[i]
            for frame, data, size in events:
                if not _acts_here(data):
                    parser.running = None  # as after a SysEx or a malformed event
                    continue
                k = (frame - jack_frame) & 0xFFFFFFFF
                at = engine_frame + (k if k < frames else 0)
                try:
                    for kind, ch, args in parser.feed(data, None, cut=size > len(data)):
                        queue_midi(self.sender, kind, ch, args, at, played)
                        if kind == RESET:
                            played.clear()
                        elif kind != SYSEX:
                            played.add(ch)
                except Exception as exc:  # noqa: BLE001 - counted; the host tells the player
                    self.errors += 1
                    self.last_error = repr(exc)


def main() -> int:
    return render_main(json.loads(sys.argv[1]), make_midi=CycleMidi)


if __name__ == "__main__":
    sys.exit(main())
