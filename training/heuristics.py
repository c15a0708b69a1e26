"""Closed-form parameter estimates from a note: the seed's, and the same idea with its
defects fixed (see ``../shared/reference/seed-method.md``).

Both take a 16 kHz note held ``HOLD_S`` (3.0 s) then released, and return the six timbre
values in schema order (attack_s, decay_s, sustain, release_s, mod_ratio, mod_index).
They are starting points: :mod:`training.fit` refines them by analysis-by-synthesis.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from engine import PARAMS, TIMBRE_NAMES, midi_to_hz
from training.notes import HOLD_S, SAMPLE_RATE

__all__ = ["seed_timbre", "heuristic_timbre", "amplitude_envelope"]

_RANGE = {p.name: (p.minimum, p.maximum) for p in PARAMS}


def amplitude_envelope(
    y: np.ndarray, sample_rate: int = SAMPLE_RATE, highpass_hz: float | None = None
) -> np.ndarray:
    """|hilbert(y)| low-passed at 20 Hz (2nd-order Butterworth, zero phase), peak 1."""
    y = np.asarray(y, dtype=np.float64)
    if highpass_hz:
        y = signal.sosfiltfilt(
            signal.butter(2, highpass_hz, "highpass", fs=sample_rate, output="sos"), y
        )
    else:
        y = y - y.mean()
    env = np.abs(signal.hilbert(y))
    env = signal.sosfiltfilt(signal.butter(2, 20.0, "lowpass", fs=sample_rate, output="sos"), env)
    env = np.maximum(env, 0.0)
    peak = env.max()
    return env / peak if peak > 0 else env


def _first(mask: np.ndarray, start: int = 0) -> int | None:
    idx = np.flatnonzero(mask[start:])
    return int(idx[0]) + start if idx.size else None


def seed_timbre(y: np.ndarray, pitch: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The seed's labels, defects included: release from 3.2 s, capped decay, an absolute
    +-2 kHz window, index from the unclamped ratio, a 30 Hz high-pass."""
    n = y.shape[0]
    env = amplitude_envelope(y, sample_rate, highpass_hz=30.0)
    i10, i90 = _first(env >= 0.1), _first(env >= 0.9)
    attack = float(np.clip(((i90 or 0) - (i10 or 0)) / sample_rate, 0.0, 0.2))
    sustain = float(np.clip(np.median(env[int(0.3 * n) : int(0.7 * n)]), 0.0, 1.0))
    ipk = int(np.argmax(env))
    j = _first(env <= sustain + 0.02, ipk)
    decay = float(np.clip(((j if j is not None else n) - ipk) / sample_rate, 0.0, 0.4))
    i32 = int(3.2 * sample_rate)
    j = _first(env <= 0.05, i32)
    release = float(np.clip(((j if j is not None else n) - i32) / sample_rate, 0.02, 0.6))

    yh = signal.sosfiltfilt(signal.butter(2, 30.0, "highpass", fs=sample_rate, output="sos"), y)
    seg = yh[int(0.3 * n) : int(0.7 * n)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1.0 / sample_rate)
    fc = float(midi_to_hz(pitch))
    band = (freqs > 0) & (freqs >= fc - 2000.0) & (freqs <= fc + 2000.0)
    fm, bw = fc, 0.0
    if band.any() and spec[band].max() > 0:
        db = 20 * np.log10(spec[band] / spec[band].max() + 1e-12)
        peaks, _ = signal.find_peaks(db, height=-30.0)
        if peaks.size >= 2:
            fm = float(np.median(np.diff(freqs[band][peaks])))
        above = freqs[band][db >= -30.0]
        bw = float(above.max() - above.min()) if above.size else 0.0
    ratio = float(np.clip(fm / fc, 0.25, 8.0))
    index = float(np.clip(bw / (2.0 * max(fm, 1e-6)) - 1.0, 0.0, 10.0))  # unclamped fm: the defect
    return _clamp(np.array([attack, decay, sustain, release, ratio, index]))


def heuristic_timbre(
    y: np.ndarray, pitch: float, sample_rate: int = SAMPLE_RATE, hold_s: float = HOLD_S
) -> np.ndarray:
    """The seed's method with its defects fixed.

    Release is measured from the note-off (``hold_s``) relative to the level there; times
    are limited only by the schema's ranges; the spectral window is relative to the
    carrier (0.5 fc .. 16 fc); the index uses the clamped ratio; no high-pass, so the
    fundamental of low notes stays.
    """
    n = y.shape[0]
    env = amplitude_envelope(y, sample_rate)
    i10, i90 = _first(env >= 0.1), _first(env >= 0.9)
    attack = ((i90 or 0) - (i10 or 0)) / sample_rate
    off = min(int(hold_s * sample_rate), n - 1)
    sustain = (
        float(np.median(env[int(0.3 * off / 0.75) : int(0.7 * off / 0.75)])) if off > 10 else 0.0
    )
    ipk = int(np.argmax(env[: off + 1]))
    j = _first(env <= sustain + 0.02, ipk)
    decay = ((j if j is not None and j <= off else off) - ipk) / sample_rate
    level_off = float(env[max(off - int(0.02 * sample_rate), 0) : off + 1].mean())
    if level_off < 0.02:
        release = 0.05  # silent at note-off: the release cannot be heard, keep it short
    else:
        j = _first(env <= 0.1 * level_off, off)
        # Linear ramp: reaching 10% of the level took 90% of the release.
        release = ((j if j is not None else n) - off) / sample_rate / 0.9

    fc = float(midi_to_hz(pitch))
    start = ipk
    seg = y[start : min(start + sample_rate, off)]
    if seg.size < 1024:
        seg = y[: max(off, 1024)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    freqs = np.fft.rfftfreq(seg.size, 1.0 / sample_rate)
    band = (freqs >= 0.5 * fc) & (freqs <= min(16.0 * fc, 0.47 * sample_rate))
    ratio, index = 1.0, 0.0
    if band.sum() > 3 and spec[band].max() > 0:
        f, db = freqs[band], 20 * np.log10(spec[band] / spec[band].max() + 1e-12)
        min_dist = max(1, int(0.4 * fc / (freqs[1] - freqs[0])))
        peaks, _ = signal.find_peaks(db, height=-30.0, distance=min_dist)
        fm = float(np.median(np.diff(f[peaks]))) if peaks.size >= 2 else fc
        ratio = float(np.clip(fm / fc, 1.0, 16.0))
        above = f[db >= -30.0]
        f_high = float(above.max()) if above.size else fc
        index = (f_high - fc) / (ratio * fc) - 1.0  # Carson: f_high = fc + fm (I + 1)
    return _clamp(np.array([attack, decay, sustain, release, ratio, index]))


#: The timbre values of theta schema 1, which the heuristics and the grid fit estimate
#: (schema 2 appended index_peak, index_decay_s, noise_level and noise_decay_s).
V1_TIMBRE_NAMES: tuple[str, ...] = TIMBRE_NAMES[:6]
_V2_EXTRA_DEFAULTS = np.array([p.default for p in PARAMS if p.timbre][6:])


def pad_v1(timbres: np.ndarray) -> np.ndarray:
    """v1 timbres ``[..., 6]`` -> all timbre values ``[..., n_timbre]``, v2's additions at
    their defaults (off: no index peak, no noise)."""
    t = np.asarray(timbres, dtype=np.float64)
    extra = np.broadcast_to(_V2_EXTRA_DEFAULTS, t.shape[:-1] + _V2_EXTRA_DEFAULTS.shape)
    return np.concatenate([t, extra], axis=-1)


def _clamp(t: np.ndarray) -> np.ndarray:
    lo = np.array([_RANGE[k][0] for k in V1_TIMBRE_NAMES])
    hi = np.array([_RANGE[k][1] for k in V1_TIMBRE_NAMES])
    return np.clip(np.nan_to_num(t, nan=0.0), lo, hi)
