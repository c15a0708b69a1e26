"""Extraction quality and speed: seed-style labels vs the fixed heuristic vs the fit.

Prints, for notes drawn from an NSynth folder, the mean multi-resolution log-spectral
distance between each note and the engine's render of (a) the seed-style labels,
(b) the fixed heuristic and (c) the analysis-by-synthesis fit, and seconds per note.

    python benchmarks/bench_extract.py ../shared/data/nsynth-test --per-instrument 4
    python benchmarks/bench_extract.py --manifest runs/default-data/manifest.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("nsynth", nargs="?", help="NSynth folder")
    ap.add_argument("--per-instrument", type=int, default=4)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--manifest", help="summarise an existing manifest instead of extracting")
    args = ap.parse_args()
    if args.manifest:
        from training.dataset import extraction_summary
        from training.manifest import read_manifest

        print(json.dumps(extraction_summary(read_manifest(args.manifest)), indent=1))
        return
    if not args.nsynth:
        ap.error("give an NSynth folder or --manifest")
    from training.executor import Executor
    from training.extract import extract_notes
    from training.nsynth import read_nsynth

    notes = read_nsynth(args.nsynth, per_instrument=args.per_instrument)
    t0 = time.time()
    labs = extract_notes(notes, Executor(workers=args.workers))
    dt = time.time() - t0
    for key, name in (
        ("distance_seed", "(a) seed-style labels"),
        ("distance_heuristic", "    fixed heuristic"),
        ("distance", "(b) fitted labels"),
    ):
        print(f"{name:24s} mean spectral distance {np.mean([lab[key] for lab in labs]):.4f}")
    print(f"{len(notes)} notes, {dt / len(notes):.2f} s per note (wall, all workers)")


if __name__ == "__main__":
    main()
