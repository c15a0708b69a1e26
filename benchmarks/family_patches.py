"""One patch per family chosen without words, to classify notes whose families are known:
the bound ``benchmarks/family_ceiling.py`` and ``benchmarks/tune_library.py`` print beside
the library's choices (no part of the package: only these benchmarks use it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["family_patches"]


def family_patches(
    distance: np.ndarray,
    note_family: np.ndarray,
    families: Sequence[str],
    allowed: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    discriminate: bool = True,
    rounds: int = 3,
) -> list[int]:
    """One candidate per family, chosen to classify notes whose families are known.

    ``distance [n_candidates, n_notes]`` as :func:`note_distances`; ``allowed
    [n_candidates]`` the candidates that may be chosen; ``weight [n_notes]`` each note's
    weight (1). First, per family, the candidate closest on average to the family's notes;
    then, with ``discriminate``, coordinate ascent on the weighted accuracy of
    :func:`training.metric.family_hits`: each family's candidate in turn is replaced by the one that
    classifies the most notes with the other nine fixed (a note of another family counts
    where its own patch is nearest and stays nearer than the candidate; ties go as in
    :func:`training.metric.family_hits`). The accuracy never falls from one step to the next."""
    families = list(families)
    note_family = np.asarray(note_family)
    ok = np.ones(distance.shape[0], bool) if allowed is None else np.asarray(allowed, bool)
    w = np.ones(distance.shape[1]) if weight is None else np.asarray(weight, float)
    mine_of = [note_family == f for f in families]
    # Each candidate's mean distance to each family's notes (to all notes where a family
    # has none) and to the other families' notes.
    near = [distance[:, mine].mean(axis=1) if mine.any() else distance.mean(axis=1) for mine in mine_of]
    chosen = [int(np.argmin(np.where(ok, score, np.inf))) for score in near]
    if not discriminate:
        return chosen
    own_index = np.array([families.index(f) if f in families else -1 for f in note_family])
    margin = [
        (distance[:, ~mine].mean(axis=1) if (~mine).any() else 0.0) - (score if mine.any() else 0.0)
        for mine, score in zip(mine_of, near)
    ]
    for _ in range(rounds):
        for g, mine in enumerate(mine_of):
            # The other nine as family_hits sees them: the first of equal distances wins,
            # so a candidate ties in its favour against later families, not earlier ones.
            rows = distance[np.asarray(chosen)].astype(float)
            rows[g] = np.inf
            nearest, near_d = rows.argmin(axis=0), rows.min(axis=0)
            before, after = rows[:g].min(axis=0, initial=np.inf), rows[g + 1 :].min(axis=0, initial=np.inf)
            takes = (distance < before) & (distance <= after)
            holds = ~mine & (nearest == own_index)  # never for a note of no family (-1)
            keeps = np.where(own_index < g, distance >= near_d, distance > near_d)
            won = np.where(ok, (takes & mine) @ w + (keeps & holds) @ w, -1.0)
            # Among equal counts, the candidate farthest from the other families' notes
            # for its distance to its own: a bland sound near everything ties everywhere.
            best = np.flatnonzero(won >= won.max() - 1e-9)
            chosen[g] = int(best[np.argmax(margin[g][best])])
    return chosen
