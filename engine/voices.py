"""Struct-of-arrays FM/ADSR voices, rendered by one compiled kernel.

Each voice is a 2-operator phase-modulation pair, the seed's sound, plus (schema v2) an
index peak and white noise that both fall linearly from note-on::

    I(t) = (mod_index + index_peak * max(0, 1 - t_on / index_decay_s)) * mod_scale
    y(t) = amp * env(t) * (sin(phase_c + I(t) * sin(phase_m))
                           + noise_level * max(0, 1 - t_on / noise_decay_s) * nz(t))

with ``f_m = mod_ratio * f_c``, ``env`` a linear ADSR, ``t_on`` the seconds since the voice's
(re)trigger and ``nz`` the fixed table ``NOISE`` read from ``noise_start(pitch)`` on,
one entry per sample. Schema v3 adds a third operator at ``f_3 = op3_ratio * f_c``, its
index ``I3(t) = (op3_index + op3_peak * max(0, 1 - t_on / index_decay_s))`` (times
``mod_scale`` in layouts 0 and 1) and ``s3 = I3(t) * sin(phase_3)``, placed by its layout::

    0 (parallel):  sin(phase_c + I(t) * sin(phase_m) + s3)
    1 (stack):     sin(phase_c + I(t) * sin(phase_m + s3))
    2 (carrier 2): sin(phase_c + I(t) * sin(phase_m)) + I3(t) / 16 * sin(phase_3 + I(t) * sin(phase_m))

in place of the tone above; with ``I3`` at 0 each is the schema-2 tone exactly. Schema v4
adds a band of noise beside the white noise, shaped by the amplitude envelope alone::

    + band_level * sqrt(2) * cos(phase_b) * lp(pos_b)

with ``f_b = band_centre * f_c`` the band's centre (``phase_b`` from 0 at note-on) and
``lp`` the table ``NOISE_LP`` (``NOISE`` low-passed to 1/16 cycle per entry, at the white
table's RMS), read with linear interpolation from ``noise_start(pitch)`` on at
``8 * band_width * f_c`` entries a second: noise ``band_width * f_c`` Hz wide around
``f_b``. Every
per-voice field is one row of a single float64 array, so that freeing a voice (moving the
last active voice into its slot) is one copy and the active voices are always the first
``n`` columns. The timbre's rows, what a note writes into them and what a live change
does are derived from the schema (each row's ``voice`` kind) and carry the parameters'
names; a note sets a voice up in one place, :meth:`VoiceBank.start`.
The compiled kernel that renders them is :mod:`engine.kernel`.
"""

from __future__ import annotations

import math

import numpy as np

from engine import spectrum
from engine.effects import SendBuses
from engine.kernel import _build_tables, _render_chunk, find_note, steal_victim
from engine.schema import TIMBRE_NAMES
from engine.spectrum import TABLE_SIZE
from engine.voice_layout import (
    _ENVELOPE_TIMES,
    _F,
    _FIELDS,
    _FRESH_FIELDS,
    _LIVE_ROWS,
    _NOTE_FIELDS,
    _SPECTRAL,
    _STEPPED,
    _STEPPED_AT,
    _STEPPED_HI,
    _STEPPED_LO,
    LAYOUT_CARRIER2,
    LAYOUT_PARALLEL,
    LAYOUT_STACK,
    MAX_CHUNK,
    NOISE_TABLE_SIZE,
    SMOOTH_S,
    TWO_PI,
)
from engine.voice_tables import (
    _NOISE_EXT,
    _NOISE_LP_EXT,
    FADE_S,
    NOISE,
    NOISE_LP,
    VELOCITY_EXPONENT,
    fnote_key,
    id_key,
    midi_to_hz,
    noise_start,
    note_key,
    velocity_to_amp,
)

__all__ = [
    "VoiceBank",
    "find_note",
    "steal_victim",
    "LAYOUT_PARALLEL",
    "LAYOUT_STACK",
    "LAYOUT_CARRIER2",
    "SMOOTH_S",
    "TWO_PI",
    "midi_to_hz",
    "velocity_to_amp",
    "VELOCITY_EXPONENT",
    "note_key",
    "fnote_key",
    "id_key",
    "noise_start",
    "FADE_S",
    "MAX_CHUNK",
    "NOISE",
    "NOISE_TABLE_SIZE",
    "NOISE_LP",
]


class VoiceBank:
    """Up to ``capacity`` voices, the first ``n`` of which sound.

    Args:
        capacity: number of voice slots (sounding notes plus voices fading out).
        sample_rate: Hz.
    """

    def __init__(self, capacity: int, sample_rate: float) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = int(capacity)
        self.sample_rate = float(sample_rate)
        self.n = 0
        self.state = np.zeros((len(_FIELDS), self.capacity), dtype=np.float64)
        for name, row in _F.items():
            setattr(self, name, self.state[row])
        # The kernel's scratch: the chunk's left and right mix.
        self._mix = np.zeros((2, MAX_CHUNK), dtype=np.float64)
        self._scratch = np.zeros((7, MAX_CHUNK), dtype=np.float64)
        # Each voice's carrier tables (engine.spectrum): [slot, buffer, onset/held/dark,
        # TABLE_SIZE + 1], two buffers for a live change's crossfade. The voice in column
        # c owns slot _slots[c] (kept in its "tslot" row, so that a voice moved by
        # remove() keeps its tables); the slots of free columns are free.
        self.tables = np.zeros((self.capacity, 2, 3, TABLE_SIZE + 1), dtype=np.float32)
        # Written once now: zeros from the allocator are pages the system maps on first
        # touch (a large array may be one huge page, zeroed then, or compacted for), and
        # that first touch must not fall on the render thread's first harmonic note.
        self.tables.fill(0.0)
        self._slots = np.arange(self.capacity, dtype=np.int64)
        self._one = np.zeros(1, dtype=np.int64)  # one note-on's voice, for the compiled set-up
        self._dirty = False
        #: Most voices whose tables a live spectrum change rebuilds before one chunk (None:
        #: all at once). A live host sets it: 64 voices rebuilt at once took a block's
        #: time; each voice crossfades from its own rebuild anyway.
        self.max_rebuilds: int | None = None

    # -- slots -------------------------------------------------------------------------

    def add(self) -> int:
        """Claim the next free slot and return its index (its fields are zeroed)."""
        if self.n >= self.capacity:
            raise RuntimeError("no free voice slot")
        i = self.n
        self.state[:, i] = 0.0
        self.tslot[i] = self._slots[i]
        self.n += 1
        return i

    def remove(self, i: int) -> None:
        """Free slot ``i``: the last active voice moves into it."""
        last = self.n - 1
        if i != last:
            self.state[:, i] = self.state[:, last]
            self._slots[i], self._slots[last] = self._slots[last], self._slots[i]
        self.n = last

    def clear(self) -> None:
        self.n = 0

    # -- envelope control --------------------------------------------------------------

    def start_release(
        self, idx: np.ndarray | int, duration_s: np.ndarray | float | None = None
    ) -> None:
        """Begin the release ramp of voices ``idx`` from their current level."""
        self.released[idx] = 1.0
        self.rel_level[idx] = self.level[idx]
        self.rel_t[idx] = 0.0
        self.rel_dur[idx] = self.release_s[idx] if duration_s is None else duration_s
        self.held[idx] = 0.0
        self.pedal_held[idx] = 0.0
        self.sost[idx] = 0.0

    def fade(self, idx: np.ndarray | int) -> None:
        """Fade voices ``idx`` out over FADE_S (stolen or silenced): no click."""
        self.start_release(idx, FADE_S)
        self.fading[idx] = 1.0
        self.note_key[idx] = 0.0  # no longer the voice of its key: a new note gets its own

    def claim(self, i: int, ch: int, pitch: int, key: float | None = None) -> None:
        """Voice ``i`` plays key ``pitch`` of channel ``ch`` (until it fades); ``key``: its
        ``note_key`` if not the key's own (``fnote_key``)."""
        self.chan[i] = ch
        self.pitch[i] = pitch
        self.note_key[i] = note_key(ch, pitch) if key is None else key

    def start(
        self,
        idx: np.ndarray | int | slice,
        timbre: np.ndarray,
        pitch: float | np.ndarray,
        amp: float | np.ndarray,
        inc_c: float | np.ndarray,
        *,
        gain_l: float = 0.0,
        gain_r: float = 0.0,
        mod_scale: float = 1.0,
        retrigger: bool = False,
    ) -> None:
        """Voices ``idx`` start a note: the one place where a note sets a voice up (live
        note-ons, ``Channels.note_on``, and offline renders, ``render_notes``).

        Args:
            idx: fresh slots (from ``add``: zeroed); with ``retrigger``, one sounding voice
                of the same key, whose envelope restarts from its level.
            timbre: ``[n_timbre]`` or ``[len(idx), n_timbre]``, physical values in schema
                order (``set_timbre``).
            pitch: MIDI note, scalar or ``[len(idx)]`` (fractional allowed; a retrigger
                keeps the voice's).
            amp: the velocity's amplitude (``velocity_to_amp``), scalar or ``[len(idx)]``.
            inc_c: the carrier's phase increment, radians a sample (bend included).
            gain_l, gain_r: the channel's left and right gains (volume, pan); the voice's
                output gains are ``amp`` times them (offline renders leave them 0: their
                per-voice rows carry ``amp`` alone).
            mod_scale: the mod wheel's scale of the FM index.
        """
        spectral = retrigger and (self.harmonic[idx] != 0.0 or not spectrum.is_sine(timbre))
        self.set_timbre(idx, timbre, fresh=not retrigger)
        self.amp[idx] = amp
        gl = amp * gain_l
        gr = amp * gain_r
        self.gain_l_tgt[idx] = gl
        self.gain_r_tgt[idx] = gr
        self.mod_scale[idx] = mod_scale
        self.inc_c[idx] = inc_c
        if retrigger:
            self.retrigger(idx)
            if spectral:  # its tables follow the note's spectra, crossfaded
                self._mark_spectrum(np.atleast_1d(idx))
            return
        # A fresh voice: its gains start at their targets, and both noise tables are read
        # from its pitch's place (t_on is 0 in a fresh slot).
        self.pitch[idx] = pitch
        self.held[idx] = 1.0
        self.gain_l[idx] = gl
        self.gain_r[idx] = gr
        first = (
            [noise_start(p) for p in pitch] if isinstance(pitch, np.ndarray) else noise_start(pitch)
        )
        self.noise_first[idx] = first
        self.band_pos[idx] = self.noise_first[idx]
        # The carrier: a sine, or tables built now at the note's increment (compiled, both
        # the choice and the build: a note-on costs a few microseconds either way).
        if isinstance(idx, (int, np.integer)):
            self._one[0] = idx
            vs = self._one
        else:
            vs = np.asarray(np.arange(self.capacity)[idx], dtype=np.int64)
        _build_tables(self.state, self.tables, vs, _BASIS32, 2)

    def retrigger(self, i: int) -> None:
        """Restart voice ``i``'s envelope from its current level (same phase); the index
        peak and the noise start again as at a note-on."""
        # The attack line is tau / attack: placing tau at level * attack resumes there.
        self.tau[i] = self.level[i] * self.attack_s[i]
        self.released[i] = 0.0
        self.fading[i] = 0.0
        self.held[i] = 1.0
        self.pedal_held[i] = 0.0
        self.sost[i] = 0.0
        self.t_on[i] = 0.0
        self.noise_first[i] = noise_start(self.pitch[i])

    def set_timbre(self, idx: np.ndarray | int | slice, timbre: np.ndarray, fresh: bool) -> None:
        """Voices ``idx`` take a note's timbre: ``timbre`` ``[n_timbre]`` or ``[len(idx),
        n_timbre]``, physical values in schema order (``TIMBRE_NAMES``). The one place
        where timbre values become voice fields: live note-ons and offline renders both
        come here.

        ``fresh``: a new voice, whose smoothed values (sustain, ratios, indices, the noise
        band's level, width and centre) start at
        their targets and which takes the third operator's layout; otherwise (a
        retrigger) they glide there from where they are and the layout stays. The index
        peaks and the noise restart with every note.
        """
        t = np.asarray(timbre, dtype=np.float64)
        rows, src = _FRESH_FIELDS if fresh else _NOTE_FIELDS
        vals = t[..., src]  # a copy: [n_fields] or [len(idx), n_fields]
        if fresh and _STEPPED:
            # Only a fresh voice takes these: switching a sounding voice's layout (a
            # retrigger, a live change) would jump the waveform mid-note.
            if vals.ndim == 1:  # a note-on: plain floats (round() is rint's half-to-even)
                for j, lo, hi in _STEPPED:
                    vals[j] = min(max(round(float(vals[j])), lo), hi)
            else:
                vals[:, _STEPPED_AT] = np.clip(
                    np.rint(vals[:, _STEPPED_AT]), _STEPPED_LO, _STEPPED_HI
                )
        if isinstance(idx, (int, np.integer)):
            self.state[rows, idx] = vals.reshape(-1)  # one voice: one assignment
        else:
            cols = np.arange(self.capacity)[idx] if isinstance(idx, slice) else idx
            self.state[rows[:, None], cols] = vals.T if vals.ndim == 2 else vals[:, None]

    def set_time(self, idx: np.ndarray, name: str, seconds: float) -> None:
        """Change attack/decay/release of sounding voices without a jump in level."""
        old = getattr(self, name)[idx]
        safe_old = np.maximum(old, 1e-9)
        new = max(float(seconds), 0.0)
        if name == "attack_s":
            in_attack = (self.released[idx] == 0) & (self.tau[idx] < old)
            self.tau[idx] = np.where(
                in_attack, self.tau[idx] * new / safe_old, self.tau[idx] - old + new
            )
        elif name == "decay_s":
            a = self.attack_s[idx]
            in_decay = (self.released[idx] == 0) & (self.tau[idx] >= a) & (self.tau[idx] < a + old)
            self.tau[idx] = np.where(
                in_decay, a + (self.tau[idx] - a) * new / safe_old, self.tau[idx]
            )
        elif name == "release_s":
            rel = (self.released[idx] == 1) & (self.fading[idx] == 0)
            self.rel_t[idx] = np.where(rel, self.rel_t[idx] * new / safe_old, self.rel_t[idx])
            self.rel_dur[idx] = np.where(rel, new, self.rel_dur[idx])
        getattr(self, name)[idx] = new

    def set_live(self, idx: np.ndarray, t_index: int, value: float) -> None:
        """A live change (``set_param``) of timbre value ``t_index`` (schema order) on the
        sounding voices ``idx``, as its schema row's ``voice`` kind says: a target to glide
        to, a time that keeps the envelope's level or a decay time from now on; a
        next-note value leaves them as they are."""
        if _ENVELOPE_TIMES[t_index]:
            self.set_time(idx, TIMBRE_NAMES[t_index], value)
        elif _LIVE_ROWS[t_index] >= 0:
            self.state[_LIVE_ROWS[t_index], idx] = value
            if _SPECTRAL[t_index]:
                self._mark_spectrum(idx)

    def _mark_spectrum(self, idx: np.ndarray) -> None:
        """Voices ``idx``'s spectra changed: their tables are rebuilt before the next
        chunk and crossfaded to (a voice on the sine carrier first gets sine tables)."""
        idx = np.asarray(idx, dtype=np.int64)
        if not idx.size:
            return
        sine = idx[self.harmonic[idx] == 0.0]
        if sine.size:
            slots = self.tslot[sine].astype(np.int64)
            bufs = self.spec_buf[sine].astype(np.int64)
            self.tables[slots, bufs] = spectrum.BASIS[0]
            self.harmonic[sine] = 1.0
            self.onset_on[sine] = 0.0
            self.dark_on[sine] = 0.0
        self.spec_dirty[idx] = 1.0
        self._dirty = True

    def _rebuild_spectra(self) -> None:
        """Build the tables of voices whose spectra changed into their other buffer and
        start the crossfade; a voice still fading from an earlier change waits."""
        n = self.n
        ready = np.flatnonzero((self.spec_dirty[:n] != 0.0) & (self.spec_fade[:n] == 0.0))
        if self.max_rebuilds is not None:
            ready = ready[: self.max_rebuilds]  # the rest before the next chunks
        if ready.size:
            _build_tables(self.state, self.tables, ready, _BASIS32, 1)
        self._dirty = bool(np.any(self.spec_dirty[:n] != 0.0))

    # -- rendering ---------------------------------------------------------------------

    def render(self, out: np.ndarray, buses: SendBuses | None = None, at: int = 0) -> None:
        """Add the stereo mix of all sounding voices into ``out`` [n_frames, 2] float32;
        with ``buses``, each voice's mix times its channel's send levels into
        ``buses.bus[:, :, at:at + n_frames]`` (``at``: where ``out`` starts in the block)."""
        self._render(out, _NO_VOICES, out.shape[0], free=True, buses=buses, at=at)

    def render_voices(self, n_frames: int) -> np.ndarray:
        """Per-voice mono signal with amplitude applied, [n, n_frames] float32 (offline use).
        Finished voices are not freed (their rows stay where the caller expects them)."""
        res = np.empty((self.n, n_frames), dtype=np.float32)  # the kernel writes every sample
        self._render(_NO_OUT, res, n_frames, free=False)
        return res

    def _render(self, out: np.ndarray, per_voice: np.ndarray, total: int, free: bool,
                buses: SendBuses | None = None, at: int = 0) -> None:
        """``total`` frames in chunks of at most MAX_CHUNK: mixed into ``out`` (``per_voice``
        empty) or each voice into its row of ``per_voice``; spectra changed live are
        rebuilt before each chunk."""
        b = _NO_BUSES if buses is None else buses
        pos = 0
        while pos < total:
            m = min(MAX_CHUNK, total - pos)
            if self._dirty:
                self._rebuild_spectra()
            if self.n:
                done = _render_chunk(self.state, self.n, m, self.sample_rate, self._alpha(m), _NOISE_EXT,
                                     _NOISE_LP_EXT, self.tables, self._mix, self._scratch, out, pos, per_voice,
                                     b.send, b.mix, b.bus, at, b.fed)
                if done and free:
                    self._free_finished()
            elif buses is not None:
                b.send[0] = b.send[1]  # no voice to glide for: the next note starts at the targets
            pos += m

    def _alpha(self, m: int) -> float:
        """How far a smoothed value moves towards its target in m frames."""
        return 1.0 - math.exp(-m / (SMOOTH_S * self.sample_rate))

    def _free_finished(self) -> None:
        n = self.n
        done = (self.released[:n] > 0) & (self.rel_t[:n] >= self.rel_dur[:n])
        for i in np.flatnonzero(done)[::-1]:
            self.remove(int(i))


# The basis in the tables' precision: a table is built in float32 SIMD lanes.
_BASIS32 = spectrum.BASIS.astype(np.float32)
_NO_VOICES = np.zeros((0, 0), dtype=np.float32)
_NO_OUT = np.zeros((0, 2), dtype=np.float32)
_NO_BUSES = SendBuses(0, 16, 0)
