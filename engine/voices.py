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

Rendering is one call of ``_render_chunk``, compiled by numba (cached on disk after its
first compile): per voice, a few scalar lines of set-up, then plain loops over the
chunk's frames that the compiler turns into SIMD code, in float64. A numpy version of the
same formulas, one whole-array operation at a time, spent most of a block in the
interpreter: 105-150 us a block at 64 voices, back to back, where the kernel takes 30-45 us
(``benchmarks/bench_engine.py``). A voice that does not use the index peak, the noise, the
third operator or the noise band (or whose decay is over) skips that work.

The envelope is piecewise linear, so within a block it is ``min(p, max(q, floor))`` of
three straight lines per voice: attack (p) and decay (q) with the sustain floor while the
key is held; after release p is out of reach, q is the release ramp and the floor is 0.
"""

from __future__ import annotations

import hashlib
import math
from enum import IntEnum

import numba
import numpy as np

from engine import spectrum
from engine.schema import (
    DECAY_TIME,
    ENVELOPE_TIME,
    GLIDE,
    PARAMS,
    RESTART,
    SPECTRUM,
    STEPPED,
    TIMBRE_INDEX,
    TIMBRE_NAMES,
    param,
)
from engine.spectrum import TABLE_SIZE

__all__ = [
    "VoiceBank",
    "midi_to_hz",
    "velocity_to_amp",
    "VELOCITY_EXPONENT",
    "note_key",
    "noise_start",
    "FADE_S",
    "MAX_CHUNK",
    "NOISE",
    "NOISE_TABLE_SIZE",
    "NOISE_LP",
]

TWO_PI = 2.0 * math.pi
#: Length of the fade given to a stolen or silenced voice: short, but long enough not to click.
FADE_S = 0.005
#: Longest stretch rendered in one go (the kernel's scratch rows); longer requests are split.
MAX_CHUNK = 512
#: Time constant of the smoothing of live changes (index, ratio, sustain, gains).
SMOOTH_S = 0.010
#: Entries in the fixed noise table every voice reads.
NOISE_TABLE_SIZE = 65536
#: The noise: uniform in [-1, 1), fixed by its seed so that a render is reproducible
#: (and a re-implementation elsewhere can match it sample for sample).
NOISE = np.random.default_rng(0x5EED).uniform(-1.0, 1.0, NOISE_TABLE_SIZE).astype(np.float32)
NOISE.flags.writeable = False
# Extended by MAX_CHUNK entries so that any voice's chunk is one window, never a wrap.
_NOISE_EXT = np.concatenate([NOISE, NOISE[:MAX_CHUNK]])


def _low_passed(noise: np.ndarray) -> np.ndarray:
    """``noise`` (one period) low-passed to 1/16 cycle per entry, at its RMS, float64,
    extended by its first entry (the interpolation's right neighbour at the end)."""
    spec = np.fft.rfft(np.asarray(noise, dtype=np.float64))
    spec[len(noise) // 16 :] = 0.0
    lp = np.fft.irfft(spec, len(noise))
    lp *= math.sqrt(np.mean(np.asarray(noise, dtype=np.float64) ** 2) / np.mean(lp**2))
    return np.concatenate([lp, lp[:1]])


#: The band noise's table (schema v4): ``NOISE`` low-passed, ``NOISE_TABLE_SIZE + 1``
#: entries (the last is the first again), read between entries at a rate set by the
#: band's width.
NOISE_LP = _low_passed(NOISE)
NOISE_LP.flags.writeable = False
# The kernel's copy, extended by half a period: a chunk's read (at most 64 entries a
# sample, far beyond any audible band, for MAX_CHUNK samples) from any start within the
# period stays within it, with no wrap per sample.
_NOISE_LP_EXT = np.concatenate([NOISE_LP, NOISE_LP[1 : 1 + 64 * MAX_CHUNK]])


def midi_to_hz(note: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency in Hz of a (fractional) MIDI note; A4 = 69 = 440 Hz."""
    if isinstance(note, (int, float)):  # a note-on: plain floats, the same pow()
        return 440.0 * 2.0 ** ((float(note) - 69.0) / 12.0)
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def noise_start(pitch: float) -> int:
    """Where in ``NOISE`` a voice of this (rounded) MIDI pitch starts reading at note-on."""
    return (int(round(pitch)) * 7919) % NOISE_TABLE_SIZE


#: The loudness curve's exponent: the seed's (velocity / 127) ** 1.5, what training's
#: renders and offline renders use; a live player may choose another (``play
#: --velocity-curve``, :data:`engine.sender.VELOCITY_CURVES`).
VELOCITY_EXPONENT = 1.5


def velocity_to_amp(
    velocity: float | np.ndarray, exponent: float = VELOCITY_EXPONENT
) -> float | np.ndarray:
    """The loudness curve: (velocity / 127) ** exponent (the seed's 1.5 by default)."""
    if isinstance(velocity, (int, float)):  # a note-on: plain floats, the same pow()
        return (float(velocity) / 127.0) ** exponent
    return (np.asarray(velocity, dtype=np.float64) / 127.0) ** exponent


def fnote_key(ch: int, hz: float) -> float:
    """The ``note_key`` of a note at ``hz`` on ``ch`` (/fnote): negative, so never a
    key's, and the same for the same frequency to a thousandth of a hertz."""
    return -float(ch * (1 << 25) + int(round(hz * 1000.0)) + 1)


def note_key(ch: int, pitch: int) -> float:
    """What a sounding voice's ``note_key`` field holds: one number per channel and key,
    never 0 (the value of a voice that is fading out, or of no note)."""
    return float(ch * 128 + int(pitch) + 1)


#: The third operator's layouts (``op3_layout``, rounded).
LAYOUT_PARALLEL, LAYOUT_STACK, LAYOUT_CARRIER2 = 0.0, 1.0, 2.0

# The voice's own rows of the per-voice state array: where and how it plays (not timbre).
_OWN_FIELDS = (
    "chan",
    "pitch",
    "amp",
    "phase_c",
    "phase_m",
    "inc_c",
    "tau",
    "released",
    "rel_level",
    "rel_t",
    "rel_dur",
    "level",
    "age",
    "held",
    "pedal_held",
    "fading",
    "gain_l",
    "gain_r",
    "gain_l_tgt",
    "gain_r_tgt",
    "mod_scale",
    "t_on",
    "noise_first",
    "sost",
    "note_key",
    "phase_3",
    "band_pos",
    "phase_b",
    # The (fractional) MIDI note it sounds before bend: its key's in the tuning, or a
    # note at any frequency (fnote 1: not a key's, so a new tuning leaves it alone).
    "note",
    "fnote",
    # The harmonic carrier (engine.spectrum): whether it reads tables (0: sine), its slot
    # in VoiceBank.tables, the buffer it reads, the weight of the other buffer (a live
    # change's crossfade), whether its tables await a rebuild, and whether the onset
    # and dark tables differ from the held one.
    "harmonic",
    "tslot",
    "spec_buf",
    "spec_fade",
    "spec_dirty",
    "onset_on",
    "dark_on",
)
_TIMBRE_PARAMS = tuple(p for p in PARAMS if p.timbre)


def _timbre_fields(p) -> tuple[str, ...]:
    """The voice fields of timbre parameter ``p``, named after it: the value, and where
    it glides (``GLIDE``, ``RESTART``) its target ``NAME_tgt``."""
    return (p.name, p.name + "_tgt") if p.voice in (GLIDE, RESTART) else (p.name,)


# Row indices of the per-voice state array: the voice's own, then each timbre value's.
_FIELDS = _OWN_FIELDS + tuple(f for p in _TIMBRE_PARAMS for f in _timbre_fields(p))
_F = {name: i for i, name in enumerate(_FIELDS)}
#: The rows as the kernel reads them: ``st[_S.op3_ratio, v]`` (an IntEnum, which numba
#: compiles to constants).
_S = IntEnum("_S", {name: i for i, name in enumerate(_FIELDS)})


def _note_pairs() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    """What a note's timbre sets, as (state row, timbre column) pairs, from each value's
    ``voice`` kind: every note (a retrigger too) sets the targets, the times and the
    restarting values; a fresh voice also starts its gliding values at their targets and
    takes the next-note values."""
    note, fresh = [], []
    for p in _TIMBRE_PARAMS:
        c = TIMBRE_INDEX[p.name]
        if p.voice == GLIDE:
            note.append((p.name + "_tgt", c))
            fresh.append((p.name, c))
        elif p.voice == RESTART:
            note += [(p.name, c), (p.name + "_tgt", c)]
        elif p.voice in (ENVELOPE_TIME, DECAY_TIME, SPECTRUM):
            note.append((p.name, c))
        else:  # NEXT_NOTE
            fresh.append((p.name, c))
    return tuple(note), tuple(note) + tuple(fresh)


_NOTE_PAIRS, _FRESH_PAIRS = _note_pairs()
_NOTE_FIELDS, _FRESH_FIELDS = (
    (np.array([_F[f] for f, _ in pairs]), np.array([c for _, c in pairs]))
    for pairs in (_NOTE_PAIRS, _FRESH_PAIRS)
)
# A fresh voice plays a stepped value (a choice: the third operator's layout) rounded to
# the nearest whole value in its range: these are its places among _FRESH_PAIRS and bounds.
_STEPPED = tuple(
    (j, param(f).minimum, param(f).maximum) for j, (f, _) in enumerate(_FRESH_PAIRS) if f in STEPPED
)
_STEPPED_AT, _STEPPED_LO, _STEPPED_HI = (
    (np.array(col) for col in zip(*_STEPPED)) if _STEPPED else ((), (), ())
)
# What a live change (``set_param``, OSC /param/NAME) writes, per timbre column: the
# target of a gliding or restarting value, a decay time itself, nothing for a next-note
# value (-1); envelope times go through VoiceBank.set_time.
_LIVE_ROWS = tuple(
    _F[p.name + "_tgt"]
    if p.voice in (GLIDE, RESTART)
    else _F[p.name]
    if p.voice in (DECAY_TIME, SPECTRUM)
    else -1
    for p in _TIMBRE_PARAMS
)
_SPECTRAL = tuple(p.voice == SPECTRUM for p in _TIMBRE_PARAMS)
_ENVELOPE_TIMES = tuple(p.voice == ENVELOPE_TIME for p in _TIMBRE_PARAMS)


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
        self._slots = np.arange(self.capacity, dtype=np.int64)
        self._dirty = False

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
        # The carrier: a sine, or tables built now at the note's increment.
        vs = np.arange(self.capacity)[idx] if isinstance(idx, slice) else np.atleast_1d(idx)
        sine = spectrum.is_sine(np.asarray(timbre, dtype=np.float64))
        self.harmonic[vs] = np.where(sine, 0.0, 1.0)
        vs = vs[self.harmonic[vs] != 0.0].astype(np.int64)
        if vs.size:
            _build_tables(self.state, self.tables, vs, spectrum.BASIS, 0)

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
        if ready.size:
            _build_tables(self.state, self.tables, ready, spectrum.BASIS, 1)
        self._dirty = bool(np.any(self.spec_dirty[:n] != 0.0))

    # -- rendering ---------------------------------------------------------------------

    def render(self, out: np.ndarray) -> None:
        """Add the stereo mix of all sounding voices into ``out`` [n_frames, 2] float32."""
        pos = 0
        total = out.shape[0]
        while pos < total:
            m = min(MAX_CHUNK, total - pos)
            if self._dirty:
                self._rebuild_spectra()
            if self.n:
                if _render_chunk(
                    self.state,
                    self.n,
                    m,
                    self.sample_rate,
                    self._alpha(m),
                    _NOISE_EXT,
                    _NOISE_LP_EXT,
                    self.tables,
                    self._mix,
                    self._scratch,
                    out,
                    pos,
                    _NO_VOICES,
                ):
                    self._free_finished()
            pos += m

    def render_voices(self, n_frames: int) -> np.ndarray:
        """Per-voice mono signal with amplitude applied, [n, n_frames] float32 (offline use).
        Finished voices are not freed (their rows stay where the caller expects them)."""
        res = np.empty((self.n, n_frames), dtype=np.float32)  # the kernel writes every sample
        pos = 0
        while pos < n_frames:
            m = min(MAX_CHUNK, n_frames - pos)
            if self._dirty:
                self._rebuild_spectra()
            if self.n:
                _render_chunk(
                    self.state,
                    self.n,
                    m,
                    self.sample_rate,
                    self._alpha(m),
                    _NOISE_EXT,
                    _NOISE_LP_EXT,
                    self.tables,
                    self._mix,
                    self._scratch,
                    _NO_OUT,
                    pos,
                    res,
                )
            pos += m
        return res

    def _alpha(self, m: int) -> float:
        """How far a smoothed value moves towards its target in m frames."""
        return 1.0 - math.exp(-m / (SMOOTH_S * self.sample_rate))

    def _free_finished(self) -> None:
        n = self.n
        done = (self.released[:n] > 0) & (self.rel_t[:n] >= self.rel_dur[:n])
        for i in np.flatnonzero(done)[::-1]:
            self.remove(int(i))


_NO_VOICES = np.zeros((0, 0), dtype=np.float32)
_NO_OUT = np.zeros((0, 2), dtype=np.float32)

# -- the kernel: one compiled loop over voices and frames ------------------------------

_INV_TWO_PI = 1.0 / TWO_PI
_LP_N = float(NOISE_TABLE_SIZE)
_LP_LAST = NOISE_TABLE_SIZE + 64 * MAX_CHUNK - 1  # the last entry with a right neighbour
_SQRT2 = math.sqrt(2.0)
_TABLE_SCALE = TABLE_SIZE / TWO_PI
_TABLE_MASK = TABLE_SIZE - 1  # a power of 2: the wrap is a mask
_BAND_LIMIT = spectrum.BAND_LIMIT
_DB_FLOOR = param("held_h1").minimum
# Floating-point liberties that let the compiler use SIMD (no NaN or infinity
# assumptions: a non-finite sample still reaches the limiter's check).
_FASTMATH = {"contract", "arcp", "nsz", "afn", "reassoc"}


@numba.njit(inline="always", fastmath=_FASTMATH)
def _sin(x: float) -> float:
    """sin(x) to within 1e-9 for any phase the engine makes, in a form the compiler
    vectorises (libm's sin is one call per sample): reduce to [-pi, pi], fold into
    [0, pi/2], then the Taylor series to x^13."""
    r = x - math.floor(x * _INV_TWO_PI + 0.5) * TWO_PI
    a = abs(r)
    a = min(a, math.pi - a)
    a2 = a * a
    s = a * (
        1.0
        + a2
        * (
            -1.0 / 6.0
            + a2
            * (
                1.0 / 120.0
                + a2
                * (
                    -1.0 / 5040.0
                    + a2 * (1.0 / 362880.0 + a2 * (-1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0)))
                )
            )
        )
    )
    return math.copysign(s, r)


def _render_chunk(st, n, m, sr, alpha, noise, noise_lp, tables, mix, scratch, out, col, per_voice):
    """Render m frames of the n sounding voices and move them on by m frames.

    ``st``: the state array [field, voice] (float64), read and updated in place.
    Mixed (``per_voice`` of shape [0, 0]): each voice, times its gain gliding to its
    target, is summed in ``mix`` [2, >= m] (float64), then added into
    ``out[col:col + m]`` [frames, 2] float32. Otherwise each voice's signal times its
    amplitude is written to ``per_voice[v, col:col + m]`` [n, frames] float32.
    ``scratch``: [7, >= m] float64 for the stages of one voice. ``noise`` and
    ``noise_lp``: the white noise table (extended by MAX_CHUNK) and the band's
    (``NOISE_LP`` extended by 64 * MAX_CHUNK). ``tables``: the voices' carrier tables
    ``[slot, buffer, 3, TABLE_SIZE + 1]`` (``VoiceBank.tables``).
    Returns whether some released voice has finished (to be freed).
    """
    dt = m / sr
    inv_m = 1.0 / m
    floor_t = 1.0 / sr
    mixed = per_voice.shape[0] == 0
    any_done = False
    if mixed:
        mix[:, :m] = 0.0
    for v in range(n):
        # Envelope lines: attack p, decay or release q, sustain floor f.
        att_s = st[_S.attack_s, v]
        att = max(att_s, floor_t)
        dec = max(st[_S.decay_s, v], floor_t)
        sus0 = st[_S.sustain, v]
        sus1 = sus0 + (st[_S.sustain_tgt, v] - sus0) * alpha
        st[_S.sustain, v] = sus1
        tau = st[_S.tau, v]
        rdur = rlev = 1.0
        if st[_S.released, v] > 0.0:
            rdur = max(st[_S.rel_dur, v], floor_t)
            rlev = st[_S.rel_level, v]
            p0, p1 = 2.0, 0.0
            q0 = rlev * (1.0 - st[_S.rel_t, v] / rdur)
            q1 = -rlev / (rdur * sr)
            f0, f1 = 0.0, 0.0
        else:
            p0, p1 = tau / att, floor_t / att
            if tau >= att_s + dec:
                q0, q1 = -1.0, 0.0
            else:
                drop = 1.0 - sus0
                q0 = 1.0 - drop * (tau - att_s) / dec
                q1 = -drop / (dec * sr)
            f0, f1 = sus0, (sus1 - sus0) * inv_m
        # Index (gliding), the modulator's ratio (gliding) and the phases.
        scale = st[_S.mod_scale, v]
        inc_c = st[_S.inc_c, v]
        ratio = st[_S.mod_ratio, v] + (st[_S.mod_ratio_tgt, v] - st[_S.mod_ratio, v]) * alpha
        st[_S.mod_ratio, v] = ratio
        inc_m = inc_c * ratio
        idx0 = st[_S.mod_index, v]
        idx1 = idx0 + (st[_S.mod_index_tgt, v] - idx0) * alpha
        st[_S.mod_index, v] = idx1
        i0, i1 = idx0 * scale, (idx1 - idx0) * scale * inv_m
        pm0, pc0 = st[_S.phase_m, v], st[_S.phase_c, v]
        t_on = st[_S.t_on, v]
        t_end = t_on + dt
        # Index peak: from peak at note-on down to 0 at index_decay_s, clipped at 0.
        pk0 = st[_S.index_peak, v]
        pk1 = pk0 + (st[_S.index_peak_tgt, v] - pk0) * alpha
        st[_S.index_peak, v] = pk1
        inv_pd = 1.0 / st[_S.index_decay_s, v]
        e0 = pk0 * scale * (1.0 - t_on * inv_pd)
        e1 = (pk1 * scale * (1.0 - t_end * inv_pd) - e0) * inv_m
        use_peak = (pk0 > 0.0 or pk1 > 0.0) and t_on < st[_S.index_decay_s, v]
        # Noise gain, the same shape over noise_decay_s.
        nl0 = st[_S.noise_level, v]
        nl1 = nl0 + (st[_S.noise_level_tgt, v] - nl0) * alpha
        st[_S.noise_level, v] = nl1
        inv_nd = 1.0 / st[_S.noise_decay_s, v]
        g0 = nl0 * (1.0 - t_on * inv_nd)
        g1 = (nl1 * (1.0 - t_end * inv_nd) - g0) * inv_m
        use_noise = (nl0 > 0.0 or nl1 > 0.0) and t_on < st[_S.noise_decay_s, v]
        npos = (int(np.rint(t_on * sr)) + int(st[_S.noise_first, v])) % NOISE_TABLE_SIZE
        # The third operator, where this voice uses it.
        x3 = st[_S.op3_index, v]
        x3_tgt = st[_S.op3_index_tgt, v]
        k30 = st[_S.op3_peak, v]
        k3_tgt = st[_S.op3_peak_tgt, v]
        use_op3 = (
            x3 != 0.0
            or x3_tgt != 0.0
            or ((k30 > 0.0 or k3_tgt > 0.0) and t_on < st[_S.index_decay_s, v])
        )
        lay = st[_S.op3_layout, v]
        ph30 = st[_S.phase_3, v]
        inc_3 = 0.0
        a0 = a1 = b0 = b1 = 0.0
        if use_op3:
            op3_ratio = (
                st[_S.op3_ratio, v] + (st[_S.op3_ratio_tgt, v] - st[_S.op3_ratio, v]) * alpha
            )
            st[_S.op3_ratio, v] = op3_ratio
            inc_3 = inc_c * op3_ratio
            scale3 = 1.0 if lay == LAYOUT_CARRIER2 else scale
            k31 = k30 + (k3_tgt - k30) * alpha
            st[_S.op3_peak, v] = k31
            b0 = k30 * scale3 * (1.0 - t_on * inv_pd)
            b1 = (k31 * scale3 * (1.0 - t_end * inv_pd) - b0) * inv_m
            x31 = x3 + (x3_tgt - x3) * alpha
            a0, a1 = x3 * scale3, (x31 - x3) * scale3 * inv_m
            # Where the glide has arrived, the target (turned down to 0, the operator
            # is then off and skipped again).
            st[_S.op3_index, v] = x3_tgt if abs(x31 - x3_tgt) < 1e-6 else x31
        # The noise band, where this voice uses it: its level glides within the chunk,
        # its width and centre per chunk (as the ratios do).
        bl0 = st[_S.band_level, v]
        bl_tgt = st[_S.band_level_tgt, v]
        use_band = bl0 > 0.0 or bl_tgt > 0.0
        bpos0 = st[_S.band_pos, v]
        pb0 = st[_S.phase_b, v]
        c0 = c1 = rate_b = inc_b = 0.0
        if use_band:
            bl1 = bl0 + (bl_tgt - bl0) * alpha
            st[_S.band_level, v] = bl_tgt if abs(bl1 - bl_tgt) < 1e-6 else bl1
            bw = st[_S.band_width, v] + (st[_S.band_width_tgt, v] - st[_S.band_width, v]) * alpha
            st[_S.band_width, v] = bw
            bc = st[_S.band_centre, v] + (st[_S.band_centre_tgt, v] - st[_S.band_centre, v]) * alpha
            st[_S.band_centre, v] = bc
            rate_b = 8.0 * bw * inc_c * _INV_TWO_PI  # table entries a sample
            inc_b = inc_c * bc
            c0, c1 = bl0 * _SQRT2, (bl1 - bl0) * _SQRT2 * inv_m
        # Output gain: towards its target, a straight line within the chunk.
        gl0 = st[_S.gain_l, v]
        gr0 = st[_S.gain_r, v]
        gl1 = (st[_S.gain_l_tgt, v] - gl0) * alpha
        gr1 = (st[_S.gain_r_tgt, v] - gr0) * alpha
        st[_S.gain_l, v] = gl0 + gl1
        st[_S.gain_r, v] = gr0 + gr1
        gl1 *= inv_m
        gr1 *= inv_m
        # Each stage is a plain loop over the chunk's frames on 1-D rows, which the
        # compiler turns into SIMD code.
        index = scratch[0]
        y = scratch[1]
        for k in range(m):
            index[k] = i0 + i1 * k
        if use_peak:
            for k in range(m):
                index[k] += max(e0 + e1 * k, 0.0)
        if st[_S.harmonic, v] != 0.0:
            _harmonic_tone(
                st,
                v,
                m,
                sr,
                tables,
                scratch,
                use_op3,
                lay,
                pc0,
                inc_c,
                pm0,
                inc_m,
                ph30,
                inc_3,
                a0,
                a1,
                b0,
                b1,
                t_on,
            )
        elif not use_op3:
            for k in range(m):
                y[k] = _sin(pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k))
        else:
            i3 = scratch[2]
            s3 = scratch[3]
            for k in range(m):
                i3[k] = a0 + a1 * k + max(b0 + b1 * k, 0.0)
                s3[k] = i3[k] * _sin(ph30 + inc_3 * k)
            if lay == LAYOUT_STACK:
                for k in range(m):
                    y[k] = _sin(pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k + s3[k]))
            elif lay == LAYOUT_PARALLEL:
                for k in range(m):
                    y[k] = _sin(pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k) + s3[k])
            else:
                for k in range(m):
                    mod = index[k] * _sin(pm0 + inc_m * k)
                    y[k] = _sin(pc0 + inc_c * k + mod) + i3[k] * (1.0 / 16.0) * _sin(
                        ph30 + inc_3 * k + mod
                    )
        if use_noise:
            for k in range(m):
                y[k] += max(g0 + g1 * k, 0.0) * noise[npos + k]
        if use_band:
            # The table reads (a gather, one sample at a time), then the carrier and the
            # sum in a loop the compiler vectorises.
            lp = scratch[2]
            for k in range(m):
                p = bpos0 + rate_b * k
                j = min(int(p), _LP_LAST)
                lp[k] = noise_lp[j] + (noise_lp[j + 1] - noise_lp[j]) * (p - j)
            for k in range(m):
                y[k] += (c0 + c1 * k) * _sin(pb0 + inc_b * k + 0.5 * math.pi) * lp[k]
        curve = st[_S.env_curve, v]
        if curve > 0.0 and q0 != -1.0:
            # A decay or release linear in dB (96 dB over its time), mixed with the line.
            env = scratch[6]
            # g: the dB line, 1 until the attack ends (the attack line p is below it).
            ka = 0
            if st[_S.released, v] > 0.0:
                g, r = rlev * 10.0 ** (-4.8 * st[_S.rel_t, v] / rdur), 10.0 ** (-4.8 / (rdur * sr))
            else:
                if tau < att_s:
                    ka = min(m, int(math.ceil((att_s - tau) * sr)))
                g, r = (
                    10.0 ** (-4.8 * (tau + ka * floor_t - att_s) / dec),
                    10.0 ** (-4.8 / (dec * sr)),
                )
            for k in range(ka):
                env[k] = 1.0
            for k in range(ka, m):
                env[k] = g
                g *= r
            for k in range(m):
                env[k] = max(
                    min(
                        max(q0 + q1 * k + curve * (env[k] - q0 - q1 * k), f0 + f1 * k), p0 + p1 * k
                    ),
                    0.0,
                )
            for k in range(m):
                y[k] *= env[k]
            st[_S.level, v] = env[m - 1]
        else:
            for k in range(m):
                y[k] *= max(min(max(q0 + q1 * k, f0 + f1 * k), p0 + p1 * k), 0.0)
            k = m - 1
            st[_S.level, v] = max(min(max(q0 + q1 * k, f0 + f1 * k), p0 + p1 * k), 0.0)
        if mixed:
            mix_l = mix[0]
            mix_r = mix[1]
            for k in range(m):
                mix_l[k] += y[k] * (gl0 + gl1 * k)
                mix_r[k] += y[k] * (gr0 + gr1 * k)
        else:
            amp = st[_S.amp, v]
            row = per_voice[v]
            for k in range(m):
                row[col + k] = y[k] * amp
        # On by m frames: phases (wrapped), clocks.
        st[_S.phase_c, v] = (pc0 + inc_c * m) % TWO_PI
        st[_S.phase_m, v] = (pm0 + inc_m * m) % TWO_PI
        if use_op3:
            st[_S.phase_3, v] = (ph30 + inc_3 * m) % TWO_PI
        if use_band:
            st[_S.band_pos, v] = (bpos0 + rate_b * m) % _LP_N
            st[_S.phase_b, v] = (pb0 + inc_b * m) % TWO_PI
        st[_S.tau, v] = tau + dt
        st[_S.rel_t, v] += dt
        st[_S.t_on, v] = t_end
        if st[_S.released, v] > 0.0 and st[_S.rel_t, v] >= st[_S.rel_dur, v]:
            any_done = True
    if mixed:
        for k in range(m):
            out[col + k, 0] += mix[0, k]
            out[col + k, 1] += mix[1, k]
    return any_done


@numba.njit(inline="always", fastmath=_FASTMATH)
def _read_tables(tbl, arg, out, m, w0, w1, use_on, d0, d1, use_dark):
    """``out[k]`` = the carrier tables ``tbl`` [3, TABLE_SIZE + 1] read at phase
    ``arg[k]`` (radians) with linear interpolation, mixed as ``engine.spectrum`` says:
    onset weight ``max(w0 + w1 k, 0)``, dark weight ``min(d0 + d1 k, 1)``. One loop per
    case, so that none tests a case per sample."""
    held = tbl[1]
    dark = tbl[2]
    on = tbl[0]
    if use_dark and use_on:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            h = held[j] + (held[j + 1] - held[j]) * f
            h += (dark[j] + (dark[j + 1] - dark[j]) * f - h) * min(d0 + d1 * k, 1.0)
            out[k] = h + (on[j] + (on[j + 1] - on[j]) * f - h) * max(w0 + w1 * k, 0.0)
    elif use_dark:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            h = held[j] + (held[j + 1] - held[j]) * f
            out[k] = h + (dark[j] + (dark[j + 1] - dark[j]) * f - h) * min(d0 + d1 * k, 1.0)
    elif use_on:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            h = held[j] + (held[j + 1] - held[j]) * f
            out[k] = h + (on[j] + (on[j + 1] - on[j]) * f - h) * max(w0 + w1 * k, 0.0)
    else:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            out[k] = held[j] + (held[j + 1] - held[j]) * f


@numba.njit(inline="always", fastmath=_FASTMATH)
def _harmonic_tone(
    st,
    v,
    m,
    sr,
    tables,
    scratch,
    use_op3,
    lay,
    pc0,
    inc_c,
    pm0,
    inc_m,
    ph30,
    inc_3,
    a0,
    a1,
    b0,
    b1,
    t_on,
):
    """Voice ``v``'s tone with its harmonic carrier into ``scratch[1]``: the carrier's
    phase as the sine carrier's (every layout), read from its tables; a live change's
    crossfade reads both buffers."""
    index = scratch[0]
    y = scratch[1]
    arg = scratch[4]
    second = scratch[5]
    carrier2 = use_op3 and lay == LAYOUT_CARRIER2
    if not use_op3:
        for k in range(m):
            arg[k] = pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k)
    else:
        i3 = scratch[2]
        s3 = scratch[3]
        for k in range(m):
            i3[k] = a0 + a1 * k + max(b0 + b1 * k, 0.0)
            s3[k] = i3[k] * _sin(ph30 + inc_3 * k)
        if lay == LAYOUT_STACK:
            for k in range(m):
                arg[k] = pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k + s3[k])
        elif lay == LAYOUT_PARALLEL:
            for k in range(m):
                arg[k] = pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k) + s3[k]
        else:
            for k in range(m):
                mod = index[k] * _sin(pm0 + inc_m * k)
                arg[k] = pc0 + inc_c * k + mod
                second[k] = i3[k] * (1.0 / 16.0) * _sin(ph30 + inc_3 * k + mod)
    onset_s = st[_S.onset_s, v]
    use_on = st[_S.onset_on, v] != 0.0 and t_on < onset_s
    w0, w1 = 1.0 - t_on / onset_s, -1.0 / (onset_s * sr)
    darken_s = st[_S.darken_s, v]
    use_dark = st[_S.dark_on, v] != 0.0
    d0, d1 = t_on / darken_s, 1.0 / (darken_s * sr)
    slot = int(st[_S.tslot, v])
    buf = int(st[_S.spec_buf, v])
    _read_tables(tables[slot, buf], arg, y, m, w0, w1, use_on, d0, d1, use_dark)
    fade0 = st[_S.spec_fade, v]
    if fade0 > 0.0:
        old = scratch[6]
        _read_tables(tables[slot, 1 - buf], arg, old, m, w0, w1, use_on, d0, d1, use_dark)
        fade1 = max(fade0 - m / (SMOOTH_S * sr), 0.0)
        step = (fade1 - fade0) / m
        for k in range(m):
            y[k] += (old[k] - y[k]) * (fade0 + step * k)
        st[_S.spec_fade, v] = fade1
    if carrier2:
        for k in range(m):
            y[k] += second[k]


def _build_tables(st, tables, vs, basis, swap):
    """Build voices ``vs``' carrier tables from their spectra rows at their increments
    (``engine.spectrum``): into the buffer they read (``swap`` 0: a fresh note), or into
    the other one, crossfaded to from the next chunk (``swap`` 1: a live change)."""
    nh = basis.shape[0]
    amp = np.empty((3, nh))
    for v in vs:
        slot = int(st[_S.tslot, v])
        buf = int(st[_S.spec_buf, v])
        if swap:
            buf = 1 - buf
            st[_S.spec_buf, v] = buf
            st[_S.spec_fade, v] = 1.0
        st[_S.spec_dirty, v] = 0.0
        limit = TWO_PI * _BAND_LIMIT / st[_S.inc_c, v]  # harmonics k below it sound
        darken = st[_S.darken_db, v]
        differs = False
        for which in range(2):
            row = _S.onset_h1 if which == 0 else _S.held_h1
            power = 0.0
            for h in range(nh):
                db = st[row + h, v]
                a = 10.0 ** (db / 20.0) if db > _DB_FLOOR else 0.0
                amp[which, h] = a
                power += a * a
                if which == 1 and db != st[_S.onset_h1 + h, v]:
                    differs = True
            scale = 1.0 / math.sqrt(power) if power > 0.0 else 0.0
            for h in range(nh):
                amp[which, h] = amp[which, h] * scale if h + 1 < limit else 0.0
        for h in range(nh):
            amp[2, h] = amp[1, h] * 10.0 ** (-darken * math.log2(h + 1.0) / 20.0)
        st[_S.onset_on, v] = 1.0 if differs else 0.0
        st[_S.dark_on, v] = 1.0 if darken > 0.0 else 0.0
        for which in range(3):
            if (which == 0 and not differs) or (which == 2 and darken <= 0.0):
                continue
            t = tables[slot, buf, which]
            t[:] = 0.0
            for h in range(nh):
                a = amp[which, h]
                if a != 0.0:
                    b = basis[h]
                    for j in range(t.shape[0]):
                        t[j] += a * b[j]


_LAYOUT_DIGEST = hashlib.sha1(" ".join(_FIELDS).encode()).hexdigest()[:12]


def _compiled(fn):
    """``fn`` compiled on its first call, cached on disk (``engine/__pycache__``, else the
    user's cache folder). Where numba finds nowhere to cache, it compiles at every start
    (about 3 s) instead of failing the import."""
    # numba's disk cache knows only this file's time stamp, not the rows the kernels
    # read as constants, which the schema's rows decide: the layout's digest in the name
    # gives another layout another cache entry.
    fn.__qualname__ = f"{fn.__name__}_{_LAYOUT_DIGEST}"
    try:
        return numba.njit(cache=True, fastmath=_FASTMATH)(fn)
    except RuntimeError:
        return numba.njit(fastmath=_FASTMATH)(fn)


_render_chunk = _compiled(_render_chunk)
_build_tables = _compiled(_build_tables)


def find_note(st, n, key):
    """The first of the n voices whose ``note_key`` is ``key``, or -1."""
    for v in range(n):
        if st[_S.note_key, v] == key:
            return v
    return -1


def steal_victim(st, n, max_voices):
    """The voice a new note steals, or -1 when fewer than ``max_voices`` notes sound (not
    fading): the quietest released voice that is not fading, else the oldest note (the
    first of equal ones)."""
    live = 0
    quiet, quiet_level = -1, math.inf
    old, old_age = -1, math.inf
    for v in range(n):
        if st[_S.fading, v] != 0.0:
            continue
        live += 1
        if st[_S.released, v] > 0.0:
            if st[_S.level, v] < quiet_level:
                quiet, quiet_level = v, st[_S.level, v]
        elif st[_S.age, v] < old_age:
            old, old_age = v, st[_S.age, v]
    if live < max_voices:
        return -1
    return quiet if quiet >= 0 else old


find_note = _compiled(find_note)
steal_victim = _compiled(steal_victim)
