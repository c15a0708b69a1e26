"""The cost of the send effects beside the voices': 64 voices at 128 frames, paced (one
block per block period, as ``bench_engine.py``'s paced columns), every case in one run,
round by round so that the machine's drift falls on all of them alike.

    python benchmarks/bench_effects.py [--rounds 3] [--seconds 3] [--voices 64] [--block 128]

Cases: ``dry`` (no send anywhere: the engine as before the effects), ``rev+cho`` (every
channel's reverb and chorus sends at 100), ``all`` (reverb, chorus and delay), ``tail``
(no voice: the reverb's and the delay's tails alone). Columns (median/p99 us a block):
``block``, all of ``Engine.render_into``; ``effects``, its call of ``Effects.process``
(the plugins and the returns' sum), timed inside the same blocks; ``voices``: the rest
(voices, buses, events, limiter). Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CASES = ("dry", "rev+cho", "all", "tail")


def _engine(case: str, n_voices: int, block: int):
    import bench_engine as b

    e, out = b._sounding(n_voices, block, b.PATCH_V2)
    sends = {"dry": (), "rev+cho": (91, 93), "all": (91, 93, 94), "tail": (91, 94)}[case]
    for ch in range(16):
        for cc in sends:
            e.control_change(ch, cc, 100)
    if case == "tail":
        e.panic()
        for _ in range(4):
            e.render_into(out)
        # Feed the reverb and the delay once, then only their tails run (no voice).
        e.effects.running[[0, 2]] = True
        for ch in range(16):
            for cc in sends:
                e.control_change(ch, cc, 0)
    for _ in range(20):
        e.render_into(out)
    return e, out


def measure(case: str, n_voices: int, block: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Per paced block: (whole render_into, its Effects.process) in microseconds."""
    from engine import Engine

    e, out = _engine(case, n_voices, block)
    assert isinstance(e, Engine)
    fx = e.effects
    inner = fx.process
    spent = [0.0]

    def timed(*args):
        t = time.perf_counter()
        inner(*args)
        spent[0] += time.perf_counter() - t

    fx.process = timed
    period = block / e.sample_rate
    n = max(int(seconds / period), 100)
    whole = np.empty(n)
    effects = np.empty(n)
    due = time.monotonic()
    for i in range(n):
        due += period
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        spent[0] = 0.0
        t = time.perf_counter()
        e.render_into(out)
        whole[i] = time.perf_counter() - t
        effects[i] = spent[0]
        if case == "tail" and not fx.running.any():
            fx.running[[0, 2]] = True  # keep the tails "ringing" for the whole measurement
    return whole * 1e6, effects * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--voices", type=int, default=64)
    ap.add_argument("--block", type=int, default=128)
    args = ap.parse_args()
    import pedalboard

    print(f"send effects: {args.voices} voices, {args.block} frames at 48000 Hz, paced, "
          f"{args.rounds} rounds of {args.seconds:g} s a case; pedalboard {pedalboard.__version__}")
    _engine("all", args.voices, args.block)  # compile and warm up before the first figure
    got: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in CASES}
    for _ in range(args.rounds):
        for case in CASES:
            got[case].append(measure(case, args.voices, args.block, args.seconds))
    print(f"{'case':8s} {'block med':>9s} {'p99':>7s} {'effects med':>11s} {'p99':>7s} {'voices med':>10s} {'p99':>7s}  (us)")
    for case in CASES:
        whole = np.concatenate([w for w, _ in got[case]])
        fx = np.concatenate([f for _, f in got[case]])
        rest = whole - fx
        print(f"{case:8s} {np.median(whole):9.1f} {np.percentile(whole, 99):7.1f} {np.median(fx):11.1f} "
              f"{np.percentile(fx, 99):7.1f} {np.median(rest):10.1f} {np.percentile(rest, 99):7.1f}")


if __name__ == "__main__":
    main()
