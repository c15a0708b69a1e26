"""Benchmark the Predictor: load time, warm prompt -> theta, repeated prompt.

    python benchmarks/bench_model.py [--checkpoint DIR] [--hidden 768] [--threads 1]

Without --checkpoint it uses the shipped default if there is one, else a randomly
initialised checkpoint of the default size (timing is the same; the patches are not
meaningful), and says which.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_LOAD_SNIPPET = """
import time; t0 = time.perf_counter()
from model import Predictor
p = Predictor.load({path!r}, threads={threads!r})
t1 = time.perf_counter()
p.patch("a first prompt after loading")
print(t1 - t0, time.perf_counter() - t1)
"""

ADJECTIVES = [
    "bright",
    "warm",
    "dark",
    "soft",
    "harsh",
    "glassy",
    "metallic",
    "woody",
    "airy",
    "punchy",
]
SOURCES = ["bell", "pad", "bass", "pluck", "organ", "flute", "brass", "string", "mallet", "lead"]


def _prompts(n: int) -> list[str]:
    out = [f"a {a} {s}" for a in ADJECTIVES for s in SOURCES]
    return [f"{p} number {i}" for i, p in enumerate(out * (n // len(out) + 1))][:n]


def _random_checkpoint(folder: Path, hidden: int) -> Path:
    import numpy as np

    from engine import PARAMS
    from model import ConditionalRealNVP, Normaliser, ThetaNormaliser, get_encoder, save_checkpoint

    enc = get_encoder("minilm")
    rng = np.random.default_rng(0)
    theta = np.array([[rng.uniform(p.minimum, p.maximum) for p in PARAMS] for _ in range(64)])
    emb = enc.encode([f"calibration prompt {i}" for i in range(64)])
    flow = ConditionalRealNVP(len(PARAMS), enc.dim, hidden=hidden)
    return save_checkpoint(
        folder, flow, ThetaNormaliser.fit(theta), Normaliser.fit(emb), enc,
        data={"note": "random initialisation, for benchmarking only"},
    )  # fmt: skip


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--hidden", type=int, default=768, help="hidden size of a random checkpoint")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as the host's worker)"
    )
    ap.add_argument("--n", type=int, default=100, help="different prompts for the warm figure")
    args = ap.parse_args()

    from model import DEFAULT_CHECKPOINT, Predictor

    tmp = tempfile.TemporaryDirectory()
    if args.checkpoint is not None:
        path, what = args.checkpoint, f"checkpoint {args.checkpoint}"
    elif (DEFAULT_CHECKPOINT / "meta.json").is_file():
        path, what = DEFAULT_CHECKPOINT, "the shipped default checkpoint"
    else:
        path = _random_checkpoint(Path(tmp.name) / "random", args.hidden)
        what = f"a RANDOMLY INITIALISED checkpoint (no trained default yet), hidden {args.hidden}"
    print(f"promptsynth model benchmark: {what}")
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}")

    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_SNIPPET.format(path=str(path), threads=args.threads)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    load_s, first_s = map(float, out.stdout.split()[-2:])
    print(f"load, fresh process: {load_s:.2f} s imports + Predictor.load (torch, transformers, "
          f"MiniLM incl. sha256 check, flow, warm-up); {wall:.2f} s whole process incl. "
          f"interpreter start and first prompt ({_ms(first_s)})")  # fmt: skip

    predictor = Predictor.load(path, threads=args.threads)
    import torch

    print(f"torch threads: {torch.get_num_threads()}; flow: {predictor.checkpoint.flow.config}")
    for p in _prompts(5):
        predictor.patch("warm-up " + p)
    # What the live host runs per prompt: the patch (a whole key table, every key anchor x
    # velocity layer in one batch, for a key-tracked checkpoint; a flat one otherwise).
    times = []
    for p in _prompts(args.n):
        t = time.perf_counter()
        predictor.patch(p)
        times.append(time.perf_counter() - t)
    times.sort()
    how = "sound library" if predictor.library is not None else "flow"
    print(f"warm prompt -> patch ({how}; {'key-tracked' if predictor.key_tracked else 'flat'}), "
          f"{args.n} different prompts: median {_ms(statistics.median(times))}, "
          f"p90 {_ms(times[int(0.9 * len(times))])}, max {_ms(times[-1])}")  # fmt: skip

    emb = predictor.embed(["a warm brass pad"])
    import numpy as np

    if predictor.library is not None:
        lib_t = []
        for _ in range(100):
            t = time.perf_counter()
            predictor._chosen(emb)
            lib_t.append(time.perf_counter() - t)
        print(f"  of which the library's choice and its table (cached embedding): "
              f"median {_ms(statistics.median(lib_t))}")  # fmt: skip
    flow_t = []
    for _ in range(100):
        t = time.perf_counter()
        predictor._patches(emb, np.zeros((1, predictor.checkpoint.flow.dim)))
        flow_t.append(time.perf_counter() - t)
    print(
        f"  the flow and its table (temperature > 0; cached embedding): median {_ms(statistics.median(flow_t))}"
    )

    rep = []
    for _ in range(1000):
        t = time.perf_counter()
        predictor.patch("a warm brass pad")
        rep.append(time.perf_counter() - t)
    print(f"repeated prompt: median {_ms(statistics.median(rep))}, max {_ms(max(rep))}")

    sampled = []
    for i in range(50):
        t = time.perf_counter()
        predictor.patch("a warm brass pad", temperature=1.0, seed=i)
        sampled.append(time.perf_counter() - t)
    print(f"repeated prompt at temperature 1 (cached embedding, flow run): median "
          f"{_ms(statistics.median(sampled))}")  # fmt: skip

    batch = _prompts(args.n + 200)[200:]
    t = time.perf_counter()
    predictor.patches(batch)
    print(f"patches() of {len(batch)} new prompts: {_ms(time.perf_counter() - t)}")
    t = time.perf_counter()
    predictor.candidates("a glassy bell", 16, 1.0, seed=0)
    print(f"candidates(n=16): {_ms(time.perf_counter() - t)}")
    tmp.cleanup()


if __name__ == "__main__":
    main()
