"""The cost of per-note expression: 64 voices at 128 frames, paced (one block per block
period, as ``bench_engine.py``'s paced columns), this tree against another in one window.

    python benchmarks/bench_expression.py [--against DIR] [--rounds 3] [--seconds 4]

``--against DIR``: another checkout (``git archive COMMIT | tar -x -C DIR``), measured in
a process of its own, alternating with this tree, round by round. Columns (median/p99 us a
block): ``v1``, ``v2``, ``sp`` (bench_engine's patches), ``v2_b2b`` (back to back), then,
where the tree has expression: ``expr`` (the v2 patch with every channel's pressure, CC 74
and mod wheel at 100: every voice runs the gain, the added index and the vibrato for the
whole measurement) and ``expr_b2b``; and 16 controller events a block at 16 frames (at
most 2 pieces, as the live host renders): ``ev_none``, ``ev_wheel`` (CC 1), ``ev_press``
(channel pressure). Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time


def measure(seconds: float) -> dict[str, tuple[float, float]]:
    import bench_engine as b

    row = {name: b.bench_engine_paced(64, 128, seconds, patch)
           for name, patch in (("v1", b.PATCH), ("v2", b.PATCH_V2), ("sp", b.PATCH_SP))}

    def back_to_back(e, out) -> tuple[float, float]:
        t = time.perf_counter()
        for _ in range(2000):
            e.render_into(out)
        return (time.perf_counter() - t) / 2000 * 1e6, 0.0

    row["v2_b2b"] = back_to_back(*b._sounding(64, 128, b.PATCH_V2))
    expressive = hasattr(b.Engine, "channel_pressure")
    if expressive:
        e, out = b._sounding(64, 128, b.PATCH_V2)
        for ch in range(16):
            e.channel_pressure(ch, 100)
            e.control_change(ch, 74, 100)
            e.control_change(ch, 1, 100)
        for _ in range(20):
            e.render_into(out)
        row["expr"] = b._paced(e, out, seconds)
        row["expr_b2b"] = back_to_back(e, out)

    def events(kind: str | None) -> tuple[float, float]:
        e, out = b._sounding(64, 128, b.PATCH_V2)
        e.max_events_per_block = b.MAX_EVENTS_PER_BLOCK
        e.max_splits_per_block = 2
        count = [0]

        def arrive() -> None:
            f0 = e.frame
            for j in range(16 if kind else 0):
                count[0] += 1
                k = count[0]
                if kind == "wheel":
                    e.control_change(k % 16, 1, k % 128, f0 + j * 8)
                else:
                    e.channel_pressure(k % 16, k % 128, f0 + j * 8)

        return b._paced(e, out, seconds, arrive)

    row["ev_none"] = events(None)
    row["ev_wheel"] = events("wheel")
    if expressive:
        row["ev_press"] = events("pressure")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", metavar="DIR", help="another checkout, measured alternately")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # one round, this process
    args = ap.parse_args()
    if args.one:
        import gc

        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")  # as the render process does
        gc.disable()
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(3))
        except (AttributeError, OSError):
            pass
        row = measure(args.seconds)
        print(" ".join(f"{k}={m:.1f}/{p:.1f}" for k, (m, p) in row.items()), flush=True)
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = [("this tree", here)] + ([("against", os.path.abspath(args.against))] if args.against else [])
    for r in range(1, args.rounds + 1):
        for label, tree in trees:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([tree, os.path.join(tree, "benchmarks")])}
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", "--seconds", str(args.seconds)],
                                 cwd=tree, env=env, capture_output=True, text=True, check=True).stdout
            print(f"round {r} {label}: {out.strip()}", flush=True)


if __name__ == "__main__":
    main()
