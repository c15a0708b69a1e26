"""A patch from recordings of one instrument, by the project's analysis-by-synthesis.

Each recording (one note) is read, mixed to mono, resampled to 16 kHz, started at its
onset and cut or padded to the 4 s the fits use; its pitch is detected (or given); its
timbre is fitted as the training labels are: the grid fit of the six v1 values
(:func:`training.fit.fit_timbre`), then the differentiable refit of every continuous
value (:func:`training.torchsynth.fit_batch`), each step kept only where the engine's own
render comes closer. The notes become a key table anchored at their pitches (one
velocity layer); one note gives a flat patch.

Used by `promptsynth patch from-audio` and by the live host's `/patch/from-audio`
(which runs that command in a process of its own).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from engine import TIMBRE_INDEX, TIMBRE_NAMES, AudioError, KeyTable, render_notes
from engine.schema import param
from training.fit import fit_timbre
from training.heuristics import heuristic_timbre, pad_v1, seed_timbre
from training.notes import HOLD_S, NOTE_SAMPLES, SAMPLE_RATE, TAIL_S
from training.profiles import measured_timbre
from training.refit import FREE_SETS
from training.spectral import spectral_distance
from training.torchsynth import fit_batch

#: A recording that cannot be made into a patch (unreadable, too long, silent, no pitch)
#: raises the project's one AudioError, :class:`engine.AudioError`; named here for the
#: callers of this module (`promptsynth patch from-audio`).
__all__ = ["AudioError", "AudioFit", "NoteFit", "fit_recordings", "read_note", "detect_pitch", "MAX_FILES"]

#: Most recordings one patch is made from.
MAX_FILES = 24
#: Longest recording read (s); a note's first 4 s are what is fitted.
MAX_SECONDS = 60.0
_VELOCITY = 100
_RATIO = TIMBRE_NAMES.index("mod_ratio")
# The schema-2 values (the third operator needs a search over its ratio and layout
# first), and with the spectra also the envelope's curve and the spectra themselves.
_REFIT = FREE_SETS["v2"]
_REFIT_SPECTRA = FREE_SETS["v2+spectra"]


@dataclass(frozen=True)
class NoteFit:
    """One recording's fit: its pitch, the timbre fitted, and the spectral distance of the
    engine's render of it to the recording (0: the recording itself; two different
    instruments ~0.9-2.0; silence ~1.3)."""

    path: str
    pitch: int
    pitch_detected: bool
    timbre: np.ndarray
    distance: float


@dataclass(frozen=True)
class AudioFit:
    """The patch and the notes it was made from."""

    table: KeyTable
    notes: tuple[NoteFit, ...]

    @property
    def distance(self) -> float:
        """Mean spectral distance of the patch's renders to the recordings."""
        return float(np.mean([n.distance for n in self.notes]))


def read_note(path: str | os.PathLike) -> np.ndarray:
    """The recording at ``path`` as the fits take a note: mono float32 at 16 kHz, from its
    onset (the first sample within 40 dB of its peak), 4 s (cut or zero-padded), or
    AudioError saying what is wrong."""
    import soundfile as sf
    from scipy.signal import resample_poly

    p = os.fspath(path)
    try:
        info = sf.info(p)
        if info.duration > MAX_SECONDS:
            raise AudioError(f"{p}: {info.duration:.0f} s long; at most {MAX_SECONDS:g} s (one note) is read")
        y, sr = sf.read(p, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"{p}: cannot read it as audio ({exc}); WAV, FLAC, OGG and AIFF are read") from None
    y = y.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = np.gcd(int(sr), SAMPLE_RATE)
        y = resample_poly(y, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not np.isfinite(peak) or peak < 1e-4:
        raise AudioError(f"{p}: silent (peak {peak:.1e}); a recording of one note is needed")
    onset = int(np.argmax(np.abs(y) > peak * 0.01))
    y = y[max(0, onset - 16):]
    out = np.zeros(NOTE_SAMPLES, dtype=np.float32)
    n = min(NOTE_SAMPLES, y.size)
    out[:n] = y[:n]
    return out


def detect_pitch(y: np.ndarray, sample_rate: int = SAMPLE_RATE) -> int | None:
    """The MIDI note of ``y``'s fundamental (autocorrelation of the loudest half second,
    with the octave check of YIN's cumulative difference, and an octave up where the
    period found is a quiet sub-octave's), or None where there is none."""
    frame = int(0.5 * sample_rate)
    env = np.convolve(y**2, np.ones(1024), mode="valid")
    start = int(np.argmax(env[: max(1, len(env) - frame)]))
    x = y[start : start + frame].astype(np.float64)
    x = x - x.mean()
    if np.sqrt(np.mean(x**2)) < 1e-5:
        return None
    lo, hi = int(sample_rate / 4200), int(sample_rate / 25)  # 25 Hz .. 4.2 kHz
    n = len(x) - hi
    # YIN: difference function, cumulative mean normalised; first dip under 0.15.
    d = np.array([np.sum((x[:n] - x[tau : tau + n]) ** 2) for tau in range(hi + 1)])
    cmnd = d[1:] * np.arange(1, hi + 1) / np.maximum(np.cumsum(d[1:]), 1e-12)
    cmnd = np.concatenate([[1.0], cmnd])
    tau = None
    for t in range(lo, hi):
        if cmnd[t] < 0.15 and cmnd[t] <= cmnd[t + 1]:
            tau = t
            break
    if tau is None:
        tau = lo + int(np.argmin(cmnd[lo:hi]))
        if cmnd[tau] > 0.5:
            return None
    # Parabolic refinement.
    a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]
    den = a - 2 * b + c
    shift = 0.5 * (a - c) / den if den > 0 else 0.0
    f0 = sample_rate / (tau + shift)
    if _sub_octave(x, f0, sample_rate):
        f0 *= 2.0
    return int(round(69 + 12 * np.log2(f0 / 440.0)))


def _sub_octave(x: np.ndarray, f0: float, sample_rate: int) -> bool:
    """Whether the period found is a sub-octave's: the fundamental weaker than the 2nd
    harmonic and the odd harmonics 3, 5 and 7 all 30 dB under the loudest even one (a
    note of 2 f0 with a quiet tone an octave below it, as synthesised flutes have: it
    repeats at f0 but is played and heard at 2 f0)."""
    if 2.0 * f0 * 7 >= 0.5 * sample_rate:
        return False
    n = 1 << int(np.ceil(np.log2(len(x) * 2)))
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    hz = sample_rate / n

    def level(k: int) -> float:
        lo, hi = int(k * f0 * 0.98 / hz), int(np.ceil(k * f0 * 1.02 / hz)) + 1
        return 20.0 * np.log10(max(float(spec[lo:hi].max()), 1e-12))

    lv = {k: level(k) for k in range(1, 8)}
    even = max(lv[2], lv[4], lv[6])
    return lv[1] < lv[2] and max(lv[3], lv[5], lv[7]) < even - 30.0


def fit_recordings(
    paths: Sequence[str | os.PathLike],
    pitch: int | None = None,
    progress: Callable[[str], None] | None = None,
    refit_steps: int | None = None,
    spectra: bool = True,
) -> AudioFit:
    """Fit a patch to ``paths`` (recordings of one note each, of one instrument).

    Args:
        pitch: every recording's MIDI note (None: detected from each).
        progress: ``progress(line)`` hears of each step.
        refit_steps: Adam steps of the differentiable refit (None: 60 with the spectra,
            40 without).
        spectra: measure and fit the recordings' harmonic spectra and the envelope's
            curve (False: a sine carrier, a decay linear in amplitude).
    """
    if not paths:
        raise AudioError("no recording given")
    if len(paths) > MAX_FILES:
        raise AudioError(f"at most {MAX_FILES} recordings make one patch, got {len(paths)}")
    say = progress or (lambda line: None)
    ys, pitches, detected = [], [], []
    for path in paths:
        y = read_note(path)
        p = pitch if pitch is not None else detect_pitch(y)
        if p is None:
            raise AudioError(f"{os.fspath(path)}: no pitch found; give it with --pitch (a MIDI note)")
        if not 0 <= p <= 127:
            raise AudioError(f"{os.fspath(path)}: pitch {p} is outside MIDI 0..127")
        ys.append(y)
        pitches.append(int(p))
        detected.append(pitch is None)
    y_all = np.stack(ys)
    starts = []
    for path, y, p in zip(paths, ys, pitches):
        seed = seed_timbre(y, p)
        heur = heuristic_timbre(y, p)
        res = fit_timbre(y, p, _VELOCITY, heur, extra_starts=[seed])
        start = pad_v1(res.timbre[None])[0]
        line = f"  {os.fspath(path)}: MIDI note {p}, grid fit distance {res.distance:.3f}"
        if spectra:
            start, d = _with_spectra(start, measured_timbre(y, p, SAMPLE_RATE), p, y)
            line += f", with its spectra {d:.3f}"
        starts.append(start)
        say(line)
    starts = np.stack(starts)
    # With the spectra (64 more values, each from a measured start) larger steps pay: on
    # the sustained notes of bench_from_audio, 40 steps at 0.05 0.741, 40 at 0.1 0.723,
    # 60 at 0.1 0.716, 120 at 0.1 0.713.
    free, lr, steps = (_REFIT_SPECTRA, 0.1, 60) if spectra else (_REFIT, 0.05, 40)
    steps = steps if refit_steps is None else refit_steps
    refit = fit_batch(y_all, pitches, [_VELOCITY] * len(ys), starts, free=free, steps=steps, lr=lr)
    before = _distances(starts, pitches, y_all)
    after = _distances(refit.timbre, pitches, y_all)
    keep = after < before
    timbres = np.where(keep[:, None], refit.timbre, starts)
    dists = np.where(keep, after, before)
    say(f"  refit: mean distance {before.mean():.3f} -> {dists.mean():.3f}")
    notes = tuple(
        NoteFit(os.fspath(path), p, det, t, float(d))
        for path, p, det, t, d in zip(paths, pitches, detected, timbres, dists)
    )
    return AudioFit(_table(notes), notes)


def _with_spectra(fm: np.ndarray, profile: dict[str, float], pitch: int, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The best of the FM fit ``fm`` and the ways of putting the measured spectra under an
    envelope (FM index off or kept x the FM fit's envelope with its decay linear in
    amplitude, the same linear in dB, or a decay and release linear in dB at the rates
    measured from ``y``), by the engine's distance to ``y``: (timbre, distance)."""
    envelopes = [{"env_curve": 0.0}, {"env_curve": 1.0}]
    rates = _db_rates(y)
    if rates is not None:
        envelopes.append({"env_curve": 1.0, **rates})
    cands = [fm]
    for index_off in (True, False):
        for env in envelopes:
            t = fm.copy()
            for name, v in {**profile, **env}.items():
                t[TIMBRE_INDEX[name]] = v
            if index_off:
                t[TIMBRE_INDEX["mod_index"]] = 0.0
                t[TIMBRE_INDEX["index_peak"]] = 0.0
            cands.append(t)
    d = _distances(np.stack(cands), [pitch] * len(cands), np.broadcast_to(y, (len(cands), y.size)))
    i = int(np.argmin(d))
    return cands[i], float(d[i])


def _db_rates(y: np.ndarray) -> dict[str, float] | None:
    """A decay and release linear in dB as ``y`` has them: ``decay_s`` and ``release_s``
    (the times to fall 96 dB at the slopes fitted to its level from its peak to 3 s, and
    after), ``sustain`` 0 where it falls 40 dB by 3 s; None where the note holds (falls
    less than 12 dB by 3 s)."""
    hop = 256
    n = y.size // hop
    level = 10.0 * np.log10(np.maximum(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1), 1e-12))
    t = (np.arange(n) + 0.5) * hop / SAMPLE_RATE
    held = t < HOLD_S
    peak = int(np.argmax(np.where(held, level, -np.inf)))
    top = level[peak]
    end = int(np.searchsorted(t, HOLD_S)) - 1
    if top - level[end] < 12.0:
        return None

    def fall_s(sel: np.ndarray) -> float | None:
        sel = sel & (level > top - 60.0)
        if np.count_nonzero(sel) < 4:
            return None
        slope = np.polyfit(t[sel], level[sel], 1)[0]
        return 96.0 / -slope if slope < 0 else None

    idx = np.arange(n)
    decay = fall_s((idx >= peak) & held)
    if decay is None:
        return None
    out = {"decay_s": decay, "sustain": 0.0 if top - level[end] > 40.0 else None}
    release = fall_s(t > HOLD_S + 0.02)
    if release is not None:
        out["release_s"] = release
    return {k: float(np.clip(v, param(k).minimum, param(k).maximum)) for k, v in out.items() if v is not None}


def _distances(timbres: np.ndarray, pitches: Sequence[int], y: np.ndarray) -> np.ndarray:
    renders = np.stack([
        render_notes(t[None], p, _VELOCITY, SAMPLE_RATE, HOLD_S, TAIL_S)[0] for t, p in zip(timbres, pitches)
    ])
    return np.asarray(spectral_distance(y, renders), dtype=np.float64)


def _table(notes: Sequence[NoteFit]) -> KeyTable:
    """The notes as a key table: an anchor at each pitch (the best fit where two share
    one), one velocity layer. One modulator ratio for every key, the one of the note
    nearest middle C: a ratio interpolated between anchors would be off every simple
    ratio and beat."""
    best: dict[int, NoteFit] = {}
    for n in notes:
        if n.pitch not in best or n.distance < best[n.pitch].distance:
            best[n.pitch] = n
    keys = sorted(best)
    values = np.stack([best[k].timbre for k in keys])[:, None, :].copy()
    centre = min(keys, key=lambda k: abs(k - 60))
    values[:, 0, _RATIO] = best[centre].timbre[_RATIO]
    if len(keys) == 1:
        return KeyTable.flat(values[0, 0])
    return KeyTable(keys, [_VELOCITY], values)
