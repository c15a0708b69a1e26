"""How well can ten patches, one per family, tell NSynth's families apart, on instruments
they were chosen on and on instruments they were not?

    python benchmarks/family_ceiling.py [--model CKPT] [--data runs/v5-refit]
        [--nsynth ../shared/data/nsynth-test] [--cache runs/family-ceiling.npz]

``promptsynth eval``'s ceiling (the family median of labels fitted on the judged notes)
is measured on its ten judged instruments, one per family, where a family's patch is
that one instrument's own. This prints it beside the same ceiling over every NSynth
instrument of the dataset (44 in nsynth-test, several per family), both with the engine
and the eval's judge (nearest of the ten patches by log-mel L1, chance 0.10).

Then, with the checkpoint library's candidates (one key table per training instrument)
and every real instrument's notes at the slot pitches (at most 24 each), ten patches
chosen without words (``benchmarks/family_patches.py``: the closest to each family's
notes, or chosen to classify them):

- in-sample: chosen on the very notes judged (every instrument, or the eval's ten);
- left out: each real instrument judged in turn by patches chosen on the others' notes
  (and, in one row, on the SoundFont notes too, each weighing a tenth of a real note),
  never from its own table;
- the model's choice for the canonical prompts and the paraphrases, on the same notes
  left out in the same way (``SoundLibrary.without``).

Each accuracy carries its standard error over the judged instruments. Renders are made
once and kept in ``--cache`` for the same candidates and notes (2 min here, then 2 min).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from family_patches import family_patches  # noqa: E402

from training.evaluate import EVAL_INSTRUMENTS, _median_table, _Renders, _standard_error  # noqa: E402
from training.library import (  # noqa: E402
    note_distances,
    nsynth_targets,
    render_features,
    target_features,
    target_slots,
)
from training.manifest import read_manifest  # noqa: E402
from training.metric import family_hits, mel_features, mel_l1  # noqa: E402
from training.notes import load_audio  # noqa: E402
from training.nsynth import NSYNTH_FAMILIES  # noqa: E402


def _median_ceiling(records: list[dict], families: list[str]) -> tuple[float, float, float]:
    """The eval's ceiling on ``records``: family medians of their own labels, each note at
    its own pitch and velocity. Accuracy, its standard error, own distance."""
    by = defaultdict(list)
    for r in records:
        by[r["family"]].append(r)
    tables = {f: _median_table(by[f]) for f in families}
    renders = _Renders()
    per_inst, own = defaultdict(list), []
    for r in records:
        rows = np.stack([tables[f].lookup(r["pitch"], r["velocity"]) for f in families])
        d = mel_l1(renders.features(rows, r["pitch"], r["velocity"]), mel_features(load_audio(r["audio_path"]))[0])
        per_inst[r["instrument"]].append(families[int(np.argmin(d))] == r["family"])
        own.append(float(d[families.index(r["family"])]))
    return float(np.mean(sum(per_inst.values(), []))), _standard_error(per_inst), float(np.mean(own))


def _distances(lib, targets: list[dict], cache: Path) -> np.ndarray:
    """``[n_candidates, n_targets]`` log-mel L1 of every candidate to every target note."""
    key = hashlib.sha256(
        lib.keys.tobytes() + lib.values.tobytes() + "|".join(t["audio_path"] for t in targets).encode()
    ).hexdigest()
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key:
            return z["distance"]
    slots, slot_of = target_slots(targets)
    feats = target_features(targets, progress=True)
    cand = render_features([lib.table(i) for i in range(len(lib))], slots, progress=True)
    dist = note_distances(cand, slot_of, feats)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, distance=dist, key=key)
    return dist


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "model" / "checkpoints" / "default"))
    ap.add_argument("--data", default="runs/v5-refit", help="a dataset build: labelled NSynth notes and SoundFont renders")
    ap.add_argument("--nsynth", default=str(ROOT.parent / "shared" / "data" / "nsynth-test"))
    ap.add_argument("--cache", default=str(ROOT / "runs" / "family-ceiling.npz"))
    args = ap.parse_args(argv)

    from model import Predictor
    from training.captions import PARAPHRASES, family_prompt

    records = read_manifest(Path(args.data) / "manifest.jsonl")
    labelled = [r for r in records if r["dataset"] == "nsynth" and r["family"] in NSYNTH_FAMILIES]
    families = [f for f in NSYNTH_FAMILIES if any(r["family"] == f for r in labelled)]
    ten = [r for r in labelled if r["instrument"] in EVAL_INSTRUMENTS]
    n_all = len({r["instrument"] for r in labelled})
    print("family-median ceiling (promptsynth eval's), labels of", args.data)
    for name, rs in ((f"the eval's {len({r['instrument'] for r in ten})} instruments", ten), (f"all {n_all} instruments", labelled)):
        acc, se, own = _median_ceiling(rs, families)
        print(f"  {name:<26} {len(rs):>4} notes   accuracy {acc:.3f} ± {se:.3f}   own distance {own:.3f}")

    pred = Predictor.load(args.model, warm=False)
    lib = pred.library
    if lib is None:
        print(f"{args.model} has no sound library: run promptsynth library first", file=sys.stderr)
        return 2
    instruments = sorted({r["instrument"] for r in labelled})
    real = nsynth_targets(args.nsynth, instruments, 24)
    sf = [r for r in records if r["dataset"] == "soundfont" and r["family"] in families]
    targets = real + sf
    dist = _distances(lib, targets, Path(args.cache))
    inst = np.array([t["instrument"] for t in targets])
    fam = np.array([t["family"] for t in targets])
    is_real = np.arange(len(targets)) < len(real)
    real_inst = sorted(set(inst[is_real]))

    def judged(rows, choose):
        """Accuracy ± SE and own distance of ``choose(k) -> ten candidates`` over ``rows``'
        instruments, each judged on its own real notes."""
        per_inst, own = {}, []
        for k in rows:
            notes = np.flatnonzero(is_real & (inst == k))
            hit, d = family_hits(dist[:, notes], choose(k), fam[notes], families)
            per_inst[k] = list(hit)
            own += list(d)
        return float(np.mean(sum(per_inst.values(), []))), _standard_error(per_inst), float(np.mean(own))

    def line(name, res):
        print(f"  {name:<58} accuracy {res[0]:.3f} ± {res[1]:.3f}   own distance {res[2]:.3f}")

    print(f"\nten patches from the library's {len(lib)} candidates, no words ({int(is_real.sum())} real notes at the slot pitches)")
    for label, rows in ((f"all {len(real_inst)} instruments", real_inst), ("the eval's ten", [k for k in real_inst if k in EVAL_INSTRUMENTS])):
        notes = np.flatnonzero(is_real & np.isin(inst, rows))
        for how, disc in (("closest", False), ("chosen to classify", True)):
            chosen = family_patches(dist[:, notes], fam[notes], families, discriminate=disc)
            line(f"in-sample, {label}, {how}", judged(rows, lambda k, c=chosen: c))

    def left_out(with_sf: bool, disc: bool):
        def choose(k):
            train = np.flatnonzero((is_real & (inst != k)) | (~is_real if with_sf else False))
            w = np.where(is_real[train], 1.0, 0.1)
            return family_patches(dist[:, train], fam[train], families, allowed=lib.names != k, weight=w, discriminate=disc)
        return choose

    for how, sf_too, disc in (
        ("closest to the others' notes", False, False),
        ("chosen to classify the others' notes", False, True),
        ("chosen to classify the others' and SoundFont notes", True, True),
    ):
        line(f"left out ({len(real_inst)}), {how}", judged(real_inst, left_out(sf_too, disc)))

    names = list(lib.names)
    subs = {k: lib.without([k]) for k in real_inst}
    prompt_sets = [("canonical", [[family_prompt(f) for f in families]])]
    prompt_sets.append(("paraphrases", [[PARAPHRASES[f][j] for f in families] for j in range(3)]))
    for kind, sets in prompt_sets:
        emb = [[pred.embed([q])[0] for q in qs] for qs in sets]
        res = []
        for e in emb:
            def choose(k, e=e, subs=subs):
                sub = subs[k]
                return [names.index(sub.names[int(sub.choose(x, 1)[0])]) for x in e]
            res.append(judged(real_inst, choose))
        line(f"left out ({len(real_inst)}), the model's library, {kind}", tuple(np.mean(res, axis=0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
