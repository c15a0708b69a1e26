"""A recording's harmonic profile, measured: the carrier spectra of theta schema 5.

From one note (mono, at its onset, NSynth-style: held 3 s) at a known MIDI pitch,
:func:`measured_timbre` gives every spectrum value of the schema (``onset_h1..32``,
``held_h1..32``, ``onset_s``, ``darken_db``, ``darken_s``; see :mod:`engine.spectrum`):

1. **f0**: the MIDI pitch, refined to the peaks of the first harmonics in the held
   part's mean spectrum (real notes are a few cents off their key).
2. **Harmonic levels per frame**: an STFT with a Hann window of at least
   ``_PERIODS`` periods of f0 (so that a low note's harmonics are resolved), each
   harmonic's level the peak near ``k f0`` (the search widens with k for stretched
   partials), refined by a parabola through the log magnitudes. A harmonic not
   ``_SNR_DB`` above the noise between harmonics in that frame is not counted.
3. **Held spectrum and darkening**: over the held part (after the onset, while the note
   is within ``_RANGE_DB`` of its peak), the levels ``L[t, k]`` are fitted as
   ``H[k] + c[t] + 20 log10(1 - d(t) + d(t) 10 ** (-darken_db log2(k) / 20))`` with
   ``d(t) = min(1, t / darken_s)`` (the engine's crossfade), ``c[t]`` the envelope,
   ``H`` the held spectrum; ``darken_db`` and ``darken_s`` from a grid, ``H`` and ``c``
   by weighted least squares. A darkening is kept only where it explains the
   spectrum's tilt over time clearly better than none (plucked and struck notes).
4. **Onset spectrum**: the mean power spectrum of the frames within ``ONSET_WINDOW_S``
   of the start; ``onset_s``: the crossfade time (from a grid) whose linear mix of the
   onset and held spectra is nearest the frames of the first second.

Each spectrum is normalised so its loudest harmonic is 0 dB; harmonics above Nyquist,
never heard, or more than 80 dB down are at ``DB_FLOOR`` (-80, silent). Values are
clamped to the schema's ranges.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES, param

__all__ = [
    "measured_timbre",
    "measured_timbres",
    "refine_f0",
    "harmonic_levels",
    "PROFILE_NAMES",
    "ONSET_WINDOW_S",
]

#: The timbre values :func:`measured_timbre` gives, in this order.
PROFILE_NAMES: tuple[str, ...] = (*ONSET_NAMES, *HELD_NAMES, "onset_s", "darken_db", "darken_s")
#: The onset spectrum is measured over frames centred in the first this many seconds.
ONSET_WINDOW_S = 0.1
_HOLD_S = 3.0
_PERIODS = 6.0  # window length in periods of f0 (Hann main lobe: 4 bins; 6 leaves room)
_MIN_N, _MAX_N = 1024, 4096
_HOP = 128
_SNR_DB = 8.0
_RANGE_DB = 60.0  # frames within this of the loudest are fitted
_HELD_FROM_S = 0.12
_K = np.arange(1, N_HARMONICS + 1, dtype=np.float64)
_LOG2K = np.log2(_K)
_DARKEN_DB_GRID = np.array(
    [0.0, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0, 12.0, 15.0, 18.0, 22.0, 27.0, 33.0, 40.0, 48.0]
)
_DARKEN_S_GRID = np.geomspace(0.05, 20.0, 22)
_ONSET_S_GRID = np.geomspace(0.005, 2.0, 24)
# A darkening must cut the held fit's weighted squared error by this fraction to be kept.
_DARKEN_GAIN = 0.15
# ... and its RMS error (dB) by at least this much.
_DARKEN_MIN_DB = 0.3


def _range(name: str) -> tuple[float, float]:
    p = param(name)
    return float(p.minimum), float(p.maximum)


def _frame_spectra(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Magnitudes ``[frames, n_fft // 2 + 1]`` of Hann frames centred every ``hop``
    samples from sample 0 (zero-padded before and after)."""
    pad = n_fft // 2
    x = np.concatenate([np.zeros(pad), np.asarray(y, dtype=np.float64), np.zeros(pad)])
    n_frames = max(1, 1 + (len(x) - n_fft) // hop)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    w = np.hanning(n_fft)
    # Scaled so a sine of amplitude a peaks at a.
    return np.abs(np.fft.rfft(x[idx] * w, axis=-1)) * (2.0 / w.sum())


def _window(f0_hz: float, sample_rate: int) -> int:
    need = _PERIODS * sample_rate / max(f0_hz, 1.0)
    return int(min(_MAX_N, max(_MIN_N, 2 ** int(np.ceil(np.log2(need))))))


def _peaks(
    mag: np.ndarray, centres_bin: np.ndarray, half_width: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each band's peak: ``(level_db [frames, n], bin [frames, n])``, the level and bin
    refined by a parabola through the log magnitudes."""
    n_bins = mag.shape[-1]
    db = 20.0 * np.log10(np.maximum(mag, 1e-12))
    wmax = int(np.max(np.ceil(half_width)))
    offs = np.arange(-wmax, wmax + 1)
    bins = np.round(centres_bin)[:, None] + offs[None, :]  # [n, w]
    inside = (
        (np.abs(bins - centres_bin[:, None]) <= half_width[:, None])
        & (bins >= 1)
        & (bins < n_bins - 1)
    )
    b = np.clip(bins, 1, n_bins - 2).astype(int)
    vals = np.where(inside[None], db[..., b], -np.inf)  # [frames, n, w]
    j = np.argmax(vals, axis=-1)
    pk = np.take_along_axis(b[None].repeat(db.shape[0], 0), j[..., None], -1)[..., 0]
    a = np.take_along_axis(db, pk - 1, -1)
    m = np.take_along_axis(db, pk, -1)
    c = np.take_along_axis(db, pk + 1, -1)
    den = a - 2.0 * m + c
    shift = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    return m - 0.25 * (a - c) * shift, pk + shift


def refine_f0(y: np.ndarray, pitch: float, sample_rate: int = 16000) -> float:
    """``y``'s fundamental in Hz near MIDI ``pitch``: the power-weighted median of the
    first harmonics' peak frequencies over k, in the mean spectrum of the held part
    (within a semitone of the pitch)."""
    f0 = 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
    seg = np.asarray(y, dtype=np.float64)[: int(_HOLD_S * sample_rate)]
    n = _window(f0, sample_rate) * 2
    mag = _frame_spectra(seg, n, n // 2)
    mean = np.sqrt(np.mean(mag**2, axis=0))[None]
    bin_hz = sample_rate / n
    ks = _K[: max(1, min(8, int(0.45 * sample_rate / f0)))]
    centres = ks * f0 / bin_hz
    half = np.maximum(1.5, centres * (2.0 ** (0.5 / 12.0) - 1.0))  # +-50 cents
    level, pk = _peaks(mean, centres, half)
    est = pk[0] * bin_hz / ks
    w = 10.0 ** (level[0] / 10.0)
    ok = np.abs(12.0 * np.log2(np.maximum(est, 1e-6) / f0)) < 1.0
    if not np.any(ok):
        return f0
    order = np.argsort(est[ok])
    cw = np.cumsum(w[ok][order])
    return float(est[ok][order][np.searchsorted(cw, 0.5 * cw[-1])])


def harmonic_levels(
    y: np.ndarray, f0_hz: float, sample_rate: int = 16000, hop: int = _HOP
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The levels of ``y``'s harmonics over time.

    Args:
        y: ``[n_samples]`` mono audio.
        f0_hz: the fundamental in Hz.

    Returns:
        ``(levels_db [frames, N_HARMONICS], heard [frames, N_HARMONICS] bool,
        times_s [frames])``: each harmonic's peak level (a sine of amplitude 1: 0 dB),
        whether it stands ``_SNR_DB`` above the noise between harmonics (harmonics at or
        above Nyquist: never), and each frame's centre.
    """
    n = _window(f0_hz, sample_rate)
    mag = _frame_spectra(y, n, hop)
    bin_hz = sample_rate / n
    centres = _K * f0_hz / bin_hz
    # Partials of strings and bars drift above k f0; search wider with k, never past the
    # neighbours.
    half = np.minimum(np.maximum(1.5, centres * 0.01 + 1.0), 0.35 * f0_hz / bin_hz)
    half = np.maximum(half, 1.0)
    level, _ = _peaks(mag, centres, half)
    # The noise: the quietest quarter of the bins half-way between harmonics.
    between = (_K + 0.5) * f0_hz / bin_hz
    bw = np.maximum(1.0, 0.25 * f0_hz / bin_hz)
    db = 20.0 * np.log10(np.maximum(mag, 1e-12))
    noise = np.empty_like(level)
    nb = mag.shape[-1]
    for i, (cb, wdt) in enumerate(zip(between, np.broadcast_to(bw, between.shape))):
        lo, hi = int(max(0, np.floor(cb - wdt))), int(min(nb, np.ceil(cb + wdt) + 1))
        if hi - lo < 1:
            noise[:, i] = np.inf
            continue
        noise[:, i] = np.percentile(db[:, lo:hi], 25, axis=-1)
    heard = (level > noise + _SNR_DB) & (_K * f0_hz < 0.5 * sample_rate)[None, :]
    times = np.arange(mag.shape[0]) * hop / sample_rate
    return level, heard, times


def _normalise(db: np.ndarray, heard: np.ndarray) -> np.ndarray:
    out = np.where(heard, db, -np.inf)
    top = np.max(out)
    if not np.isfinite(top):
        out = np.full(N_HARMONICS, DB_FLOOR)
        out[0] = 0.0
        return out
    out = out - top
    return np.where(out > DB_FLOOR, out, DB_FLOOR)


def _fit_held(
    level: np.ndarray, weight: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, float, float, float]:
    """Fit ``level ~ H[k] + c[t] + change(darken_db, darken_s)[t, k]`` over the grid.

    Returns ``(H [K], darken_db, darken_s, error without darkening / with it)``."""
    g = _DARKEN_DB_GRID[:, None, None, None]
    d = np.minimum(1.0, times[None, None, :, None] / _DARKEN_S_GRID[None, :, None, None])
    gains = 10.0 ** (-g * _LOG2K / 20.0)
    change = 20.0 * np.log10(np.maximum(1.0 - d + d * gains, 1e-6))  # [D, S, T, K]
    r = level[None, None] - change
    w = weight[None, None]
    wk = np.maximum(w.sum(axis=2, keepdims=True), 1e-12)
    wt = np.maximum(w.sum(axis=3, keepdims=True), 1e-12)
    c = np.zeros(r.shape[:3] + (1,))
    for _ in range(4):
        h = np.sum(w * (r - c), axis=2, keepdims=True) / wk
        c = np.sum(w * (r - h), axis=3, keepdims=True) / wt
    h = np.sum(w * (r - c), axis=2, keepdims=True) / wk
    err = np.sum(w * (r - h - c) ** 2, axis=(2, 3))  # [D, S]
    i, j = np.unravel_index(int(np.argmin(err)), err.shape)
    base = float(err[0].min())
    ratio = float(err[i, j]) / base if base > 0 else 1.0
    n = max(float(weight.sum()), 1.0)
    gain_db = np.sqrt(base / n) - np.sqrt(float(err[i, j]) / n)
    if i == 0 or ratio > 1.0 - _DARKEN_GAIN or gain_db < _DARKEN_MIN_DB:
        return h[0, 0, 0, :], 0.0, 1.0, ratio
    return h[i, j, 0, :], float(_DARKEN_DB_GRID[i]), float(_DARKEN_S_GRID[j]), ratio


def _fit_onset(
    power: np.ndarray, times: np.ndarray, held_db: np.ndarray, darken: tuple[float, float]
) -> tuple[np.ndarray, float]:
    """The onset spectrum (dB) and crossfade time: for each time of the grid, the onset
    spectrum unmixed from the early frames (each frame's unit-power amplitudes, less the
    held share, over the onset share), then the time whose mix comes nearest the first
    second's frames."""
    sel = times <= 1.0
    t = times[sel]
    obs = np.sqrt(power[sel])
    obs = obs / np.maximum(np.linalg.norm(obs, axis=-1, keepdims=True), 1e-12)
    a_held = np.where(held_db > DB_FLOOR, 10.0 ** (held_db / 20.0), 0.0)
    a_held = a_held / np.linalg.norm(a_held)
    d = np.minimum(1.0, t / darken[1])[:, None]
    a_held_t = a_held * (1.0 - d + d * 10.0 ** (-darken[0] * _LOG2K / 20.0))  # [T, K]
    a_held_t = a_held_t / np.maximum(np.linalg.norm(a_held_t, axis=-1, keepdims=True), 1e-12)
    w_on = np.maximum(0.0, 1.0 - t[None, :] / _ONSET_S_GRID[:, None])[..., None]  # [G, T, 1]
    early = (w_on > 0.3) & (t[None, :, None] <= max(ONSET_WINDOW_S, t[0]) + 0.25)
    un = np.clip((obs[None] - (1.0 - w_on) * a_held_t[None]) / np.maximum(w_on, 1e-3), 0.0, None)
    a_on = np.sum(np.where(early, w_on * un, 0.0), axis=1) / np.maximum(
        np.sum(np.where(early, w_on, 0.0), axis=1), 1e-12
    )
    a_on = a_on / np.maximum(np.linalg.norm(a_on, axis=-1, keepdims=True), 1e-12)  # [G, K]
    mix = w_on * a_on[:, None, :] + (1.0 - w_on) * a_held_t[None]
    mix = mix / np.maximum(np.linalg.norm(mix, axis=-1, keepdims=True), 1e-12)
    err = np.sum((mix - obs[None]) ** 2, axis=(1, 2))
    g = int(np.argmin(err))
    on = a_on[g]
    return _normalise(20.0 * np.log10(np.maximum(on, 1e-12)), on > 0), float(_ONSET_S_GRID[g])


def measured_timbre(y: np.ndarray, pitch: float, sample_rate: int = 16000) -> dict[str, float]:
    """The spectrum values of the schema (``PROFILE_NAMES``) measured from one note.

    Args:
        y: ``[n_samples]`` mono audio starting at the note's onset (as
            :func:`training.from_audio.read_note` gives it), the note held ~3 s.
        pitch: the note's MIDI pitch (the f0 is refined from the recording).
        sample_rate: Hz.

    Returns:
        ``{name: value}`` for every name of ``PROFILE_NAMES``, in the schema's ranges;
        each spectrum's loudest harmonic at 0 dB, unheard ones at -80.
    """
    x = np.asarray(y, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"y must be one channel [n_samples], got shape {x.shape}")
    if x.size < sample_rate // 4:
        raise ValueError(f"y must be at least 0.25 s long, got {x.size} samples")
    if not np.all(np.isfinite(x)) or np.max(np.abs(x)) <= 0.0:
        raise ValueError("y must be finite and not silent")
    if not 0.0 <= float(pitch) <= 127.0:
        raise ValueError(f"pitch must be in range 0..127, got {pitch}")
    f0 = refine_f0(x, float(pitch), sample_rate)
    level, heard, times = harmonic_levels(
        x[: int(_HOLD_S * sample_rate) + sample_rate // 8], f0, sample_rate
    )
    power = np.where(heard, 10.0 ** (level / 10.0), 0.0)
    frame_db = 10.0 * np.log10(np.maximum(power.sum(axis=-1), 1e-20))
    loud = frame_db > frame_db.max() - _RANGE_DB
    held_from = _HELD_FROM_S
    for _ in range(2):
        # Held: the fit of levels over the held part, harmonics in frames where heard.
        held = (times >= min(held_from, times[-1])) & (times <= _HOLD_S) & loud
        if np.count_nonzero(held) < 3:
            held = loud
        lv, wt = level[held], heard[held].astype(np.float64)
        # A frame's harmonics more than _RANGE_DB under its loudest are noise's.
        wt *= lv > np.max(np.where(heard[held], lv, -np.inf), axis=-1, keepdims=True) - _RANGE_DB
        h, darken_db, darken_s, _ = _fit_held(np.where(wt > 0, lv, 0.0), wt, times[held])
        ever = wt.sum(axis=0) >= max(2.0, 0.1 * len(times[held]))
        held_db = _normalise(h, ever)
        onset_db, onset_s = _fit_onset(power, times, held_db, (darken_db, darken_s))
        if onset_s + 0.5 * _window(f0, sample_rate) / sample_rate <= held_from or onset_s > 1.0:
            break
        # The held fit saw the onset's crossfade: fit again after it (and its window).
        held_from = onset_s + 0.5 * _window(f0, sample_rate) / sample_rate
    out: dict[str, float] = {}
    for names, vals in ((ONSET_NAMES, onset_db), (HELD_NAMES, held_db)):
        for n, v in zip(names, vals):
            out[n] = float(np.clip(v, *_range(n)))
    for n, v in (("onset_s", onset_s), ("darken_db", darken_db), ("darken_s", darken_s)):
        out[n] = float(np.clip(v, *_range(n)))
    return out


def measured_timbres(
    ys: np.ndarray | Sequence[np.ndarray], pitches: Sequence[float], sample_rate: int = 16000
) -> np.ndarray:
    """:func:`measured_timbre` for a batch: ``[batch, len(PROFILE_NAMES)]`` values in
    ``PROFILE_NAMES`` order."""
    if len(ys) != len(pitches):
        raise ValueError(
            f"ys and pitches must have the same length, got {len(ys)} and {len(pitches)}"
        )
    rows = [measured_timbre(y, p, sample_rate) for y, p in zip(ys, pitches)]
    return np.array([[r[n] for n in PROFILE_NAMES] for r in rows], dtype=np.float64).reshape(
        len(rows), len(PROFILE_NAMES)
    )
