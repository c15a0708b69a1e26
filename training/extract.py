"""Parameter extraction for many notes: heuristics, then analysis-by-synthesis, in a
process pool with a progress bar."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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


def _read_cache(path: Path) -> dict[str, dict]:
    done = {}
    if path.is_file():
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # the last line of a run that was killed
                    continue
                done[rec["note_id"]] = rec["labels"]
    return done


def extract_notes(
    notes: Sequence[Note],
    workers: int | None = None,
    fit: bool = True,
    local_iters: int = 3,
    progress: bool = True,
    cache: str | os.PathLike | None = None,
) -> list[dict]:
    """:func:`extract_note` for each note, in order; ``workers`` processes (default: CPUs).

    ``cache``: a JSON-lines file each note's labels are appended to as soon as they are
    found; notes already in it are not fitted again (a stopped run resumes).
    """
    workers = workers or os.cpu_count() or 1
    done = _read_cache(Path(cache)) if cache is not None else {}
    todo = [n for n in notes if n.note_id not in done]
    jobs = [(n, fit, local_iters) for n in todo]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(notes), initial=len(notes) - len(todo), desc="extract", unit="note")
    sink = open(cache, "a") if cache is not None else None
    try:

        def keep(note: Note, labels: dict) -> None:
            done[note.note_id] = labels
            if sink is not None:
                sink.write(json.dumps({"note_id": note.note_id, "labels": labels}) + "\n")
                sink.flush()
            if bar:
                bar.update(1)

        if workers <= 1:
            _init_worker()
            for n, j in zip(todo, jobs):
                keep(n, _work(j))
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker) as ex:
                for n, r in zip(todo, ex.map(_work, jobs, chunksize=4)):
                    keep(n, r)
    finally:
        if bar:
            bar.close()
        if sink is not None:
            sink.close()
    return [done[n.note_id] for n in notes]
