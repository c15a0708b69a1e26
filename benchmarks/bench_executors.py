"""The refit on the local executor beside Ray, on real NSynth notes: wall time of the
command a user runs (`promptsynth dataset refit`, each in a fresh process: Ray's start
included), alternated local, ray, local, ray so that both see the same load; then notes
per second with 1 and 2 workers. Every run's manifest must be the same, bit for bit.

    python benchmarks/bench_executors.py --nsynth ../shared/data/nsynth-test --notes 200

The notes' starting labels are the heuristic's (``dataset build --no-fit``): the refit's
cost does not depend on where it starts (a fixed grid, then a fixed number of steps).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _prepare(nsynth: str, n: int, out: Path, seed: int) -> None:
    """``out/manifest.jsonl``: ``n`` notes drawn at random (``seed``) from ``nsynth``,
    captioned, with heuristic labels."""
    from training.captions import captions_for
    from training.executor import Executor
    from training.extract import extract_notes
    from training.manifest import write_manifest
    from training.nsynth import read_nsynth

    notes = read_nsynth(nsynth)
    if len(notes) < n:
        raise SystemExit(f"{nsynth} has {len(notes)} notes, fewer than --notes {n}")
    notes = sorted(random.Random(seed).sample(notes, n), key=lambda x: x.note_id)
    labels = extract_notes(notes, Executor(workers=2), fit=False, progress=False)
    write_manifest(out / "manifest.jsonl",
                   [dict(note.to_dict(), captions=captions_for(note), **lab) for note, lab in zip(notes, labels)])


def _refit(data: Path, out: Path, executor: str, workers: int, free: str, steps: int) -> tuple[float, float]:
    """The command's wall time, and the seconds its shards took in their workers."""
    cmd = [str(Path(sys.executable).parent / "promptsynth"), "dataset", "refit", "--data", str(data), "--out", str(out),
           "--free", free, "--steps", str(steps), "--executor", executor, "--workers", str(workers)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return dt, json.loads(done.stdout)["shards"]["busy_seconds"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nsynth", default=str(ROOT.parent / "shared" / "data" / "nsynth-test"))
    ap.add_argument("--notes", type=int, default=200, help="notes of the local/ray comparison (200)")
    ap.add_argument("--rounds", type=int, default=3, help="local, ray pairs (3)")
    ap.add_argument("--scaling-notes", type=int, default=96, help="notes of the 1 and 2 workers runs (96)")
    ap.add_argument("--free", default="v2+spectra", help="the shipped model's refit: v2+spectra")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", choices=("compare", "scaling"), help="leave one part out")
    args = ap.parse_args()
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    work = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    print(f"work folder {work}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    manifests = set()
    result: dict = {}
    if args.skip != "compare":
        data = work / "data"
        _prepare(args.nsynth, args.notes, data, args.seed)
        times: dict[str, list[float]] = {"local": [], "ray": []}
        idle: dict[str, list[float]] = {"local": [], "ray": []}
        for r in range(args.rounds):
            for ex in ("local", "ray"):
                out = work / f"{ex}-{r}"
                dt, busy = _refit(data, out, ex, 2, args.free, args.steps)
                times[ex].append(round(dt, 1))
                # The wall time the 2 workers were not computing shards: start, imports,
                # scheduling, the tail where one worker waits, and the driver's work.
                idle[ex].append(round(dt - busy / 2, 1))
                manifests.add((out / "manifest.jsonl").read_bytes())
                print(f"round {r + 1} {ex:5s}: {dt:7.1f} s  ({args.notes / dt:.2f} notes/s; shards busy "
                      f"{busy:.1f} s; not computing {dt - busy / 2:.1f} s; load {os.getloadavg()[0]:.1f})",
                      flush=True)
        local, ray = sum(times["local"]), sum(times["ray"])
        result["compare"] = {"notes": args.notes, "local_s": times["local"], "ray_s": times["ray"],
                             "ray_overhead": round(ray / local - 1.0, 4), "not_computing_s": idle}
        print(f"Ray's overhead: {100 * (ray / local - 1):+.1f}% of the local executor's wall time "
              f"({ray:.1f} s against {local:.1f} s over {args.rounds} rounds)")
        print(f"manifests identical: {len(manifests) == 1}")
    if args.skip != "scaling":
        data = work / "scaling-data"
        _prepare(args.nsynth, args.scaling_notes, data, args.seed + 1)
        seconds: dict[int, list[float]] = {1: [], 2: []}
        scaled = set()
        for r in range(args.rounds):  # alternated, as above
            for workers in (1, 2):
                out = work / f"ray-w{workers}-{r}"
                dt, _ = _refit(data, out, "ray", workers, args.free, args.steps)
                seconds[workers].append(round(dt, 1))
                scaled.add((out / "manifest.jsonl").read_bytes())
                print(f"round {r + 1} ray, {workers} worker(s): {dt:7.1f} s, {args.scaling_notes / dt:.3f} notes/s "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        rates = {w: args.scaling_notes * len(ts) / sum(ts) for w, ts in seconds.items()}
        result["scaling"] = {"notes": args.scaling_notes, "seconds": seconds, "notes_per_s": rates,
                             "speed_up": rates[2] / rates[1], "identical": len(scaled) == 1}
        print(f"notes/s: 1 worker {rates[1]:.3f}, 2 workers {rates[2]:.3f} ({rates[2] / rates[1]:.2f}x); "
              f"manifests identical: {len(scaled) == 1}")
    print(json.dumps(result, indent=1))
    return 0 if len(manifests) <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
