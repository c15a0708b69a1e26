"""Struct-of-arrays FM/ADSR voices, rendered vectorised across voices.

Each voice is a 2-operator phase-modulation pair, the seed's sound:
``sin(phase_c + index * sin(phase_m))`` with ``f_m = ratio * f_c``, shaped by a linear
ADSR envelope. Every per-voice field is one row of a single float64 array, so that
freeing a voice (moving the last active voice into its slot) is one copy and the active
voices are always the first ``n`` columns: rendering slices, never gathers.

The envelope is piecewise linear, so within a block it is ``min(p, max(q, floor))`` of
three straight lines per voice: attack (p) and decay (q) with the sustain floor while the
key is held; after release p is out of reach, q is the release ramp and the floor is 0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["VoiceBank", "midi_to_hz", "velocity_to_amp", "FADE_S", "MAX_CHUNK"]

TWO_PI = 2.0 * math.pi
#: Length of the fade given to a stolen or silenced voice: short, but long enough not to click.
FADE_S = 0.005
#: Longest stretch rendered in one go; longer requests are split (keeps float32 phase exact).
MAX_CHUNK = 512
#: Time constant of the smoothing of live changes (index, ratio, sustain, gains).
SMOOTH_S = 0.010


def midi_to_hz(note: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency in Hz of a (fractional) MIDI note; A4 = 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def velocity_to_amp(velocity: float | np.ndarray) -> float | np.ndarray:
    """The seed's loudness curve: (velocity / 127) ** 1.5."""
    return (np.asarray(velocity, dtype=np.float64) / 127.0) ** 1.5


# Row indices of the per-voice state array.
_FIELDS = (
    "chan", "pitch", "amp", "phase_c", "phase_m", "inc_c",
    "ratio", "ratio_tgt", "index", "index_tgt", "sustain", "sustain_tgt",
    "attack_s", "decay_s", "release_s",
    "tau", "released", "rel_level", "rel_t", "rel_dur", "level",
    "age", "held", "pedal_held", "fading",
    "gain_l", "gain_r", "gain_l_tgt", "gain_r_tgt", "mod_scale",
)
_F = {name: i for i, name in enumerate(_FIELDS)}


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
        shape = (self.capacity, MAX_CHUNK)
        self._w1 = np.empty(shape, dtype=np.float32)
        self._w2 = np.empty(shape, dtype=np.float32)
        self._w3 = np.empty(shape, dtype=np.float32)
        self._mix = np.empty((MAX_CHUNK, 2), dtype=np.float32)
        self._mix2 = np.empty((MAX_CHUNK, 2), dtype=np.float32)
        self._freed = np.zeros(self.capacity, dtype=bool)

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

    def fade(self, idx: np.ndarray | int) -> None:
        """Fade voices ``idx`` out over FADE_S (stolen or silenced): no click."""
        self.start_release(idx, FADE_S)
        self.fading[idx] = 1.0

    def retrigger(self, i: int) -> None:
        """Restart voice ``i``'s envelope from its current level (same phase)."""
        # The attack line is tau / attack: placing tau at level * attack resumes there.
        self.tau[i] = self.level[i] * self.attack_s[i]
        self.released[i] = 0.0
        self.fading[i] = 0.0
        self.held[i] = 1.0
        self.pedal_held[i] = 0.0

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

    def _lines(self, m: int, a0: np.ndarray, a1: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out[v, k] = a0[v] + a1[v] * k for k < m."""
        np.multiply(a1.astype(np.float32)[:, None], self._k[None, :m], out=out)
        out += a0.astype(np.float32)[:, None]
        return out

    def _render_chunk(self, m: int) -> np.ndarray:
        """Envelope-shaped FM signal of the n sounding voices, [n, m] float32 (no gain)."""
        n = self.n
        sr = self.sample_rate
        alpha = 1.0 - math.exp(-m / (SMOOTH_S * sr))
        w1, w2, w3 = self._w1[:n, :m], self._w2[:n, :m], self._w3[:n, :m]

        # Envelope lines (float64 coefficients, float32 samples).
        rel = self.released[:n] > 0
        att = np.maximum(self.attack_s[:n], 1.0 / sr)
        dec = np.maximum(self.decay_s[:n], 1.0 / sr)
        sus0 = self.sustain[:n]
        sus1 = sus0 + (self.sustain_tgt[:n] - sus0) * alpha
        tau = self.tau[:n]
        rdur = np.maximum(self.rel_dur[:n], 1.0 / sr)
        rlev = self.rel_level[:n]
        p0 = np.where(rel, 2.0, tau / att)
        p1 = np.where(rel, 0.0, 1.0 / (att * sr))
        # Once the decay is over the floor alone holds the level (q out of the way), so a
        # live sustain change glides along the floor instead of jumping off the decay line.
        decayed = ~rel & (tau >= self.attack_s[:n] + dec)
        q0 = np.where(rel, rlev * (1.0 - self.rel_t[:n] / rdur), 1.0 - (1.0 - sus0) * (tau - self.attack_s[:n]) / dec)
        q1 = np.where(rel, -rlev / (rdur * sr), -(1.0 - sus0) / (dec * sr))
        q0[decayed] = -1.0
        q1[decayed] = 0.0
        f0 = np.where(rel, 0.0, sus0)
        f1 = np.where(rel, 0.0, (sus1 - sus0) / m)
        env = self._lines(m, q0, q1, w1)
        np.maximum(env, self._lines(m, f0, f1, w2), out=env)
        np.minimum(env, self._lines(m, p0, p1, w2), out=env)
        np.maximum(env, 0.0, out=env)
        self.level[:n] = env[:, m - 1]
        self.sustain[:n] = sus1

        # Modulator: index * sin(phase_m), index ramped towards its target.
        inc_c = self.inc_c[:n]
        ratio = self.ratio[:n] + (self.ratio_tgt[:n] - self.ratio[:n]) * alpha
        self.ratio[:n] = ratio
        inc_m = inc_c * ratio
        idx0 = self.index[:n] * self.mod_scale[:n]
        idx_new = self.index[:n] + (self.index_tgt[:n] - self.index[:n]) * alpha
        idx1 = idx_new * self.mod_scale[:n]
        self.index[:n] = idx_new
        ph = self._lines(m, self.phase_m[:n], inc_m, w2)
        np.sin(ph, out=ph)
        ph *= self._lines(m, idx0, (idx1 - idx0) / m, w3)
        # Carrier: sin(phase_c + modulation), times the envelope.
        ph += self._lines(m, self.phase_c[:n], inc_c, w3)
        np.sin(ph, out=ph)
        ph *= env
        self._inc_m = inc_m
        return ph

    def _mix_into(self, out: np.ndarray, sig: np.ndarray, m: int) -> None:
        n = self.n
        alpha = 1.0 - math.exp(-m / (SMOOTH_S * self.sample_rate))
        g0 = np.empty((n, 2), dtype=np.float32)
        g0[:, 0] = self.gain_l[:n]
        g0[:, 1] = self.gain_r[:n]
        new_l = self.gain_l[:n] + (self.gain_l_tgt[:n] - self.gain_l[:n]) * alpha
        new_r = self.gain_r[:n] + (self.gain_r_tgt[:n] - self.gain_r[:n]) * alpha
        g1 = np.empty((n, 2), dtype=np.float32)
        g1[:, 0] = (new_l - self.gain_l[:n]) / m
        g1[:, 1] = (new_r - self.gain_r[:n]) / m
        self.gain_l[:n] = new_l
        self.gain_r[:n] = new_r
        # sum_v sig[v, k] * (g0[v] + g1[v] * k): two small matrix products.
        mix = np.matmul(sig.T, g0, out=self._mix[:m])
        ramp = np.matmul(sig.T, g1, out=self._mix2[:m])
        ramp *= self._k[:m, None]
        mix += ramp
        out += mix

    def _advance(self, m: int, free: bool = True) -> None:
        """Move phases and envelope clocks on by m frames; free finished voices."""
        n = self.n
        dt = m / self.sample_rate
        self.phase_c[:n] = np.mod(self.phase_c[:n] + self.inc_c[:n] * m, TWO_PI)
        self.phase_m[:n] = np.mod(self.phase_m[:n] + self._inc_m * m, TWO_PI)
        self.tau[:n] += dt
        self.rel_t[:n] += dt
        if free:
            done = (self.released[:n] > 0) & (self.rel_t[:n] >= self.rel_dur[:n])
            if done.any():
                for i in np.flatnonzero(done)[::-1]:
                    self.remove(int(i))
