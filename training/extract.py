"""Parameter extraction for many notes: heuristics, then analysis-by-synthesis, in a
process pool with a progress bar."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from engine import TIMBRE_NAMES, Theta, render_notes
from training.fit import fit_timbre
from training.heuristics import V1_TIMBRE_NAMES, heuristic_timbre, pad_v1, seed_timbre
from training.notes import HOLD_S, NOTE_SAMPLES, TAIL_S, Note, load_audio
from training.spectral import SpectralTarget

__all__ = ["extract_note", "extract_notes", "full_theta"]


def full_theta(timbre: Sequence[float], pitch: float, velocity: float) -> dict[str, float]:
    """The full theta dict of a 16 kHz, 4 s note of ``timbre``: theta v1's six timbre
    values (v2's additions then take their defaults, off) or all of them."""
    d = {
        "pitch_midi": float(pitch),
        "velocity": float(max(1, velocity)),
        "sample_rate": 16000.0,
        "duration_s": HOLD_S + TAIL_S,
    }
    names = TIMBRE_NAMES if len(timbre) == len(TIMBRE_NAMES) else V1_TIMBRE_NAMES
    d.update({k: float(v) for k, v in zip(names, timbre)})
    return Theta.from_dict(d).to_dict()


def extract_note(note: Note, fit: bool = True, local_iters: int = 3) -> dict:
    """Labels of one note: the seed's, the fixed heuristic's and (``fit``) the fitted
    timbre, each with the spectral distance of its render to the note."""
    y = load_audio(note.audio_path, NOTE_SAMPLES)
    seed = seed_timbre(y, note.pitch)
    heur = heuristic_timbre(y, note.pitch)
    target = SpectralTarget(y)
    d_seed, d_heur = target.distance(
        render_notes(pad_v1(np.stack([seed, heur])), note.pitch, note.velocity)
    )
    out = {
        "seed_timbre": seed.tolist(),
        "heuristic_timbre": heur.tolist(),
        "distance_seed": float(d_seed),
        "distance_heuristic": float(d_heur),
    }
    if fit:
        res = fit_timbre(
            y, note.pitch, note.velocity, heur, local_iters=local_iters, extra_starts=[seed]
        )
        timbre, dist = res.timbre, res.distance
    else:
        timbre, dist = heur, float(d_heur)
    out["theta"] = full_theta(timbre, note.pitch, note.velocity)
    out["distance"] = float(dist)
    return out


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _work(args: tuple[Note, bool, int]) -> dict:
    return extract_note(*args)


def extract_notes(
    notes: Sequence[Note],
    workers: int | None = None,
    fit: bool = True,
    local_iters: int = 3,
    progress: bool = True,
) -> list[dict]:
    """:func:`extract_note` for each note, in order; ``workers`` processes (default: CPUs)."""
    workers = workers or os.cpu_count() or 1
    jobs = [(n, fit, local_iters) for n in notes]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="extract", unit="note")
    results = []
    try:
        if workers <= 1:
            _init_worker()
            for j in jobs:
                results.append(_work(j))
                if bar:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker) as ex:
                for r in ex.map(_work, jobs, chunksize=4):
                    results.append(r)
                    if bar:
                        bar.update(1)
    finally:
        if bar:
            bar.close()
    return results
