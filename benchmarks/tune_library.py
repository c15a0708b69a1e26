"""Tune the sound library's choice by leaving each real training instrument out in turn.

    python benchmarks/tune_library.py --model CKPT --nsynth NSYNTH \
        [--taus 0.05,0.1,0.3] [--top-ks 8,24,64] [--real-shares 0.5,0.8,0.95] \
        [--contrasts 0,0.3,0.6] [--pools 0,8] [--real-per-family N]

The checkpoint's library (``promptsynth library``) never holds the evaluation's
instruments, so they take no part here. Every real (NSynth) instrument of the library is
judged in turn as if it were new: it is neither a target nor a candidate
(:meth:`model.SoundLibrary.without`), the ten canonical prompts "a {family} note" and the
thirty paraphrases choose their patches, and each of its real notes at the slot pitches
(at most 24) is judged as ``promptsynth eval`` judges: the family whose patch renders
nearest in log-mel L1 (accuracy, chance 0.1) and the distance to its own family's patch.
Renders are made once (every candidate at every note's pitch and velocity,
:func:`training.left_out.candidate_distances`, the same judge as ``promptsynth eval``'s
rows "each left out") and kept in ``--cache`` (default ``runs/tune-distances.npz``).

Prints one table, best first by the mean of the two accuracies, then a bound: ten
patches chosen from the same candidates, without words, to classify every other real
note best (coordinate ascent on their accuracy; it sees the families of the notes),
judged on the instrument left out.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--nsynth", required=True)
    ap.add_argument("--taus", default="0.05,0.1,0.3")
    ap.add_argument("--top-ks", default="8,24,64")
    ap.add_argument("--real-shares", default="0.5,0.8,0.95")
    ap.add_argument("--contrasts", default="0,0.3,0.6")
    ap.add_argument("--pools", default="0")
    ap.add_argument("--cache", default=str(ROOT / "runs" / "tune-distances.npz"),
                    help="where the renders' distances are kept (reused for the same candidates)")
    ap.add_argument("--real-per-family", type=int, metavar="N",
                    help="keep at most N other real instruments per family in the library")
    args = ap.parse_args()

    from model import LibraryParams, Predictor
    from training.captions import PARAPHRASES, family_prompt

    pred = Predictor.load(args.model, warm=False)
    lib = pred.library
    if lib is None:
        print(f"{args.model} has no sound library: run promptsynth library first", file=sys.stderr)
        return 2
    cache = Path(args.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    from training.left_out import candidate_distances
    from training.library import nsynth_targets

    targets = nsynth_targets(args.nsynth, [k for k, r in zip(lib.instruments, lib.real) if r], 24)
    dist = candidate_distances(lib, targets, cache=cache, progress=True)
    note_inst = np.array([t["instrument"] for t in targets])
    families = sorted(PARAPHRASES)
    prompt_sets = [("canonical", [family_prompt(f) for f in families])]
    prompt_sets += [("paraphrases", [PARAPHRASES[f][k] for f in families]) for k in range(3)]
    emb = {q: pred.embed([q])[0] for _, qs in prompt_sets for q in qs}
    cand_of = {n: i for i, n in enumerate(lib.names)}
    judged = [k for k, r, f in zip(lib.instruments, lib.real, lib.family) if r and f in families]
    fam_of = dict(zip(lib.instruments, lib.family))
    # With --real-per-family N, each judged instrument's library also loses real
    # instruments at random (seeded) until each family keeps at most N of them: how the
    # choice grows with the number of real recordings per family.
    rng = np.random.default_rng(0)
    subs = {}
    for k in judged:
        gone = [k]
        if args.real_per_family is not None:
            for f in families:
                others = [i for i in judged if fam_of[i] == f and i != k]
                rng.shuffle(others)
                gone += others[args.real_per_family:]
        subs[k] = lib.without(gone)

    def judge(choose) -> dict[str, tuple[float, float]]:
        hits: dict[str, list] = {"canonical": [], "paraphrases": []}
        own: dict[str, list] = {"canonical": [], "paraphrases": []}
        for k in judged:
            notes = np.flatnonzero(note_inst == k)
            fam = families.index(fam_of[k])
            for kind, qs in prompt_sets:
                rows = [cand_of[n] for n in choose(k, qs)]
                d = dist[rows][:, notes]
                hits[kind] += list(d.argmin(axis=0) == fam)
                own[kind] += list(d[fam])
        return {kind: (float(np.mean(hits[kind])), float(np.mean(own[kind]))) for kind in hits}

    grid = list(itertools.product(
        [float(x) for x in args.taus.split(",")],
        [int(x) for x in args.top_ks.split(",")],
        [float(x) for x in args.real_shares.split(",")],
        [float(x) for x in args.contrasts.split(",")],
        [int(x) for x in args.pools.split(",")],
    ))
    results = []
    for t, k, r, c, pool in grid:
        params = LibraryParams(t, k, r, c, pool)

        def choose(left_out, prompts, params=params):
            sub = subs[left_out]
            return [sub.names[int(sub.choose(emb[q], 1, params)[0])] for q in prompts]

        results.append((f"{t}/{k}/{r}/{c}/{pool}", judge(choose)))
    n_notes = int(np.isin(note_inst, judged).sum())
    print(f"\n{n_notes} real notes of {len(judged)} instruments, each left out in turn")
    print(f"{'tau/top_k/real_share/contrast/pool':<36}{'acc canon':>10}{'acc para':>10}{'own canon':>10}{'own para':>10}")
    for name, res in sorted(results, key=lambda x: -(x[1]["canonical"][0] + x[1]["paraphrases"][0])):
        (ac, oc), (ap_, op) = res["canonical"], res["paraphrases"]
        print(f"{name:<36}{ac:>10.3f}{ap_:>10.3f}{oc:>10.3f}{op:>10.3f}")

    # The bound: ten patches fitted to classify every other real note (no words).
    from family_patches import family_patches

    from training.metric import family_hits

    note_fam = np.array([fam_of.get(i, "") for i in note_inst])
    hits = []
    for k in judged:
        train = np.flatnonzero((note_inst != k) & np.isin(note_fam, families))
        chosen = family_patches(dist[:, train], note_fam[train], families, allowed=~np.isin(lib.names, [k]))
        notes = np.flatnonzero(note_inst == k)
        hits += list(family_hits(dist[:, notes], chosen, note_fam[notes], families)[0])
    print(f"bound: ten patches fitted to classify every other real note: accuracy {np.mean(hits):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
