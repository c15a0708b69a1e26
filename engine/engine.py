"""The polyphonic engine: 16 MIDI channels, voice allocation, events, limiter.

Threads: any thread may call the event methods (``note_on``, ``control_change`` ...,
from :class:`engine.sender.EventSender`); they validate their arguments, then queue an
event. Only ``render``/``render_into`` (the render thread, or an offline loop) touch the
voices.
"""

from __future__ import annotations

import math

import numpy as np

from engine.events import IMMEDIATE, EventQueue, QueueFull
from engine.keytable import KeyTable
from engine.limiter import Limiter
from engine.schema import TIMBRE_INDEX, TIMBRE_NAMES, Theta
from engine.sender import (
    BEND,
    CC,
    CONTROL,
    N_CHANNELS,
    NOTE_OFF,
    NOTE_ON,
    PANIC,
    PARAM,
    PATCH,
    EventSender,
    _check_int,
)
from engine.voices import VoiceBank, midi_to_hz, noise_start, velocity_to_amp

__all__ = ["Engine", "QueueFull", "N_CHANNELS", "CC"]

_T = TIMBRE_INDEX
_DEFAULT_TABLE = KeyTable.flat(Theta())
_N_TIMBRE = len(TIMBRE_NAMES)


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
        self._age = 0.0
        # Channel state (audio thread owns it once rendering has begun).
        #: Each channel's patch; new notes read their timbre from it by key and velocity.
        self.tables: list[KeyTable] = [_DEFAULT_TABLE] * N_CHANNELS
        #: Patches applied per channel (a reader in another thread or process can tell
        #: when a patch it sent is in use).
        self.patch_serial = np.zeros(N_CHANNELS, dtype=np.int64)
        # Live set_param values per channel (NaN: none); they override the table, flat.
        self._override = np.full((N_CHANNELS, _N_TIMBRE), np.nan)
        self._has_override = np.zeros(N_CHANNELS, dtype=bool)
        self.bend = np.zeros(N_CHANNELS)
        self.bend_range = np.full(N_CHANNELS, 2.0)
        self.mod_wheel = np.zeros(N_CHANNELS)
        self.volume = np.full(N_CHANNELS, 100.0)
        self.pan = np.full(N_CHANNELS, 64.0)
        self.pedal = np.zeros(N_CHANNELS, dtype=bool)
        self.sostenuto = np.zeros(N_CHANNELS, dtype=bool)
        self._rpn = np.full((N_CHANNELS, 2), 127, dtype=np.int64)
        self._rpn_data = np.zeros((N_CHANNELS, 2))
        self._gain_lr = np.zeros((N_CHANNELS, 2))
        for ch in range(N_CHANNELS):
            self._update_channel_gain(ch)
        self._out = np.zeros((0, 2), dtype=np.float32)

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
        ch = _check_int("channel", channel, 0, 15)
        table = self.tables[ch]
        for i, v in enumerate(self._override[ch].tolist()):
            if not np.isnan(v):
                table = table.with_param(TIMBRE_NAMES[i], v)
        return table

    @property
    def active_voices(self) -> int:
        """Voices sounding (fading ones included), as of the last rendered block."""
        return self.voices.n

    def sounding_notes(self) -> list[tuple[int, int]]:
        """(channel, pitch) of voices not fading out, as of the last rendered block."""
        vb = self.voices
        n = vb.n
        live = vb.fading[:n] == 0
        return [(int(c), int(p)) for c, p in zip(vb.chan[:n][live], vb.pitch[:n][live])]

    # -- rendering: the audio thread ------------------------------------------------------

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
        q.drain()
        due = q.take_due(end)
        cap = self.max_events_per_block
        if due is not None and cap is not None and due.size > cap:
            # A burst (a 1000-note MIDI dump, a flood of OSC) is spread over the next
            # blocks instead of underrunning this one. What waits is marked immediate, so
            # it keeps its arrival order ahead of anything that arrives later.
            q.p_frame[due[cap:]] = IMMEDIATE
            due = due[:cap]
        pos = 0
        if due is not None:
            offsets = np.clip(q.p_frame[due] - start, 0, frames - 1)
            offsets[q.p_frame[due] == IMMEDIATE] = 0
            # lexsort put IMMEDIATE (-1) first; offsets stay non-decreasing.
            for j, idx in enumerate(due):
                off = int(offsets[j])
                if off > pos:
                    self.voices.render(out[pos:off])
                    pos = off
                kind = int(q.p_kind[idx])
                if kind == PATCH:
                    ch = int(q.p_chan[idx])
                    self.tables[ch] = q.take_object(idx)
                    self.patch_serial[ch] += 1
                    self._override[ch] = np.nan
                    self._has_override[ch] = False
                else:
                    self._apply(kind, int(q.p_chan[idx]), q.p_vals[idx])
            q.discard(due)
        if pos < frames:
            self.voices.render(out[pos:frames])
        if self._master_gain != 1.0:
            out *= self._master_gain
        self.limiter.process(out)
        self.frame = end

    # -- event handling (audio thread) ----------------------------------------------------

    def _apply(self, kind: int, ch: int, vals: np.ndarray) -> None:
        if kind == NOTE_ON:
            self._note_on(ch, int(vals[0]), float(vals[1]))
        elif kind == NOTE_OFF:
            self._note_off(ch, int(vals[0]))
        elif kind == CONTROL:
            self._cc(ch, int(vals[0]), int(vals[1]))
        elif kind == BEND:
            self.bend[ch] = vals[0]
            self._update_pitch(ch)
        elif kind == PARAM:
            self._param(ch, int(vals[0]), float(vals[1]))
        elif kind == PANIC:
            vb = self.voices
            vb.fade(np.flatnonzero(vb.fading[: vb.n] == 0))
            self.pedal[:] = False
            self.sostenuto[:] = False

    def _find(self, ch: int, pitch: int) -> int:
        vb = self.voices
        n = vb.n
        hit = np.flatnonzero((vb.chan[:n] == ch) & (vb.pitch[:n] == pitch) & (vb.fading[:n] == 0))
        return int(hit[0]) if hit.size else -1

    def _note_on(self, ch: int, pitch: int, velocity: float) -> None:
        vb = self.voices
        i = self._find(ch, pitch)
        retrigger = i >= 0
        if not retrigger:
            i = self._allocate()
            vb.chan[i] = ch
            vb.pitch[i] = pitch
        self._age += 1.0
        vb.age[i] = self._age
        vb.held[i] = 1.0
        pt = self.tables[ch].lookup(pitch, int(velocity))
        if self._has_override[ch]:
            ov = self._override[ch]
            pt = np.where(np.isnan(ov), pt, ov)
        vb.set_timbre(i, pt, fresh=not retrigger)
        amp = float(velocity_to_amp(velocity))
        vb.amp[i] = amp
        vb.gain_l_tgt[i] = amp * self._gain_lr[ch, 0]
        vb.gain_r_tgt[i] = amp * self._gain_lr[ch, 1]
        vb.mod_scale[i] = 1.0 + self.mod_wheel[ch] / 127.0
        vb.inc_c[i] = self._inc(ch, pitch)
        if retrigger:
            vb.retrigger(i)
        else:
            # A fresh voice: its gains start at their targets.
            vb.gain_l[i] = vb.gain_l_tgt[i]
            vb.gain_r[i] = vb.gain_r_tgt[i]
            vb.noise_first[i] = noise_start(pitch)  # t_on is 0 in a fresh slot

    def _allocate(self) -> int:
        """A free slot; else steal the quietest released voice; else the oldest."""
        vb = self.voices
        n = vb.n
        live = vb.fading[:n] == 0
        if int(live.sum()) >= self.max_voices:
            released = np.flatnonzero(live & (vb.released[:n] > 0))
            if released.size:
                victim = released[np.argmin(vb.level[:n][released])]
            else:
                cand = np.flatnonzero(live)
                victim = cand[np.argmin(vb.age[:n][cand])]
            vb.fade(int(victim))
        if vb.n >= vb.capacity:
            # Every spare slot is fading: cut the quietest fade short.
            fading = np.flatnonzero(vb.fading[: vb.n] > 0)
            vb.remove(int(fading[np.argmin(vb.level[: vb.n][fading])]))
        return vb.add()

    def _note_off(self, ch: int, pitch: int) -> None:
        vb = self.voices
        i = self._find(ch, pitch)
        if i < 0 or vb.held[i] == 0:
            return
        if self.pedal[ch]:
            vb.held[i] = 0.0
            vb.pedal_held[i] = 1.0
        elif vb.sost[i]:
            vb.held[i] = 0.0  # the sostenuto pedal holds it until it is lifted
        else:
            vb.start_release(i)

    def _channel_voices(self, ch: int) -> np.ndarray:
        vb = self.voices
        n = vb.n
        return np.flatnonzero((vb.chan[:n] == ch) & (vb.fading[:n] == 0))

    def _cc(self, ch: int, control: int, value: int) -> None:
        vb = self.voices
        if control == CC.MOD_WHEEL:
            self.mod_wheel[ch] = value
            vb.mod_scale[self._channel_voices(ch)] = 1.0 + value / 127.0
        elif control in (CC.VOLUME, CC.PAN):
            (self.volume if control == CC.VOLUME else self.pan)[ch] = value
            self._update_channel_gain(ch)
            idx = self._channel_voices(ch)
            vb.gain_l_tgt[idx] = vb.amp[idx] * self._gain_lr[ch, 0]
            vb.gain_r_tgt[idx] = vb.amp[idx] * self._gain_lr[ch, 1]
        elif control == CC.SUSTAIN:
            down = value >= 64
            if self.pedal[ch] and not down:
                idx = self._channel_voices(ch)
                idx = idx[vb.pedal_held[idx] > 0]
                vb.pedal_held[idx] = 0.0
                idx = idx[vb.sost[idx] == 0]  # the sostenuto pedal still holds those
                if idx.size:
                    vb.start_release(idx)
            self.pedal[ch] = down
        elif control == CC.SOSTENUTO:
            down = value >= 64
            idx = self._channel_voices(ch)
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
            if self._rpn[ch, 0] == 0 and self._rpn[ch, 1] == 0:
                self._rpn_data[ch, 0 if control == CC.DATA_ENTRY_MSB else 1] = value
                # RPN 0: semitones (MSB) + cents (LSB).
                self.bend_range[ch] = self._rpn_data[ch, 0] + self._rpn_data[ch, 1] / 100.0
                self._update_pitch(ch)
        elif control == CC.ALL_SOUND_OFF:
            vb.fade(self._channel_voices(ch))
        elif control == CC.RESET_ALL_CONTROLLERS:
            self.mod_wheel[ch] = 0.0
            vb.mod_scale[self._channel_voices(ch)] = 1.0
            self.bend[ch] = 0.0
            self._update_pitch(ch)
            self._rpn[ch] = 127
            self._cc(ch, CC.SUSTAIN, 0)
            self._cc(ch, CC.SOSTENUTO, 0)
        elif control == CC.ALL_NOTES_OFF:
            idx = self._channel_voices(ch)
            idx = idx[vb.released[idx] == 0]
            if idx.size:
                vb.start_release(idx)

    def _param(self, ch: int, t_index: int, value: float) -> None:
        self._override[ch, t_index] = value
        self._has_override[ch] = True
        name = TIMBRE_NAMES[t_index]
        vb = self.voices
        idx = self._channel_voices(ch)
        if name in ("attack_s", "decay_s", "release_s"):
            vb.set_time(idx, name, value)
        else:
            # Smoothed (levels: their targets glide over SMOOTH_S) or set (the peak's and
            # the noise's decay times: their lines are recomputed from the current t_on,
            # which steps the level when a decay is under way).
            target = {
                "sustain": vb.sustain_tgt,
                "mod_ratio": vb.ratio_tgt,
                "mod_index": vb.index_tgt,
                "index_peak": vb.index_peak_tgt,
                "index_decay_s": vb.index_decay_s,
                "noise_level": vb.noise_level_tgt,
                "noise_decay_s": vb.noise_decay_s,
            }[name]
            target[idx] = value

    def _inc(self, ch: int, pitch: float | np.ndarray) -> float | np.ndarray:
        semis = self.bend[ch] / 8192.0 * self.bend_range[ch]
        return 2.0 * math.pi * midi_to_hz(np.asarray(pitch) + semis) / self.sample_rate

    def _update_pitch(self, ch: int) -> None:
        vb = self.voices
        idx = np.flatnonzero(vb.chan[: vb.n] == ch)
        if idx.size:
            vb.inc_c[idx] = self._inc(ch, vb.pitch[idx])

    def _update_channel_gain(self, ch: int) -> None:
        vol = (self.volume[ch] / 127.0) ** 2
        # 0 = left, 64 = centre, 127 = right; equal-power law, exact at the centre.
        pos = (self.pan[ch] - 64.0) / (64.0 if self.pan[ch] <= 64 else 63.0)
        angle = (pos + 1.0) * (math.pi / 4.0)
        self._gain_lr[ch] = (vol * math.cos(angle), vol * math.sin(angle))

