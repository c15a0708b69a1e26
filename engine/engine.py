"""The polyphonic engine: events in, a stereo block out.

It reads its event queue, applies each event at its sample (channel and controller
state: :mod:`engine.channels`; which voice plays a note: :mod:`engine.allocator`),
renders the voices between events (:mod:`engine.voices`) and limits the sum.

Threads: any thread may call the event methods (``note_on``, ``control_change`` ...,
from :class:`engine.sender.EventSender`); they validate their arguments, then queue an
event. Only ``render``/``render_into`` (the render thread, or an offline loop) touch the
voices.
"""

from __future__ import annotations

import numpy as np

from engine.allocator import Allocator
from engine.channels import Channels
from engine.effect_events import FX
from engine.effects import N_BUSES, Effects, SendBuses
from engine.events import IMMEDIATE, EventQueue, QueueFull
from engine.keytable import KeyTable
from engine.limiter import Limiter
from engine.sender import (
    CC,
    N_CHANNELS,
    PATCH,
    EventSender,
    _check_int,
)
from engine.voices import VoiceBank

__all__ = ["Engine", "QueueFull", "N_CHANNELS", "CC"]


class Engine(EventSender):
    """A polyphonic FM/ADSR synthesizer with 16 MIDI channels (0-15, as mido).

    Args:
        sample_rate: Hz.
        max_voices: sounding notes at once (1..1024); beyond it the engine steals.
        master_gain: linear gain before the limiter.
        queue: the event queue to read (the live engine's lives in shared memory);
            None: a private one.
    """

    def __init__(
        self,
        sample_rate: int = 48000,
        max_voices: int = 32,
        master_gain: float = 1.0,
        queue: EventQueue | None = None,
    ) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not 8000 <= sample_rate <= 384000:
            raise ValueError(f"sample_rate must be in range 8000..384000, got {sample_rate!r}")
        self.sample_rate = int(sample_rate)
        self.max_voices = _check_int("max_voices", max_voices, 1, 1024)
        # Twice the slots: a stolen voice fades out in a slot of its own.
        self.voices = VoiceBank(2 * self.max_voices, self.sample_rate)
        # A patch travels as a KeyTable reference, so events need only a few values.
        self.queue = EventQueue(capacity=8192, n_values=4) if queue is None else queue
        self.limiter = Limiter(self.sample_rate)
        self.frame = 0
        self.master_gain = master_gain
        #: Most events applied in one block (None: all that are due). A live host sets it
        #: (each event costs the callback ~20 us of Python): a burst then waits for the
        #: next blocks instead of underrunning this one. Offline renders leave it None.
        self.max_events_per_block: int | None = None
        #: Most pieces a block is rendered in (None: one per distinct event time, sample
        #: accurate). Each piece costs a whole render pass (~200 us at 32 voices paced on
        #: 2 cores), so 16 MIDI events stamped by arrival at 16 frames of one block cost
        #: ~3 ms, more than a 2.7 ms period. A live host sets it: where more event times
        #: than that fall in one block (a burst, a flood of controllers), they are
        #: rounded down to a grid of ``block / max_splits_per_block`` frames; blocks with
        #: fewer keep every event at its sample. Offline renders leave it None.
        self.max_splits_per_block: int | None = None
        #: Most key tables (patch changes) taken from a shared queue in one block (None:
        #: all): each is rebuilt from shared memory in 0.2-0.5 ms, and a burst of program
        #: changes would run a block past its deadline. A live host sets it.
        self.max_tables_per_block: int | None = None
        #: Most events waiting in the render thread's pending table (None: the queue's
        #: capacity); the rest wait in the queue's ring, in order. Every block searches
        #: the table, and 8,000 waiting events (a flood faster than blocks apply them)
        #: cost a block 1-2.5 ms. A live host sets it.
        self.max_pending: int | None = None
        #: Voice allocation and the 16 channels' state (the render thread owns both).
        self.allocator = Allocator(self.voices, self.max_voices)
        #: The send effects (reverb, chorus, delay) and the buses the voices feed them.
        self.buses = SendBuses(N_BUSES, N_CHANNELS, 512)
        self.effects = Effects(self.sample_rate)
        self.channels = Channels(self.voices, self.allocator, self.sample_rate, self.buses)
        self._out = np.zeros((0, 2), dtype=np.float32)
        self._bus_used = False

    # -- public API: any thread ----------------------------------------------------------

    @property
    def master_gain(self) -> float:
        return self._master_gain

    @master_gain.setter
    def master_gain(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 4.0:
            raise ValueError(f"master_gain must be in range 0..4, got {value!r}")
        self._master_gain = float(value)

    def channel_table(self, channel: int) -> KeyTable:
        """``channel``'s patch as of the last rendered block, ``set_param`` changes included."""
        return self.channels.table(_check_int("channel", channel, 0, 15))

    @property
    def tables(self) -> list[KeyTable]:
        """Each channel's patch, as of the last rendered block."""
        return self.channels.tables

    @property
    def patch_serial(self) -> np.ndarray:
        """Patches applied per channel so far."""
        return self.channels.patch_serial

    @property
    def pedal(self) -> np.ndarray:
        """Whether each channel's sustain pedal is down."""
        return self.channels.pedal

    @property
    def active_voices(self) -> int:
        """Voices sounding (fading ones included), as of the last rendered block."""
        return self.voices.n

    @property
    def idle(self) -> bool:
        """Nothing sounds or will without a new event: no voice, no pending event, no
        effect tail, the limiter at rest. A block rendered now would be silence."""
        return (self.voices.n == 0 and self.queue.p_count == 0 and not self.effects.active
                and self.limiter.gain == 1.0)

    def sounding_notes(self) -> list[tuple[int, int]]:
        """(channel, pitch) of voices not fading out, as of the last rendered block."""
        vb = self.voices
        n = vb.n
        live = vb.fading[:n] == 0
        return [(int(c), int(p)) for c, p in zip(vb.chan[:n][live], vb.pitch[:n][live])]

    # -- rendering: the audio thread ------------------------------------------------------

    def _buses(self, frames: int) -> SendBuses | None:
        """The send buses for the voices of this block where some channel sends (cleared
        at their first use in the block); None where none does."""
        if not self._bus_used:
            if not self.buses.sending:
                return None
            self.buses.grow(frames)
            self.buses.clear(frames)
            self._bus_used = True
        return self.buses

    def render(self, frames: int) -> np.ndarray:
        """Render the next ``frames`` frames; returns a new (frames, 2) float32 array."""
        out = np.empty((int(frames), 2), dtype=np.float32)
        self.render_into(out)
        return out

    def render_into(self, out: np.ndarray) -> None:
        """Fill ``out`` (frames, 2) float32 with the next block; safe in an audio callback."""
        frames = out.shape[0]
        out.fill(0.0)
        start = self.frame
        end = start + frames
        q = self.queue
        q.drain(self.max_tables_per_block, self.max_pending)
        # A burst (a 1000-note MIDI dump, a flood of OSC) is spread over the next blocks
        # instead of underrunning this one: what waits is marked immediate, so it keeps
        # its arrival order ahead of anything that arrives later.
        due = q.take_due(end, self.max_events_per_block)
        pos = 0
        if due is not None:
            offsets = np.clip(q.p_frame[due] - start, 0, frames - 1)
            offsets[q.p_frame[due] == IMMEDIATE] = 0
            # lexsort put IMMEDIATE (-1) first; offsets stay non-decreasing.
            splits = self.max_splits_per_block
            if splits is not None and offsets.size >= splits and (
                np.count_nonzero(np.diff(offsets)) + 1 + (offsets[0] > 0) > splits
            ):
                grid = -(-frames // splits)
                offsets = offsets // grid * grid
            for j, idx in enumerate(due):
                off = int(offsets[j])
                if off > pos:
                    self.voices.render(out[pos:off], self._buses(frames), pos)
                    pos = off
                kind = int(q.p_kind[idx])
                if kind == PATCH:
                    self.channels.set_patch(int(q.p_chan[idx]), q.take_object(idx))
                elif kind == FX:
                    self.effects.set(int(q.p_vals[idx, 0]), float(q.p_vals[idx, 1]))
                else:
                    self.channels.apply(kind, int(q.p_chan[idx]), q.p_vals[idx])
                    if self.channels.stop_tails:
                        self.channels.stop_tails = False
                        self.effects.stop()
            q.discard(due)
        if pos < frames:
            self.voices.render(out[pos:frames], self._buses(frames), pos)
        # The effects' returns, after the voices, before the master gain and the limiter.
        if self._bus_used:
            self._bus_used = False
            self.effects.process(out, self.buses.bus, self.buses.fed)
        elif self.effects.active:
            self.effects.process(out, None, self.buses.fed)
        if self._master_gain != 1.0:
            out *= self._master_gain
        self.limiter.process(out)
        self.frame = end
