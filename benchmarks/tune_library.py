"""Tune the sound library's choice on validation instruments, never on the evaluation's.

    python benchmarks/tune_library.py --model CKPT --data DIR --nsynth NSYNTH \
        --val bass_synthetic_009,brass_acoustic_006,... [--out runs/tune]

Copies the checkpoint to ``--out``, builds its library with the validation instruments
left out as well as the evaluation's, then judges each setting of the choice (text
temperature, top-k, real share, contrast) on the validation instruments' real notes
with :func:`training.evaluate.evaluate`: family accuracy and own distance, canonical
prompts and paraphrases, key-tracked. Prints one table, best first by the mean of the
two accuracies. The shipped library is then built with the chosen setting and nothing
left out but the evaluation instruments (`promptsynth library`).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--nsynth", required=True)
    ap.add_argument("--val", required=True, help="validation instruments, comma-separated")
    ap.add_argument("--out", default="runs/tune-library")
    ap.add_argument("--taus", default="0.02,0.05,0.1")
    ap.add_argument("--top-ks", default="8,24")
    ap.add_argument("--real-shares", default="0.5,0.7,0.9")
    ap.add_argument("--contrasts", default="0,0.3,0.6")
    args = ap.parse_args()

    from model import LibraryParams, Predictor, get_encoder, load_checkpoint
    from training.evaluate import evaluate
    from training.library import build_library

    val = [v for v in args.val.split(",") if v]
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(args.model, out, ignore=shutil.ignore_patterns("library.npz", "eval.*"))
    ckpt = load_checkpoint(out)
    held = list((ckpt.meta.get("data") or {}).get("eval_instruments") or [])
    library, summary = build_library(
        Path(args.data) / "manifest.jsonl", get_encoder(ckpt.encoder_name), nsynth_root=args.nsynth,
        exclude=held + val,
    )
    library.save(out)
    print(f"library without the validation instruments: {summary}", flush=True)

    pred = Predictor.load(out, warm=False)
    lib = pred.library

    def chooser(params):
        def fn(prompt):
            emb = pred.embed([prompt])[0]
            return lib.table(int(lib.choose(emb, 1, params)[0]))

        return fn

    grid = list(itertools.product(
        [float(x) for x in args.taus.split(",")],
        [int(x) for x in args.top_ks.split(",")],
        [float(x) for x in args.real_shares.split(",")],
        [float(x) for x in args.contrasts.split(",")],
    ))
    predictors = {f"{t}/{k}/{r}/{c}": chooser(LibraryParams(t, k, r, c)) for t, k, r, c in grid}
    report = evaluate(out, Path(args.data) / "manifest.jsonl", eval_instruments=val, predictors=predictors)
    rows = {}
    for r in report["rows"]:
        if r["key_tracked"] and r["prompts"] in ("canonical", "paraphrases"):
            rows.setdefault(r["patches"], {})[r["prompts"]] = r
    ceiling = report["ceiling_own_distance"]
    print(f"\n{report['notes']} notes of {len(val)} validation instruments; ceiling own distance {ceiling}")
    print(f"{'tau/top_k/real_share/contrast':<32}{'acc canon':>10}{'acc para':>10}{'own canon':>10}{'own para':>10}{'spread':>8}")
    order = sorted(rows, key=lambda k: -(rows[k]["canonical"]["accuracy"] + rows[k]["paraphrases"]["accuracy"]))
    for k in order:
        c, p = rows[k]["canonical"], rows[k]["paraphrases"]
        print(f"{k:<32}{c['accuracy']:>10.3f}{p['accuracy']:>10.3f}{c['own_distance']:>10.3f}"
              f"{p['own_distance']:>10.3f}{report['spread'][k]['median']:>8.3f}")
    for r in report["rows"]:
        if r["prompts"] == "-":
            print(f"{r['patches']:<60}{r['accuracy']:>8.3f}{r['own_distance']:>8.3f}")
    print(f"real spread {report['real_spread']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
