"""Struct-of-arrays FM/ADSR voices, rendered vectorised across voices.

Each voice is a 2-operator phase-modulation pair, the seed's sound, plus (schema v2) an
index peak and white noise that both fall linearly from note-on::

    I(t) = (mod_index + index_peak * max(0, 1 - t_on / index_decay_s)) * mod_scale
    y(t) = amp * env(t) * (sin(phase_c + I(t) * sin(phase_m))
                           + noise_level * max(0, 1 - t_on / noise_decay_s) * nz(t))

with ``f_m = ratio * f_c``, ``env`` a linear ADSR, ``t_on`` the seconds since the voice's
(re)trigger and ``nz`` the fixed table ``NOISE`` read from ``noise_start(pitch)`` on,
one entry per sample. Schema v3 adds a third operator at ``f_3 = op3_ratio * f_c``, its
index ``I3(t) = (op3_index + op3_peak * max(0, 1 - t_on / index_decay_s))`` (times
``mod_scale`` in layouts 0 and 1) and ``s3 = I3(t) * sin(phase_3)``, placed by its layout::

    0 (parallel):  sin(phase_c + I(t) * sin(phase_m) + s3)
    1 (stack):     sin(phase_c + I(t) * sin(phase_m + s3))
    2 (carrier 2): sin(phase_c + I(t) * sin(phase_m)) + I3(t) / 16 * sin(phase_3 + I(t) * sin(phase_m))

in place of the tone above; with ``I3`` at 0 each is the schema-2 tone exactly. Every
per-voice field is one row of a single float64 array, so that freeing a voice (moving the
last active voice into its slot) is one copy and the active voices are always the first
``n`` columns: rendering slices, and gathers rows only where voices of different third-
operator layouts sound together.

The envelope is piecewise linear, so within a block it is ``min(p, max(q, floor))`` of
three straight lines per voice: attack (p) and decay (q) with the sustain floor while the
key is held; after release p is out of reach, q is the release ramp and the floor is 0.
"""

from __future__ import annotations

import math

import numpy as np

from engine.schema import TIMBRE_INDEX

__all__ = [
    "VoiceBank",
    "midi_to_hz",
    "velocity_to_amp",
    "note_key",
    "noise_start",
    "FADE_S",
    "MAX_CHUNK",
    "NOISE",
    "NOISE_TABLE_SIZE",
]

TWO_PI = 2.0 * math.pi
#: Length of the fade given to a stolen or silenced voice: short, but long enough not to click.
FADE_S = 0.005
#: Longest stretch rendered in one go; longer requests are split (keeps float32 phase exact).
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
_NOISE_WIN = np.lib.stride_tricks.sliding_window_view(_NOISE_EXT, MAX_CHUNK)


def midi_to_hz(note: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency in Hz of a (fractional) MIDI note; A4 = 69 = 440 Hz."""
    if isinstance(note, (int, float)):  # a note-on: plain floats, the same pow()
        return 440.0 * 2.0 ** ((float(note) - 69.0) / 12.0)
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def noise_start(pitch: float) -> int:
    """Where in ``NOISE`` a voice of this (rounded) MIDI pitch starts reading at note-on."""
    return (int(round(pitch)) * 7919) % NOISE_TABLE_SIZE


def velocity_to_amp(velocity: float | np.ndarray) -> float | np.ndarray:
    """The seed's loudness curve: (velocity / 127) ** 1.5."""
    if isinstance(velocity, (int, float)):  # a note-on: plain floats, the same pow()
        return (float(velocity) / 127.0) ** 1.5
    return (np.asarray(velocity, dtype=np.float64) / 127.0) ** 1.5


def note_key(ch: int, pitch: int) -> float:
    """What a sounding voice's ``note_key`` field holds: one number per channel and key,
    never 0 (the value of a voice that is fading out, or of no note)."""
    return float(ch * 128 + int(pitch) + 1)


# Where each timbre value sits in a timbre vector (schema order).
(_ATTACK, _DECAY, _RELEASE, _SUSTAIN, _RATIO, _INDEX, _PEAK, _PEAK_DECAY, _NOISE, _NOISE_DECAY,
 _RATIO3, _INDEX3, _PEAK3, _LAYOUT) = (
    TIMBRE_INDEX[name]
    for name in (
        "attack_s", "decay_s", "release_s", "sustain", "mod_ratio", "mod_index",
        "index_peak", "index_decay_s", "noise_level", "noise_decay_s",
        "op3_ratio", "op3_index", "op3_peak", "op3_layout",
    )
)
#: The third operator's layouts (``op3_layout``, rounded).
LAYOUT_PARALLEL, LAYOUT_STACK, LAYOUT_CARRIER2 = 0.0, 1.0, 2.0

# Row indices of the per-voice state array.
_FIELDS = (
    "chan", "pitch", "amp", "phase_c", "phase_m", "inc_c",
    "ratio", "ratio_tgt", "index", "index_tgt", "sustain", "sustain_tgt",
    "attack_s", "decay_s", "release_s",
    "tau", "released", "rel_level", "rel_t", "rel_dur", "level",
    "age", "held", "pedal_held", "fading",
    "gain_l", "gain_r", "gain_l_tgt", "gain_r_tgt", "mod_scale",
    "t_on", "index_peak", "index_decay_s", "noise_level", "noise_decay_s", "noise_first",
    "index_peak_tgt", "noise_level_tgt", "sost", "note_key",
    "ratio3", "ratio3_tgt", "index3", "index3_tgt", "peak3", "peak3_tgt", "layout", "phase_3",
)
_F = {name: i for i, name in enumerate(_FIELDS)}
# The four gain rows are adjacent: current left, right, then their targets.
_GAIN = _F["gain_l"]
# Straight lines per voice and chunk: attack, decay/release, sustain floor, index,
# modulator phase, carrier phase, index-peak decay, noise decay, then the third
# operator's phase, its peak's decay and its index.
_N_LINES = 11
assert _FIELDS[_GAIN : _GAIN + 4] == ("gain_l", "gain_r", "gain_l_tgt", "gain_r_tgt")


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
        self._k = np.arange(MAX_CHUNK, dtype=np.float32)
        self._inc_3: np.ndarray | None = None
        # Line coefficients [line, voice, (offset, slope)] and [1, k] so that all lines
        # are one small matrix product; the lines' buffer is flat so that any [L, n, m]
        # view of it is contiguous. Lines 6 (index peak), 7 (noise gain) and 8-10 (the
        # third operator) are only computed while some voice needs them.
        self._coef = np.zeros((_N_LINES, self.capacity, 2), dtype=np.float32)
        self._ramp = np.ones((2, MAX_CHUNK), dtype=np.float32)
        self._ramp[1] = self._k
        self._lines = np.empty(_N_LINES * self.capacity * MAX_CHUNK, dtype=np.float32)
        self._mix = np.empty((MAX_CHUNK, 4), dtype=np.float32)
        self._gains = np.empty((self.capacity, 4), dtype=np.float32)

    # -- slots -------------------------------------------------------------------------

    def add(self) -> int:
        """Claim the next free slot and return its index (its fields are zeroed)."""
        if self.n >= self.capacity:
            raise RuntimeError("no free voice slot")
        i = self.n
        self.state[:, i] = 0.0
        self.n += 1
        return i

    def remove(self, i: int) -> None:
        """Free slot ``i``: the last active voice moves into it."""
        last = self.n - 1
        if i != last:
            self.state[:, i] = self.state[:, last]
        self.n = last

    def clear(self) -> None:
        self.n = 0

    # -- envelope control --------------------------------------------------------------

    def start_release(self, idx: np.ndarray | int, duration_s: np.ndarray | float | None = None) -> None:
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

    def claim(self, i: int, ch: int, pitch: int) -> None:
        """Voice ``i`` plays key ``pitch`` of channel ``ch`` (until it fades)."""
        self.chan[i] = ch
        self.pitch[i] = pitch
        self.note_key[i] = note_key(ch, pitch)

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

        ``fresh``: a new voice, whose smoothed values (sustain, ratios, indices) start at
        their targets and which takes the third operator's layout; otherwise (a
        retrigger) they glide there from where they are and the layout stays. The index
        peaks and the noise restart with every note.
        """
        t = np.asarray(timbre, dtype=np.float64).T
        self.attack_s[idx] = t[_ATTACK]
        self.decay_s[idx] = t[_DECAY]
        self.release_s[idx] = t[_RELEASE]
        self.sustain_tgt[idx] = t[_SUSTAIN]
        self.ratio_tgt[idx] = t[_RATIO]
        self.index_tgt[idx] = t[_INDEX]
        self.index_peak[idx] = self.index_peak_tgt[idx] = t[_PEAK]
        self.index_decay_s[idx] = t[_PEAK_DECAY]
        self.noise_level[idx] = self.noise_level_tgt[idx] = t[_NOISE]
        self.noise_decay_s[idx] = t[_NOISE_DECAY]
        self.ratio3_tgt[idx] = t[_RATIO3]
        self.index3_tgt[idx] = t[_INDEX3]
        self.peak3[idx] = self.peak3_tgt[idx] = t[_PEAK3]
        if fresh:
            self.sustain[idx] = self.sustain_tgt[idx]
            self.ratio[idx] = self.ratio_tgt[idx]
            self.index[idx] = self.index_tgt[idx]
            self.ratio3[idx] = self.ratio3_tgt[idx]
            self.index3[idx] = self.index3_tgt[idx]
            # A sounding voice keeps its layout (a retrigger, a live change): switching
            # would jump the waveform mid-note.
            self.layout[idx] = np.clip(np.rint(t[_LAYOUT]), 0.0, 2.0)

    def set_time(self, idx: np.ndarray, name: str, seconds: float) -> None:
        """Change attack/decay/release of sounding voices without a jump in level."""
        old = getattr(self, name)[idx]
        safe_old = np.maximum(old, 1e-9)
        new = max(float(seconds), 0.0)
        if name == "attack_s":
            in_attack = (self.released[idx] == 0) & (self.tau[idx] < old)
            self.tau[idx] = np.where(in_attack, self.tau[idx] * new / safe_old, self.tau[idx] - old + new)
        elif name == "decay_s":
            a = self.attack_s[idx]
            in_decay = (self.released[idx] == 0) & (self.tau[idx] >= a) & (self.tau[idx] < a + old)
            self.tau[idx] = np.where(in_decay, a + (self.tau[idx] - a) * new / safe_old, self.tau[idx])
        elif name == "release_s":
            rel = (self.released[idx] == 1) & (self.fading[idx] == 0)
            self.rel_t[idx] = np.where(rel, self.rel_t[idx] * new / safe_old, self.rel_t[idx])
            self.rel_dur[idx] = np.where(rel, new, self.rel_dur[idx])
        getattr(self, name)[idx] = new

    # -- rendering ---------------------------------------------------------------------

    def render(self, out: np.ndarray) -> None:
        """Add the stereo mix of all sounding voices into ``out`` [n_frames, 2] float32."""
        pos = 0
        total = out.shape[0]
        while pos < total:
            m = min(MAX_CHUNK, total - pos)
            if self.n:
                sig = self._render_chunk(m)
                self._mix_into(out[pos:pos + m], sig, m)
                self._advance(m)
            pos += m

    def render_voices(self, n_frames: int) -> np.ndarray:
        """Per-voice mono signal with amplitude applied, [n, n_frames] float32 (offline use)."""
        res = np.empty((self.n, n_frames), dtype=np.float32)
        pos = 0
        while pos < n_frames:
            m = min(MAX_CHUNK, n_frames - pos)
            if self.n:
                n = self.n
                sig = self._render_chunk(m)
                np.multiply(sig, self.amp[:n, None].astype(np.float32), out=res[:n, pos:pos + m])
                self._advance(m, free=False)
            pos += m
        return res

    def _render_chunk(self, m: int) -> np.ndarray:
        """Envelope-shaped FM signal of the n sounding voices, [n, m] float32 (no gain).

        Six straight lines per voice (attack p, decay/release q, sustain floor f, FM
        index, modulator phase, carrier phase), and while some voice needs them two more
        (index-peak decay, noise decay), are built in one matrix product; the rest is a
        handful of whole-array operations.
        """
        n = self.n
        sr = self.sample_rate
        alpha = 1.0 - math.exp(-m / (SMOOTH_S * sr))
        c0 = self._coef[:, :n, 0]
        c1 = self._coef[:, :n, 1]

        att = np.maximum(self.attack_s[:n], 1.0 / sr)
        dec = np.maximum(self.decay_s[:n], 1.0 / sr)
        sus0 = self.sustain[:n]
        sus1 = sus0 + (self.sustain_tgt[:n] - sus0) * alpha
        tau = self.tau[:n]
        # Held voices: attack line, decay line, sustain floor (gliding to its target).
        np.divide(tau, att, out=c0[0])
        np.divide(1.0 / sr, att, out=c1[0])
        drop = 1.0 - sus0
        c0[1] = 1.0 - drop * (tau - self.attack_s[:n]) / dec
        c1[1] = -drop / (dec * sr)
        c0[2] = sus0
        c1[2] = (sus1 - sus0) / m
        # Once the decay is over the floor alone holds the level (q out of the way), so a
        # live sustain change glides along the floor instead of jumping off the decay line.
        decayed = tau >= self.attack_s[:n] + dec
        if decayed.any():
            c0[1, decayed] = -1.0
            c1[1, decayed] = 0.0
        rel = self.released[:n] > 0
        if rel.any():
            # Released voices: no attack, a ramp from the release level to 0, floor 0.
            rdur = np.maximum(self.rel_dur[:n][rel], 1.0 / sr)
            rlev = self.rel_level[:n][rel]
            c0[0, rel] = 2.0
            c1[0, rel] = 0.0
            c0[1, rel] = rlev * (1.0 - self.rel_t[:n][rel] / rdur)
            c1[1, rel] = -rlev / (rdur * sr)
            c0[2, rel] = 0.0
            c1[2, rel] = 0.0
        self.sustain[:n] = sus1
        # Modulator index (ramped towards its target) and the two phases.
        inc_c = self.inc_c[:n]
        ratio = self.ratio[:n] + (self.ratio_tgt[:n] - self.ratio[:n]) * alpha
        self.ratio[:n] = ratio
        inc_m = inc_c * ratio
        scale = self.mod_scale[:n]
        idx_new = self.index[:n] + (self.index_tgt[:n] - self.index[:n]) * alpha
        c0[3] = self.index[:n] * scale
        c1[3] = (idx_new - self.index[:n]) * scale / m
        self.index[:n] = idx_new
        c0[4] = self.phase_m[:n]
        c1[4] = inc_m
        c0[5] = self.phase_c[:n]
        c1[5] = inc_c
        self._inc_m = inc_m
        # Index peak and noise: lines from 1 at note-on (t_on = 0) to 0 at their decay
        # time, scaled by peak (times the mod-wheel scale) and noise level, clipped at 0.
        # Skipped while no voice has one still sounding: the common case costs 2 tests.
        # Live changes of the peak and the noise level glide like the index (their
        # targets); the line then runs from the old value's point to the new one's, which
        # is the same line as without a change when there is none.
        t_on = self.t_on[:n]
        t_end = t_on + m / sr
        peak = self.index_peak[:n]
        peak_tgt = self.index_peak_tgt[:n]
        use_peak = (bool(peak.any()) or bool(peak_tgt.any())) and bool(
            (((peak > 0.0) | (peak_tgt > 0.0)) & (t_on < self.index_decay_s[:n])).any()
        )
        nlev = self.noise_level[:n]
        nlev_tgt = self.noise_level_tgt[:n]
        use_noise = (bool(nlev.any()) or bool(nlev_tgt.any())) and bool(
            (((nlev > 0.0) | (nlev_tgt > 0.0)) & (t_on < self.noise_decay_s[:n])).any()
        )
        # The third operator: skipped (its ratio's glide and its phase too) while no voice
        # uses it; its phase then starts wherever it is, under an index gliding up from 0.
        i3 = self.index3[:n]
        i3_tgt = self.index3_tgt[:n]
        pk3 = self.peak3[:n]
        pk3_tgt = self.peak3_tgt[:n]
        use_op3 = bool(i3.any()) or bool(i3_tgt.any()) or (
            (bool(pk3.any()) or bool(pk3_tgt.any()))
            and bool((((pk3 > 0.0) | (pk3_tgt > 0.0)) & (t_on < self.index_decay_s[:n])).any())
        )
        n_lines = 11 if use_op3 else 8 if use_noise else 7 if use_peak else 6
        self._inc_3 = None
        if use_op3:
            ratio3 = self.ratio3[:n] + (self.ratio3_tgt[:n] - self.ratio3[:n]) * alpha
            self.ratio3[:n] = ratio3
            self._inc_3 = inc_c * ratio3
            lay = self.layout[:n]
            # The mod wheel scales the third operator's index too (not a second carrier's level).
            scale3 = np.where(lay == LAYOUT_CARRIER2, 1.0, scale)
            c0[8] = self.phase_3[:n]
            c1[8] = self._inc_3
            pk3_1 = pk3 + (pk3_tgt - pk3) * alpha
            inv = 1.0 / self.index_decay_s[:n]
            c0[9] = pk3 * scale3 * (1.0 - t_on * inv)
            c1[9] = (pk3_1 * scale3 * (1.0 - t_end * inv) - c0[9]) / m
            self.peak3[:n] = pk3_1
            i3_1 = i3 + (i3_tgt - i3) * alpha
            c0[10] = i3 * scale3
            c1[10] = (i3_1 - i3) * scale3 / m
            # Where the glide has arrived, the target (turned down to 0, the operator is
            # then off and skipped again).
            self.index3[:n] = np.where(np.abs(i3_1 - i3_tgt) < 1e-6, i3_tgt, i3_1)
            if not use_noise:
                c0[7] = 0.0
                c1[7] = 0.0
        if use_peak:
            peak1 = peak + (peak_tgt - peak) * alpha
            inv = 1.0 / self.index_decay_s[:n]
            c0[6] = peak * scale * (1.0 - t_on * inv)
            c1[6] = (peak1 * scale * (1.0 - t_end * inv) - c0[6]) / m
            self.index_peak[:n] = peak1
        elif use_noise or use_op3:
            c0[6] = 0.0
            c1[6] = 0.0
        if use_noise:
            nlev1 = nlev + (nlev_tgt - nlev) * alpha
            inv = 1.0 / self.noise_decay_s[:n]
            c0[7] = nlev * (1.0 - t_on * inv)
            c1[7] = (nlev1 * (1.0 - t_end * inv) - c0[7]) / m
            self.noise_level[:n] = nlev1

        lines = self._lines[: n_lines * n * m].reshape(n_lines, n, m)
        np.matmul(self._coef[:n_lines, :n], self._ramp[:, :m], out=lines)
        if use_peak:
            np.maximum(lines[6], 0.0, out=lines[6])
            lines[3] += lines[6]
        env = lines[1]
        np.maximum(env, lines[2], out=env)
        np.minimum(env, lines[0], out=env)
        np.maximum(env, 0.0, out=env)
        self.level[:n] = env[:, m - 1]
        sig = lines[4]
        if use_op3:
            sig, extra, c2 = self._op3(lines, sig, m)
        np.sin(sig, out=sig)
        sig *= lines[3]
        if use_op3 and c2 is not None:
            # Second carriers: sin(phase_3 + I * sin(phase_m)) at a 16th of their index.
            extra[1] += sig[c2]
            np.sin(extra[1], out=extra[1])
            extra[1] *= extra[0]
        sig += lines[5]
        if use_op3:
            par = self.layout[:n] == LAYOUT_PARALLEL
            if par.all():
                sig += lines[8]
            elif par.any():
                sig[par] += lines[8][par]
        np.sin(sig, out=sig)
        if use_op3 and c2 is not None:
            sig[c2] += extra[1]
        if use_noise:
            ng = lines[7]
            np.maximum(ng, 0.0, out=ng)
            # Each voice's window of the table: one fancy index, no loop over voices. The
            # samples since note-on are t_on * sr (rounded: t_on is a sum of chunk lengths).
            pos = np.rint(t_on * sr).astype(np.intp)
            pos += self.noise_first[:n].astype(np.intp)
            pos %= NOISE_TABLE_SIZE
            ng *= _NOISE_WIN[pos, :m]
            sig += ng
        sig *= env
        return sig

    def _op3(self, lines: np.ndarray, sig: np.ndarray, m: int):
        """The third operator (lines 8-10): ``lines[8]`` becomes ``s3 = I3 * sin(phase_3)``
        and stacks onto the modulator phase ``sig`` (layout 1). Returns ``sig`` and, for
        second carriers (layout 2), ``(I3 / 16, phase_3)`` of their rows and the rows
        (None when there are none)."""
        n = self.n
        i3 = lines[10]
        np.maximum(lines[9], 0.0, out=lines[9])
        i3 += lines[9]
        lay = self.layout[:n]
        c2 = lay == LAYOUT_CARRIER2
        extra = None
        if c2.any():
            extra = np.stack([i3[c2] * np.float32(1.0 / 16.0), lines[8][c2]])
        else:
            c2 = None
        s3 = lines[8]
        np.sin(s3, out=s3)
        s3 *= i3
        stk = lay == LAYOUT_STACK
        if stk.all():
            sig += s3
        elif stk.any():
            sig[stk] += s3[stk]
        return sig, extra, c2

    def _mix_into(self, out: np.ndarray, sig: np.ndarray, m: int) -> None:
        n = self.n
        alpha = 1.0 - math.exp(-m / (SMOOTH_S * self.sample_rate))
        gain = self.state[_GAIN : _GAIN + 2, :n]  # current left, right
        step = self.state[_GAIN + 2 : _GAIN + 4, :n] - gain  # towards the targets
        step *= alpha
        # Per voice: [left, right, left slope, right slope]; one product mixes all voices:
        # out[k] += sum_v sig[v, k] * (gain[v] + slope[v] * k).
        g = self._gains[:n]
        g[:, :2] = gain.T
        np.multiply(step.T, 1.0 / m, out=g[:, 2:])
        gain += step
        mix = np.matmul(sig.T, g, out=self._mix[:m])
        out += mix[:, :2]
        mix[:, 2:] *= self._k[:m, None]
        out += mix[:, 2:]

    def _advance(self, m: int, free: bool = True) -> None:
        """Move phases and envelope clocks on by m frames; free finished voices."""
        n = self.n
        dt = m / self.sample_rate
        self.phase_c[:n] = np.mod(self.phase_c[:n] + self.inc_c[:n] * m, TWO_PI)
        self.phase_m[:n] = np.mod(self.phase_m[:n] + self._inc_m * m, TWO_PI)
        if self._inc_3 is not None:
            self.phase_3[:n] = np.mod(self.phase_3[:n] + self._inc_3 * m, TWO_PI)
        self.tau[:n] += dt
        self.rel_t[:n] += dt
        self.t_on[:n] += dt
        if free:
            done = (self.released[:n] > 0) & (self.rel_t[:n] >= self.rel_dur[:n])
            if done.any():
                for i in np.flatnonzero(done)[::-1]:
                    self.remove(int(i))
