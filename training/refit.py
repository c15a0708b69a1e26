"""Refit a dataset's labels with the differentiable render (theta schema v2).

The grid-and-local-search fit (:mod:`training.fit`) finds each note's modulator ratio
(the discrete value) and the v1 timbre; this stage keeps the ratio and fits the
continuous values, v2's included, by gradient descent on the spectral loss
(:mod:`training.torchsynth`), batched. Every label is then rendered by the numpy engine
itself and scored by the full distance (:func:`training.spectral.spectral_distance`):
the number recorded is the engine's, not the torch render's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from engine import SCHEMA_VERSION, TIMBRE_NAMES, Theta, render_notes
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S, load_audio
from training.spectral import spectral_distance
from training.torchsynth import fit_batch

__all__ = ["FREE_SETS", "refit_records", "engine_distances", "relabelled"]

_V1 = ("attack_s", "decay_s", "sustain", "release_s", "mod_index")
#: Named sets of fitted values, for the comparison of what each v2 addition brings.
FREE_SETS: dict[str, tuple[str, ...]] = {
    "v1": _V1,
    "v1+index-envelope": _V1 + ("index_peak", "index_decay_s"),
    "v1+noise": _V1 + ("noise_level", "noise_decay_s"),
    "v2": _V1 + ("index_peak", "index_decay_s", "noise_level", "noise_decay_s"),
}
#: FFT sizes of the loss while fitting (the two that cost least per resolution gained;
#: the recorded distance uses all four).
FIT_FFT_SIZES = (512, 2048)


def _timbre(rec: dict) -> np.ndarray:
    return Theta.from_dict(rec["theta"]).timbre()


def engine_distances(records: Sequence[dict], timbres: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Distance of each note to the numpy engine's render of its timbre at its pitch and
    velocity (the evaluation's distance)."""
    pitch = np.array([r["pitch"] for r in records], dtype=np.float64)
    velocity = np.array([r["velocity"] for r in records], dtype=np.float64)
    renders = render_notes(timbres, pitch, velocity, SAMPLE_RATE, HOLD_S, TAIL_S)
    return np.atleast_1d(spectral_distance(np.atleast_2d(audio), renders))


def refit_records(
    records: Sequence[dict],
    free: Sequence[str],
    steps: int = 40,
    lr: float = 0.08,
    batch: int = 16,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``free`` values of every record's label; returns (timbres [n, n_timbre],
    engine distances after, engine distances of the start labels). ``progress(line)``
    hears of each batch (the CLI prints it)."""
    n = len(records)
    timbres = np.stack([_timbre(r) for r in records])
    after = np.empty(n)
    before = np.empty(n)
    t0 = time.time()
    for s in range(0, n, batch):
        recs = records[s : s + batch]
        y = np.stack([load_audio(r["audio_path"]) for r in recs])
        res = fit_batch(
            y,
            [r["pitch"] for r in recs],
            [r["velocity"] for r in recs],
            timbres[s : s + batch],
            free=tuple(free),
            steps=steps,
            lr=lr,
            fft_sizes=FIT_FFT_SIZES,
        )
        before[s : s + len(recs)] = engine_distances(recs, timbres[s : s + batch], y)
        d = engine_distances(recs, res.timbre, y)
        # Kept only where the engine agrees it is better (the fit used fewer FFT sizes).
        keep = d < before[s : s + len(recs)]
        timbres[s : s + batch][keep] = res.timbre[keep]
        after[s : s + len(recs)] = np.where(keep, d, before[s : s + len(recs)])
        if progress is not None:
            done = s + len(recs)
            progress(
                f"  refit {done}/{n}: mean distance {before[:done].mean():.4f} -> "
                f"{after[:done].mean():.4f} ({time.time() - t0:.0f} s)"
            )
    return timbres, after, before


def relabelled(records: Sequence[dict], timbres: np.ndarray, distances: np.ndarray) -> list[dict]:
    """Copies of ``records`` with the new timbre in ``theta`` (schema version 2)."""
    out = []
    for rec, t, d in zip(records, timbres, distances):
        r = dict(rec)
        theta = dict(Theta.from_dict(rec["theta"]).to_dict())
        theta.update({name: float(v) for name, v in zip(TIMBRE_NAMES, t)})
        r["theta"] = theta
        r["schema_version"] = SCHEMA_VERSION
        r["distance_v1"] = rec.get("distance_v1", rec.get("distance"))
        r["distance"] = float(d)
        out.append(r)
    return out

