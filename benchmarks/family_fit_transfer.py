"""Does one patch per family, fitted jointly to the family's real training notes, carry
over to instruments never trained on better than the family's median label?

    python benchmarks/family_fit_transfer.py [--data runs/v5-refit] [--per-family 40] [--steps 40]

No words: for each NSynth family, (a) the learning-space median of the training notes'
labels and (b) one patch fitted to all those notes at once (``synth_candidates.
joint_patches``: Adam on their mean spectral loss from the median, 40 steps), both flat.
Each is judged on the evaluation's never-trained notes as ``promptsynth eval`` judges
its rows (nearest of the ten family patches by log-mel L1, chance 0.10; own distance),
through the torch render of schema 2. The training notes are the dataset's labelled
NSynth notes of instruments outside ``EVAL_INSTRUMENTS``, at most ``--per-family`` per
family (a fixed random draw). Prints two lines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import synth_candidates as sc  # noqa: E402

from training.evaluate import EVAL_INSTRUMENTS  # noqa: E402
from training.manifest import manifest_timbres, read_manifest  # noqa: E402
from training.metric import mel_features  # noqa: E402
from training.notes import load_audio  # noqa: E402
from training.nsynth import NSYNTH_FAMILIES  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="runs/v5-refit", help="a dataset build with labelled NSynth notes")
    ap.add_argument("--per-family", type=int, default=40)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    notes = [r for r in read_manifest(Path(args.data) / "manifest.jsonl") if r["dataset"] == "nsynth"]
    judged = [r for r in notes if r["instrument"] in EVAL_INSTRUMENTS]
    train = [r for r in notes if r["instrument"] not in EVAL_INSTRUMENTS]
    pick = []
    for f in NSYNTH_FAMILIES:
        idx = [i for i, r in enumerate(train) if r["family"] == f]
        if len(idx) > args.per_family:
            idx = sorted(rng.choice(idx, args.per_family, replace=False).tolist())
        pick += idx
    train = [train[i] for i in pick]
    families = [f for f in NSYNTH_FAMILIES if any(r["family"] == f for r in judged) and any(r["family"] == f for r in train)]
    if not judged or not families:
        raise SystemExit(f"{args.data} has no labelled NSynth notes of the evaluation instruments and of others")
    print(f"{len(train)} training notes, {len(judged)} judged notes, {len(families)} families", flush=True)
    train_audio = np.stack([load_audio(r["audio_path"]) for r in train])
    judged_feats = mel_features(np.stack([load_audio(r["audio_path"]) for r in judged]))
    train_t, judged_t = manifest_timbres(train), manifest_timbres(judged)
    by_f = sc._by_family(train)
    medians = {f: sc._family_patch("v2", train_t, {}, {}, by_f[f]) for f in families}
    acc, own, *_ = sc.ceiling("v2", judged, judged_feats, judged_t, {}, {}, families, medians)
    print(f"median of the training labels:       accuracy {acc:.3f}, own distance {own:.3f}", flush=True)
    t0 = time.time()
    joint = sc.joint_patches("v2", train, train_audio, medians, args.steps)
    acc, own, *_ = sc.ceiling("v2", judged, judged_feats, judged_t, {}, {}, families, joint)
    print(f"fitted jointly to the training notes: accuracy {acc:.3f}, own distance {own:.3f} "
          f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
