"""The sound library judged on real instruments it has never seen: each instrument left
out in turn, as neither a target nor a candidate (:meth:`model.SoundLibrary.without`).

Shared by ``promptsynth eval`` (its rows "each left out") and
``benchmarks/tune_library.py`` (the library's values tuned on the same judge).

- **Notes**: an instrument's real NSynth notes at the slot pitches (at most 24 each,
  :func:`training.library.nsynth_targets`).
- **Distances**: each candidate table rendered by the engine at each note's pitch and
  velocity, log-mel L1 to the recording (:func:`candidate_distances`), computed only for
  the candidates asked for and kept in a cache file for the same tables and notes.
- **Judge**: ten patches, one per family, chosen by the library for one wording per
  family; a note counts where its own family's patch is the nearest
  (:func:`training.metric.family_hits`), as ``promptsynth eval`` counts it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["candidate_distances", "judge_left_out", "left_out_choices", "standard_error"]


def standard_error(by_instrument: dict[str, list]) -> float:
    """Standard error of a mean over instruments (an accuracy: lists of bools; a distance:
    lists of floats): the standard deviation of each instrument's mean on its own notes /
    sqrt(n) (0 with fewer than two)."""
    acc = [float(np.mean(v)) for v in by_instrument.values() if len(v)]
    return float(np.std(acc, ddof=1) / np.sqrt(len(acc))) if len(acc) > 1 else 0.0


def _cache_key(lib, targets: Sequence[dict]) -> str:
    h = hashlib.sha256(lib.keys.tobytes() + lib.values.tobytes())
    h.update("|".join(str(n) for n in lib.names).encode())
    h.update("|".join(f"{t['audio_path']}:{t['pitch']}:{t['velocity']}" for t in targets).encode())
    return h.hexdigest()


def candidate_distances(
    lib,
    targets: Sequence[dict],
    candidates: Sequence[int] | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Log-mel L1 ``[n_candidates, n_targets]`` of ``lib``'s candidate tables, each
    rendered at each target's pitch and velocity, to the target's recording.

    Only the rows of ``candidates`` (indices into ``lib``; all by default) are computed;
    the others are NaN unless ``cache`` (an ``.npz`` file) already holds them for the same
    tables and targets. New rows are added to the cache.
    """
    from training.library import note_distances, render_features, target_features, target_slots

    n = len(lib)
    want = np.arange(n) if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
    key = _cache_key(lib, targets)
    dist = np.full((n, len(targets)), np.nan, dtype=np.float32)
    done = np.zeros(n, dtype=bool)
    feats = None
    path = Path(cache) if cache is not None else None
    if path is not None and path.is_file():
        z = np.load(path, allow_pickle=False)
        if "key" in z and str(z["key"]) == key and z["distance"].shape == dist.shape:
            dist, done = z["distance"].astype(np.float32), z["done"].astype(bool)
            feats = z["targets"] if "targets" in z else None
    todo = want[~done[want]]
    if todo.size:
        slots, slot_of = target_slots(targets)
        if feats is None:
            feats = target_features(targets, progress=progress)
        cand = render_features([lib.table(int(i)) for i in todo], slots, progress=progress)
        dist[todo] = note_distances(cand, slot_of, feats)
        done[todo] = True
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, distance=dist, done=done, key=key, targets=feats)
    return dist


def left_out_choices(
    lib, embeddings: np.ndarray, instruments: Sequence[str], params=None
) -> np.ndarray:
    """The library's choice for each prompt with each instrument left out: ``[n_instruments,
    n_prompts]`` candidate indices into ``lib``. ``embeddings [n_prompts, dim]``: the
    prompts' unit embeddings by the checkpoint's encoder. An instrument the library does
    not hold leaves it whole."""
    index = {str(name): i for i, name in enumerate(lib.names)}
    held = set(np.asarray(lib.instruments).astype(str).tolist())
    out = np.zeros((len(instruments), len(embeddings)), dtype=np.int64)
    for j, k in enumerate(instruments):
        sub = lib.without([k]) if k in held else lib
        out[j] = [index[str(sub.names[int(sub.choose(e, 1, params)[0])])] for e in embeddings]
    return out


def judge_left_out(
    distance: np.ndarray,
    note_instrument: np.ndarray,
    note_family: np.ndarray,
    families: Sequence[str],
    instruments: Sequence[str],
    choices: np.ndarray,
) -> dict:
    """Accuracy, its standard error over ``instruments`` and own distance of the choices
    ``[n_instruments, n_wordings, n_families]`` (candidate indices, one wording per family
    in each row), each instrument judged on its own notes with its own choices. Every
    wording's judgement of a note counts (as ``eval`` pools its paraphrases). Both the
    accuracy and the own distance carry their standard error over the instruments."""
    from training.metric import family_hits

    per_inst: dict[str, list[bool]] = {}
    own: dict[str, list[float]] = {}
    for j, k in enumerate(instruments):
        notes = np.flatnonzero(note_instrument == k)
        per_inst[k], own[k] = [], []
        for chosen in choices[j]:
            hit, d = family_hits(distance[:, notes], chosen, note_family[notes], families)
            per_inst[k] += hit.tolist()
            own[k] += d.tolist()
    hits = sum(per_inst.values(), [])
    dists = sum(own.values(), [])
    return {
        "accuracy": float(np.mean(hits)) if hits else float("nan"),
        "accuracy_se": standard_error(per_inst),
        "own_distance": float(np.mean(dists)) if dists else float("nan"),
        "own_distance_se": standard_error(own),
        "notes": len(hits) // max(1, choices.shape[1]),
        "instruments": len(instruments),
    }
