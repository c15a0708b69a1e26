"""MIDI channel state and what MIDI messages mean: patches, controllers, pedals, bend.

:class:`Channels` owns the 16 channels' state (each one's patch and live parameter
changes, bend and its range, mod wheel, volume, pan, pedals, RPN) and turns events into
changes of the voices, through the :class:`engine.allocator.Allocator`. Only the render
thread calls it (from :meth:`engine.Engine.render_into`).
"""

from __future__ import annotations

import math

import numpy as np

from engine.allocator import Allocator
from engine.effect_events import SEND
from engine.effects import N_BUSES, SEND_CC, SendBuses
from engine.expression import EXPRESSION
from engine.kernel import express
from engine.keytable import KeyTable
from engine.schema import TIMBRE_INDEX, TIMBRE_NAMES
from engine.sender import (
    BEND,
    CC,
    CONTROL,
    CURVE,
    EXPR,
    FNOTE_OFF,
    FNOTE_ON,
    MPE,
    MPE_BEND_RANGE,
    N_CHANNELS,
    NID_OFF,
    NID_ON,
    NID_PITCH,
    NID_PRESSURE,
    NID_TIMBRE,
    NOTE_OFF,
    NOTE_ON,
    PANIC,
    PARAM,
    POLY_PRESSURE,
    PRESSURE,
    RESET,
    SPEC_COMMIT,
    SPEC_STAGE,
    SPECTRUM_NAMES,
    TUNE_COMMIT,
    TUNE_STAGE,
)
from engine.voices import (
    VELOCITY_EXPONENT,
    VoiceBank,
    fnote_key,
    id_key,
    midi_to_hz,
    velocity_to_amp,
)

__all__ = ["Channels", "DEFAULT_TABLE"]

#: What a channel plays before it is given a patch.
DEFAULT_TABLE = KeyTable.flat()
_N_TIMBRE = len(TIMBRE_NAMES)
#: The timbre index of each position a spectrum's staging events address.
_SPECTRUM_INDEX = np.array([TIMBRE_INDEX[n] for n in SPECTRUM_NAMES], dtype=np.int64)


class Channels:
    """The 16 MIDI channels (0-15) of one engine.

    Args:
        voices: the engine's voice bank.
        allocator: its voice allocation.
        sample_rate: Hz (pitch increments).
    """

    def __init__(self, voices: VoiceBank, allocator: Allocator, sample_rate: int,
                 buses: SendBuses | None = None) -> None:
        self.voices = voices
        self.allocator = allocator
        self.sample_rate = sample_rate
        #: Each channel's patch; new notes read their timbre from it by key and velocity.
        self.tables: list[KeyTable] = [DEFAULT_TABLE] * N_CHANNELS
        #: Patches applied per channel (a reader in another thread or process can tell
        #: when a patch it sent is in use).
        self.patch_serial = np.zeros(N_CHANNELS, dtype=np.int64)
        # Live set_param values per channel (NaN: none); they override the table, flat.
        self._override = np.full((N_CHANNELS, _N_TIMBRE), np.nan)
        self._has_override = np.zeros(N_CHANNELS, dtype=bool)
        self.bend = np.zeros(N_CHANNELS)
        self.bend_range = np.full(N_CHANNELS, 2.0)
        self.mod_wheel = np.zeros(N_CHANNELS)
        #: Channel pressure and CC 74 (brightness), 0..1, and each channel's expression
        #: amounts (``engine.expression.EXPRESSION`` order).
        self.pressure = np.zeros(N_CHANNELS)
        self.timbre = np.zeros(N_CHANNELS)
        self.expression = np.tile(np.array([a.default for a in EXPRESSION]), (N_CHANNELS, 1))
        #: MPE: the lower zone's member channels (1..mpe; 0: MPE off). Channel 0 is then
        #: the zone's master: member channels play its patch and its expression amounts,
        #: and its bend, pressure, CC 74, mod wheel and sustain pedal act on every note
        #: of the zone; a member's act on its own note.
        self.mpe = 0
        self.volume = np.full(N_CHANNELS, 100.0)
        self.pan = np.full(N_CHANNELS, 64.0)
        self.pedal = np.zeros(N_CHANNELS, dtype=bool)
        self.sostenuto = np.zeros(N_CHANNELS, dtype=bool)
        self._rpn = np.full((N_CHANNELS, 2), 127, dtype=np.int64)
        self._rpn_data = np.zeros((N_CHANNELS, 2))
        self._gain_lr = np.zeros((N_CHANNELS, 2))
        #: The velocity curve's exponent for new notes (``EventSender.set_velocity_curve``).
        self.velocity_exponent = VELOCITY_EXPONENT
        #: The (fractional) MIDI note each key sounds (``EventSender.set_tuning``; NaN:
        #: unmapped), and the one being received.
        self.tuning = np.arange(128, dtype=np.float64)
        self._tuning_next = self.tuning.copy()
        # Spectrum levels being received per channel (``EventSender.set_spectrum``), by
        # position in SPECTRUM_NAMES; NaN: not part of the change.
        self._spectrum_next = np.full((N_CHANNELS, len(SPECTRUM_NAMES)), np.nan)
        for ch in range(N_CHANNELS):
            self._update_channel_gain(ch)
        #: Each channel's send level to each effect bus (``engine.effects``), 0..1; the
        #: kernel reads the levels the voices use from ``buses.send[1]`` (an MPE member's
        #: are its master's).
        self.send_level = np.zeros((N_BUSES, N_CHANNELS))
        self.buses = SendBuses(N_BUSES, N_CHANNELS, 0) if buses is None else buses
        #: Set when an event asks the effects' tails to stop (all sound off, System
        #: Reset, panic); the engine clears it.
        self.stop_tails = False

    def table(self, ch: int) -> KeyTable:
        """``ch``'s patch with its ``set_param`` changes applied."""
        table = self.tables[ch]
        for i, v in enumerate(self._override[ch].tolist()):
            if not np.isnan(v):
                table = table.with_param(TIMBRE_NAMES[i], v)
        return table

    def set_patch(self, ch: int, table: KeyTable) -> None:
        """New notes on ``ch`` play ``table``; its ``set_param`` changes are dropped."""
        self.tables[ch] = table
        self.patch_serial[ch] += 1
        self._override[ch] = np.nan
        self._has_override[ch] = False

    def apply(self, kind: int, ch: int, vals: np.ndarray) -> None:
        """Apply one event of ``kind`` (engine.sender's kinds, not PATCH) to ``ch``."""
        if kind == NOTE_ON:
            self.note_on(ch, int(vals[0]), float(vals[1]))
        elif kind == NOTE_OFF:
            self.note_off(ch, int(vals[0]))
        elif kind == CONTROL:
            self.control(ch, int(vals[0]), int(vals[1]))
        elif kind == BEND:
            self.bend[ch] = vals[0]
            self._update_pitch(ch)
        elif kind == PARAM:
            self.param(ch, int(vals[0]), float(vals[1]))
        elif kind == RESET:
            self.reset(int(vals[0]))
        elif kind == CURVE:
            self.velocity_exponent = float(vals[0])
        elif kind == TUNE_STAGE:
            k, n = int(vals[0]), int(vals[1])
            self._tuning_next[k : k + n] = vals[2 : 2 + n]
        elif kind == TUNE_COMMIT:
            self.tuning[:] = self._tuning_next
            vb = self.voices
            keys = np.flatnonzero(vb.fnote[: vb.n] == 0)  # sounding notes: their key's new note
            vb.note[keys] = self.tuning[vb.pitch[keys].astype(np.int64)]
            for c in range(N_CHANNELS):
                self._update_pitch(c)
        elif kind == SPEC_STAGE:
            j, n = int(vals[0]), int(vals[1])
            if n < 0:  # a group's first event
                self._spectrum_next[ch] = np.nan
                n = -n
            self._spectrum_next[ch, j : j + n] = vals[2 : 2 + n]
        elif kind == SPEC_COMMIT:
            self.spectrum(ch)
        elif kind == FNOTE_ON:
            self.fnote_on(ch, float(vals[0]), float(vals[1]))
        elif kind == FNOTE_OFF:
            self._release(ch, self.allocator.find_key(fnote_key(ch, float(vals[0]))))
        elif kind == PRESSURE:
            self.pressure[ch] = vals[0]
            self._express(ch)
        elif kind == POLY_PRESSURE:
            i = self.allocator.find(ch, int(vals[0]))
            if i >= 0:
                self.voices.n_press[i] = vals[1]
                self._express(ch, i)
        elif kind == EXPR:
            self.expression[ch, int(vals[0])] = vals[1]
            self._express(ch)
        elif kind == MPE:
            self.set_mpe(int(vals[0]))
        elif kind == NID_ON:
            self.id_note_on(ch, int(vals[0]), float(vals[1]), float(vals[2]))
        elif kind >= NID_OFF and kind <= NID_TIMBRE:
            self.id_note(kind, int(vals[0]), float(vals[1]))
        elif kind == SEND:
            self.set_send(ch, int(vals[0]), float(vals[1]))
        elif kind == PANIC:
            vb = self.voices
            vb.fade(np.flatnonzero(vb.fading[: vb.n] == 0))
            self.pedal[:] = False
            self.sostenuto[:] = False
            self.stop_tails = True

    def set_send(self, ch: int, bus: int, level: float) -> None:
        """``ch`` sends to effect bus ``bus`` at ``level`` (0..1), sounding notes included
        (they glide there)."""
        self.send_level[bus, ch] = level
        self._update_sends()

    def _update_sends(self) -> None:
        target = self.buses.send[1]
        target[:] = self.send_level
        if self.mpe:  # member channels send as their master does
            target[:, 1 : self.mpe + 1] = self.send_level[:, :1]

    def note_on(self, ch: int, pitch: int, velocity: float) -> None:
        note = float(self.tuning[pitch])
        if math.isnan(note):
            return  # a key the tuning leaves unmapped sounds nothing
        self._start(ch, pitch, note, velocity, self.allocator.find(ch, pitch), None)

    def fnote_on(self, ch: int, hz: float, velocity: float) -> None:
        """A note at ``hz``: the nearest key's timbre, its own identity (``fnote_key``)."""
        note = 69.0 + 12.0 * math.log2(hz / 440.0)
        key = fnote_key(ch, hz)
        pitch = min(127, max(0, int(round(note))))
        self._start(ch, pitch, note, velocity, self.allocator.find_key(key), key)

    def id_note_on(self, ch: int, note_id: int, note: float, velocity: float) -> None:
        """An OSC id note (``EventSender.note_id_on``): at the fractional MIDI note
        ``note`` whatever the tuning, the nearest key's timbre, known by its id."""
        key = id_key(note_id)
        pitch = min(127, max(0, int(round(note))))
        self._start(ch, pitch, note, velocity, self.allocator.find_key(key), key)

    def id_note(self, kind: int, note_id: int, value: float) -> None:
        """An id note's off, pitch offset, pressure or timbre; no such note: nothing."""
        i = self.allocator.find_key(id_key(note_id))
        if i < 0:
            return
        vb = self.voices
        ch = int(vb.chan[i])
        if kind == NID_OFF:
            self._release(ch, i)
        elif kind == NID_PITCH:
            vb.n_bend[i] = value
            vb.inc_c[i] = self._inc(ch, vb.note[i] + value)
        else:
            (vb.n_press if kind == NID_PRESSURE else vb.n_timbre)[i] = value
            self._express(ch, i)

    def _express(self, ch: int, one: int = -1, fresh: bool = False) -> None:
        """Voice ``one``'s expression targets (-1: every voice of ``ch``, and under MPE
        of the master channel every voice of the zone), from the channel's pressure, CC 74
        and mod wheel (a member's plus its master's) and each voice's own (compiled)."""
        vb = self.voices
        if self._member(ch):
            express(vb.state, vb.n, ch, one, self.pressure[ch] + self.pressure[0], self.timbre[ch] + self.timbre[0],
                    min(1.0, (self.mod_wheel[ch] + self.mod_wheel[0]) / 127.0), self.expression[0],
                    self.sample_rate, fresh)
            return
        express(vb.state, vb.n, ch, one, self.pressure[ch], self.timbre[ch], self.mod_wheel[ch] / 127.0,
                self.expression[ch], self.sample_rate, fresh)
        if ch == 0 and one < 0 and self.mpe:
            for c in range(1, self.mpe + 1):
                self._express(c)

    def _member(self, ch: int) -> bool:
        """Whether ``ch`` is a member channel of the MPE zone."""
        return 0 < ch <= self.mpe

    def set_mpe(self, members: int) -> None:
        """MPE's lower zone with ``members`` member channels (1..15; 0: MPE off): the
        members' bend range becomes 48 semitones, the master's 2 (MPE's defaults)."""
        old = self.mpe
        self.mpe = max(0, min(15, members))
        self.bend_range[1 : max(old, self.mpe) + 1] = 2.0
        if self.mpe:
            self.bend_range[1 : self.mpe + 1] = MPE_BEND_RANGE
            self.bend_range[0] = 2.0
        for c in range(N_CHANNELS):
            self._update_pitch(c)
        self._update_sends()

    def _start(self, ch: int, pitch: int, note: float, velocity: float, i: int, key: float | None) -> None:
        vb = self.voices
        src = 0 if self._member(ch) else ch  # an MPE member plays its master's patch
        retrigger = i >= 0
        if not retrigger:
            i = self.allocator.allocate()
            vb.claim(i, ch, pitch, key)
        self.allocator.touch(i)
        vb.note[i] = note
        vb.fnote[i] = 0.0 if key is None else 1.0
        pt = self.tables[src].lookup(pitch, int(velocity))
        if self._has_override[src]:
            ov = self._override[src]
            pt = np.where(np.isnan(ov), pt, ov)
        vb.start(
            i,
            pt,
            pitch,
            float(velocity_to_amp(velocity, self.velocity_exponent)),
            self._inc(ch, note),
            gain_l=self._gain_lr[src, 0],
            gain_r=self._gain_lr[src, 1],
            mod_scale=1.0 + self.mod_wheel[ch] / 127.0,
            retrigger=retrigger,
        )
        vb.n_bend[i] = 0.0
        self._express(ch, i, fresh=not retrigger)

    def note_off(self, ch: int, pitch: int) -> None:
        self._release(ch, self.allocator.find(ch, pitch))

    def _release(self, ch: int, i: int) -> None:
        """Key up for voice ``i`` of ``ch`` (-1: none): released, or held by a pedal."""
        vb = self.voices
        if i < 0 or vb.held[i] == 0:
            return
        if self.pedal[ch] or (self._member(ch) and self.pedal[0]):
            vb.held[i] = 0.0
            vb.pedal_held[i] = 1.0
        elif vb.sost[i]:
            vb.held[i] = 0.0  # the sostenuto pedal holds it until it is lifted
        else:
            vb.start_release(i)

    def control(self, ch: int, control: int, value: int) -> None:
        vb = self.voices
        if control == CC.MOD_WHEEL:
            self.mod_wheel[ch] = value
            self._express(ch)  # the index's scale and the vibrato's depth
        elif control == CC.BRIGHTNESS:
            self.timbre[ch] = value / 127.0
            self._express(ch)
        elif control in (CC.VOLUME, CC.PAN):
            (self.volume if control == CC.VOLUME else self.pan)[ch] = value
            self._update_channel_gain(ch)
            idx = self.allocator.channel(ch)
            vb.gain_l_tgt[idx] = vb.amp[idx] * self._gain_lr[ch, 0]
            vb.gain_r_tgt[idx] = vb.amp[idx] * self._gain_lr[ch, 1]
        elif control == CC.SUSTAIN:
            down = value >= 64
            if self.pedal[ch] and not down:
                idx = self._zone_voices(ch) if ch == 0 and self.mpe else self.allocator.channel(ch)
                idx = idx[vb.pedal_held[idx] > 0]
                vb.pedal_held[idx] = 0.0
                idx = idx[vb.sost[idx] == 0]  # the sostenuto pedal still holds those
                if idx.size:
                    vb.start_release(idx)
            self.pedal[ch] = down
        elif control == CC.SOSTENUTO:
            down = value >= 64
            idx = self.allocator.channel(ch)
            if down and not self.sostenuto[ch]:
                # It holds the notes sounding now (keys down, or held by the sustain
                # pedal); notes started later are not held by it.
                idx = idx[(vb.released[idx] == 0) & ((vb.held[idx] > 0) | (vb.pedal_held[idx] > 0))]
                vb.sost[idx] = 1.0
            elif not down and self.sostenuto[ch]:
                idx = idx[vb.sost[idx] > 0]
                vb.sost[idx] = 0.0
                idx = idx[(vb.held[idx] == 0) & (vb.released[idx] == 0)]
                if self.pedal[ch]:
                    vb.pedal_held[idx] = 1.0
                elif idx.size:
                    vb.start_release(idx)
            self.sostenuto[ch] = down
        elif control in (CC.RPN_MSB, CC.RPN_LSB):
            self._rpn[ch, 0 if control == CC.RPN_MSB else 1] = value
        elif control in (CC.NRPN_MSB, CC.NRPN_LSB):
            self._rpn[ch] = 127  # data entry after an NRPN must not touch an RPN
        elif control in (CC.DATA_ENTRY_MSB, CC.DATA_ENTRY_LSB):
            if control == CC.DATA_ENTRY_MSB and ch == 0 and self._rpn[ch, 0] == 0 and self._rpn[ch, 1] == 6:
                # RPN 6 on channel 1, the MPE Configuration Message: the lower zone's
                # member channels (0: MPE off).
                self.set_mpe(value)
            elif self._rpn[ch, 0] == 0 and self._rpn[ch, 1] == 0 and self._member(ch):
                # A member's bend range is every member's (the MPE spec).
                self._rpn_data[ch, 0 if control == CC.DATA_ENTRY_MSB else 1] = value
                self.bend_range[1 : self.mpe + 1] = self._rpn_data[ch, 0] + self._rpn_data[ch, 1] / 100.0
                for c in range(1, self.mpe + 1):
                    self._update_pitch(c)
            elif self._rpn[ch, 0] == 0 and self._rpn[ch, 1] == 0:
                self._rpn_data[ch, 0 if control == CC.DATA_ENTRY_MSB else 1] = value
                # RPN 0: semitones (MSB) + cents (LSB).
                self.bend_range[ch] = self._rpn_data[ch, 0] + self._rpn_data[ch, 1] / 100.0
                self._update_pitch(ch)
        elif control in SEND_CC:
            self.set_send(ch, SEND_CC[control], value / 127.0)
        elif control == CC.ALL_SOUND_OFF:
            vb.fade(self.allocator.channel(ch))
            self.stop_tails = True  # the buses are shared: every channel's tail stops
        elif control == CC.RESET_ALL_CONTROLLERS:
            # RP-015: mod wheel, bend and pressure (channel and key) to 0; CC 74 stays.
            self.mod_wheel[ch] = 0.0
            self.pressure[ch] = 0.0
            vb.n_press[self.allocator.channel(ch)] = 0.0
            self._express(ch)
            self.bend[ch] = 0.0
            self._update_pitch(ch)
            self._rpn[ch] = 127
            self.control(ch, CC.SUSTAIN, 0)
            self.control(ch, CC.SOSTENUTO, 0)
        elif control == CC.ALL_NOTES_OFF:
            idx = self.allocator.channel(ch)
            idx = idx[vb.released[idx] == 0]
            if idx.size:
                vb.start_release(idx)

    def reset(self, mask: int) -> None:
        """All sound off (5 ms fades) and reset all controllers (mod wheel, bend, RPN,
        pedals) on the channels whose bit is set in ``mask``, in a few array operations:
        as CC 120 and CC 121 on each of them, at the cost of one event."""
        chans = np.array([c for c in range(N_CHANNELS) if mask >> c & 1], dtype=np.int64)
        selected = np.zeros(N_CHANNELS, dtype=bool)
        selected[chans] = True
        vb = self.voices
        n = vb.n
        mine = np.flatnonzero(selected[vb.chan[:n].astype(np.int64)])
        idx = mine[vb.fading[mine] == 0]
        if idx.size:
            vb.fade(idx)  # they fade with the mod wheel they had, as after CC 120
        self.mod_wheel[chans] = 0.0
        self.pressure[chans] = 0.0
        self.bend[chans] = 0.0
        self._rpn[chans] = 127
        self.pedal[chans] = False
        self.sostenuto[chans] = False
        self.send_level[:, chans] = 0.0  # a System Reset: power-up sends
        self._update_sends()
        self.stop_tails = True
        if mine.size:  # bend 0: every voice of those channels at its own note
            vb.inc_c[mine] = self._note_inc(vb.note[mine] + vb.n_bend[mine])

    def param(self, ch: int, t_index: int, value: float) -> None:
        self._override[ch, t_index] = value
        self._has_override[ch] = True
        self.voices.set_live(self.allocator.channel(ch), t_index, value)

    def spectrum(self, ch: int) -> None:
        """Apply the spectrum levels staged for ``ch`` all at once, as ``set_param``
        changes: sounding notes rebuild their tables before the next chunk."""
        staged = self._spectrum_next[ch]
        pos = np.flatnonzero(~np.isnan(staged))
        if not pos.size:
            return
        idx = self.allocator.channel(ch)
        self._override[ch, _SPECTRUM_INDEX[pos]] = staged[pos]
        self._has_override[ch] = True
        for t_index, value in zip(_SPECTRUM_INDEX[pos].tolist(), staged[pos].tolist()):
            self.voices.set_live(idx, t_index, value)
        staged[:] = np.nan

    def _inc(self, ch: int, note: float | np.ndarray) -> float | np.ndarray:
        """The phase increment of (fractional) MIDI note ``note`` on ``ch``, bent (an MPE
        member by its own bend and its master's)."""
        if self._member(ch):
            note = note + self.bend[0] / 8192.0 * self.bend_range[0]
        return self._note_inc(note + self.bend[ch] / 8192.0 * self.bend_range[ch])

    def _note_inc(self, note: float | np.ndarray) -> float | np.ndarray:
        """The carrier's phase increment of (fractional) MIDI note ``note``, radians a sample."""
        return 2.0 * math.pi * midi_to_hz(note) / self.sample_rate

    def _zone_voices(self, ch: int) -> np.ndarray:
        """Voices of the MPE zone (master ``ch`` 0 and its members) not fading out."""
        vb = self.voices
        n = vb.n
        return np.flatnonzero((vb.chan[:n] <= self.mpe) & (vb.fading[:n] == 0))

    def _update_pitch(self, ch: int) -> None:
        if ch == 0 and self.mpe:  # the master's bend moves every note of the zone
            for c in range(1, self.mpe + 1):
                self._update_pitch_of(c)
        self._update_pitch_of(ch)

    def _update_pitch_of(self, ch: int) -> None:
        vb = self.voices
        idx = np.flatnonzero(vb.chan[: vb.n] == ch)
        if idx.size:
            vb.inc_c[idx] = self._inc(ch, vb.note[idx] + vb.n_bend[idx])

    def _update_channel_gain(self, ch: int) -> None:
        vol = (self.volume[ch] / 127.0) ** 2
        # 0 = left, 64 = centre, 127 = right; equal-power law, exact at the centre.
        pos = (self.pan[ch] - 64.0) / (64.0 if self.pan[ch] <= 64 else 63.0)
        angle = (pos + 1.0) * (math.pi / 4.0)
        self._gain_lr[ch] = (vol * math.cos(angle), vol * math.sin(angle))

