"""benchmarks/family_patches.py: one patch per family chosen without words, the bound
the library benchmarks print (judged by the evaluation's ``family_hits``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from training.metric import family_hits

_PATH = Path(__file__).parents[2] / "benchmarks" / "family_patches.py"
_spec = importlib.util.spec_from_file_location("family_patches", _PATH)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
family_patches = _module.family_patches


def test_family_patches_choose_to_tell_the_families_apart():
    # Candidate 0 is near every note (a bland sound): nearest on average to both families,
    # so the closest choice gives both families the same patch and classifies half the
    # notes. Candidate 3 is far from everything: it never takes a note from another
    # family, which a count of "notes not taken" alone would reward.
    d = np.array([
        [0.1, 0.1, 0.1, 0.1],
        [0.2, 0.2, 0.9, 0.9],
        [0.9, 0.9, 0.2, 0.2],
        [5.0, 5.0, 5.0, 5.0],
    ])
    fam = np.array(["a", "a", "b", "b"])
    closest = family_patches(d, fam, ["a", "b"], discriminate=False)
    assert closest == [0, 0]
    assert family_hits(d, closest, fam, ["a", "b"])[0].mean() == 0.5
    chosen = family_patches(d, fam, ["a", "b"])
    assert chosen == [1, 2]
    hits, own = family_hits(d, chosen, fam, ["a", "b"])
    assert hits.all() and np.allclose(own, 0.2)
    # A candidate that is not allowed is never chosen; weights decide between notes.
    assert 1 not in family_patches(d, fam, ["a", "b"], allowed=np.array([True, False, True, True]))


def test_family_patches_never_lose_accuracy_to_the_closest_choice():
    rng = np.random.default_rng(3)
    fams = ["a", "b", "c"]
    for _ in range(20):
        d = rng.uniform(0.0, 1.0, (12, 30))
        fam = rng.choice(fams, 30)
        w = rng.uniform(0.5, 2.0, 30)
        base = family_hits(d, family_patches(d, fam, fams, weight=w, discriminate=False), fam, fams)[0] @ w
        best = family_hits(d, family_patches(d, fam, fams, weight=w), fam, fams)[0] @ w
        assert best >= base - 1e-9
