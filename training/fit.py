"""Analysis-by-synthesis: find the timbre whose engine render comes closest to a real note.

Every candidate is rendered by the engine's own ``render_notes`` (batched) at the note's
pitch and velocity. The search has three stages, each batched:

1. spectrum: a grid of (mod_ratio, mod_index), each rendered as a short steady tone,
   scored by the distance of its average log power spectrum to the note's;
2. envelope: coordinate search of attack/decay/sustain/release over fixed grids, with
   the best few spectra, scored by the distance of frame log-RMS envelopes;
3. local search of all six values in the schema's learning space by the full
   multi-resolution log-spectral distance (:mod:`training.spectral`), steps halving.

The result is never worse (by that distance) than any start it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine import RATIO_GRID, TIMBRE_NAMES, render_notes, space
from training.heuristics import V1_TIMBRE_NAMES, pad_v1
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S
from training.spectral import SpectralTarget

__all__ = ["FitResult", "fit_timbre", "RATIO_GRID", "INDEX_GRID"]

INDEX_GRID = (0.0, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
_ENV_GRIDS = {
    0: (0.001, 0.003, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2),  # attack_s
    1: (0.01, 0.03, 0.06, 0.1, 0.2, 0.4, 0.8, 1.5, 2.5, 4.0),  # decay_s
    2: (0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0),  # sustain
    3: (0.01, 0.03, 0.06, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5),  # release_s
}
# The grid fit searches theta v1's six timbre values (v2's additions stay off); the
# differentiable refit (training.refit) fits the rest.
_SPACE = space(V1_TIMBRE_NAMES)
_LO = _SPACE.minimum
_HI = _SPACE.maximum
# Local-search start steps in learning space (log for times/ratio/index, linear sustain).
_STEPS = np.array([0.5, 0.5, 0.1, 0.5, 0.15, 0.3])
_SPEC_N = 2048
_ENV_HOP = 256
assert _SPACE.names == V1_TIMBRE_NAMES == TIMBRE_NAMES[:6]


@dataclass
class FitResult:
    """The fitted timbre [6] (schema order), its distance, and the start's distance."""

    timbre: np.ndarray
    distance: float
    start_distance: float
    n_renders: int


_to_learn = _SPACE.to_learning


def _from_learn_raw(u: np.ndarray) -> np.ndarray:
    return _SPACE.from_learning(u, clamp=False)


def _from_learn(u: np.ndarray) -> np.ndarray:
    return np.clip(_from_learn_raw(u), _LO, _HI)


def _avg_log_spectrum(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Power-averaged log spectrum of rows of ``x [b, n]`` (frames of 2048, hop 512), each
    normalised to unit total power, bins up to 0.47 fs."""
    x = np.atleast_2d(x).astype(np.float64)
    n_frames = 1 + (x.shape[1] - _SPEC_N) // (_SPEC_N // 4)
    idx = np.arange(_SPEC_N)[None, :] + (_SPEC_N // 4) * np.arange(n_frames)[:, None]
    frames = x[:, idx] * np.hanning(_SPEC_N)
    power = (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=1)
    power /= np.maximum(power.sum(axis=-1, keepdims=True), 1e-20)
    return np.log(power + 1e-7)


def _log_env(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(x).astype(np.float64)
    n = x.shape[1] - x.shape[1] % _ENV_HOP
    rms = np.sqrt(np.mean(x[:, :n].reshape(x.shape[0], -1, _ENV_HOP) ** 2, axis=-1))
    total = np.sqrt(np.mean(rms**2, axis=-1, keepdims=True))
    return np.log(rms / np.maximum(total, 1e-9) + 1e-3)


class _Renderer:
    def __init__(
        self, pitch: float, velocity: float, sample_rate: int, hold_s: float, tail_s: float
    ):
        self.args = (pitch, velocity, sample_rate, hold_s, tail_s)
        self.count = 0

    def __call__(
        self, timbres: np.ndarray, hold_s: float | None = None, tail_s: float | None = None
    ):
        pitch, velocity, sr, hold, tail = self.args
        self.count += len(timbres)
        return render_notes(
            pad_v1(timbres),
            pitch,
            velocity,
            sr,
            hold if hold_s is None else hold_s,
            tail if tail_s is None else tail_s,
        )


def fit_timbre(
    y: np.ndarray,
    pitch: float,
    velocity: float,
    start: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    hold_s: float = HOLD_S,
    tail_s: float = TAIL_S,
    local_iters: int = 3,
    n_spectra: int = 2,
    extra_starts: Sequence[np.ndarray] = (),
) -> FitResult:
    """Fit the six timbre values to the note ``y [n_samples]`` (held ``hold_s``).

    Args:
        start: [6] a heuristic estimate (schema order); kept if nothing beats it.
        local_iters: iterations of the final local search (12 renders each).
        n_spectra: how many of the best (ratio, index) pairs go through the envelope stage.
        extra_starts: more [6] estimates (e.g. the seed's) the local search may start from.
    """
    render = _Renderer(pitch, velocity, sample_rate, hold_s, tail_s)
    start = np.clip(np.asarray(start, dtype=np.float64), _LO, _HI)
    target = SpectralTarget(y)

    # 1. Spectrum: (ratio, index) grid as steady tones, plus the start's pair.
    held = y[: int(hold_s * sample_rate)]
    ref_spec = _avg_log_spectrum(held, sample_rate)
    pairs = np.array([(r, i) for r in RATIO_GRID for i in INDEX_GRID] + [tuple(start[4:])])
    tones = np.tile([0.0, 0.0, 1.0, 0.01, 0.0, 0.0], (len(pairs), 1))
    tones[:, 4:] = pairs
    steady = render(tones, hold_s=0.4, tail_s=0.0)[:, int(0.05 * sample_rate) :]
    spec_d = np.abs(_avg_log_spectrum(steady, sample_rate) - ref_spec).mean(axis=-1)
    best_pairs = pairs[np.argsort(spec_d)[:n_spectra]]

    # 2. Envelope: coordinate search over fixed grids for each of the best spectra.
    ref_env = _log_env(y)
    cands = []
    for pair in best_pairs:
        cur = start.copy()
        cur[4:] = pair
        cur_d = np.abs(_log_env(render(cur[None]))[0] - ref_env).mean()
        for _ in range(2):
            for k, grid in _ENV_GRIDS.items():
                batch = np.tile(cur, (len(grid), 1))
                batch[:, k] = grid
                d = np.abs(_log_env(render(batch)) - ref_env).mean(axis=-1)
                j = int(np.argmin(d))
                if d[j] < cur_d:
                    cur, cur_d = batch[j].copy(), d[j]
        cands.append(cur)

    # 3. Local search by the full distance, from the best of the start and stage 2.
    extra = [np.clip(np.asarray(e, dtype=np.float64), _LO, _HI) for e in extra_starts]
    pool = np.vstack([start[None], np.array(cands), *[e[None] for e in extra]])
    d = target.distance(render(pool))
    start_d = float(d[0])
    best = pool[int(np.argmin(d))].copy()
    best_d = float(d.min())
    u = _to_learn(best)
    steps = _STEPS.copy()
    for _ in range(local_iters):
        trial = np.repeat(u[None], 12, axis=0)
        for k in range(6):
            trial[2 * k, k] += steps[k]
            trial[2 * k + 1, k] -= steps[k]
        timbres = _from_learn(trial)
        d = target.distance(render(timbres))
        j = int(np.argmin(d))
        if d[j] < best_d:
            best, best_d = timbres[j].copy(), float(d[j])
            u = _to_learn(best)
        else:
            steps *= 0.5
    return FitResult(best, best_d, start_d, render.count)
