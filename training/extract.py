"""Parameter extraction for many notes: heuristics, then analysis-by-synthesis, in shards
on an executor (:mod:`training.executor`) with a progress bar."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from engine import TIMBRE_NAMES, Theta, render_notes
from training.fit import fit_timbre
from training.heuristics import V1_TIMBRE_NAMES, heuristic_timbre, pad_v1, seed_timbre
from training.notes import HOLD_S, NOTE_SAMPLES, TAIL_S, Note, load_audio
from training.spectral import SpectralTarget

__all__ = ["extract_note", "extract_notes", "extract_shard", "full_theta"]


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


def extract_shard(notes: Sequence[dict], fit: bool, local_iters: int) -> list[dict]:
    """A worker's task: :func:`extract_note` of each note (``Note`` dicts), in order."""
    return [extract_note(Note.from_dict(n), fit, local_iters) for n in notes]


def extract_notes(
    notes: Sequence[Note],
    executor=None,
    fit: bool = True,
    local_iters: int = 3,
    progress: bool = True,
    store: str | os.PathLike | None = None,
    shard_notes: int = 8,
) -> list[dict]:
    """:func:`extract_note` for each note, in order, on ``executor``
    (:class:`training.executor.Executor`; default: local processes, one per CPU), in
    shards of ``shard_notes`` notes.

    ``store``: a folder each shard's labels are written to as soon as they are found;
    shards already there are not fitted again (a stopped run resumes).
    """
    from training.executor import Shard, digest, run_shards

    if shard_notes < 1:
        raise ValueError(f"shard_notes must be >= 1, got {shard_notes}")
    shards = []
    for s in range(0, len(notes), shard_notes):
        chunk = [n.to_dict() for n in notes[s : s + shard_notes]]
        shards.append(Shard((chunk, fit, local_iters), len(chunk), digest("extract", fit, local_iters, chunk)))
    run = run_shards(extract_shard, shards, store, "extract" if fit else "heuristic", executor, progress=progress)
    return [labels for shard in run.results for labels in shard]
