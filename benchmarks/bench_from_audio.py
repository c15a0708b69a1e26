"""Audio to patch: seconds from a recording to a patch saved in the bank.

    python benchmarks/bench_from_audio.py [NOTE.wav ...]

Runs `promptsynth patch from-audio` as a user would (a fresh process: imports, pitch
detection, the grid fit and the differentiable refit, the save) on each recording (default:
the NSynth notes in tests/data/nsynth) and prints the wall time and the fit's spectral
distance per note. Target: one note to a playable patch in at most 10 s on the 2-core
development CPU.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    files = sys.argv[1:] or sorted(str(p) for p in (ROOT / "tests" / "data" / "nsynth" / "audio").iterdir())
    bank = tempfile.mkdtemp(prefix="ps-bench-bank-")
    times = []
    print(f"{'recording':<40}{'seconds':>9}{'distance':>10}")
    for i, f in enumerate(files):
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "server", "patch", "from-audio", f, "--name", f"n{i}",
                            "--json", "--bank", bank], cwd=ROOT, capture_output=True, text=True)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            print(f"{Path(f).name:<40}  failed: {r.stderr.strip().splitlines()[-1]}")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])["distance"]
        times.append(dt)
        print(f"{Path(f).name:<40}{dt:9.1f}{d:10.3f}")
    if times:
        print(f"median {statistics.median(times):.1f} s, max {max(times):.1f} s (target: at most 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
