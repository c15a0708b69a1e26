"""Engine speed: microseconds per block and real-time factor, beside pyo in the same run.

    python benchmarks/bench_engine.py [--seconds 2] [--no-pyo] [--no-paced]

For each block size (64/128/256 frames at 48 kHz) and voice count (1/8/32/64/128), the
engine renders sustained FM notes block by block back to back; pyo's offline server
renders the same number of 2-operator FM voices (pyo.FM with an ADSR) for the same
duration. Then, as the live render thread does, the engine renders one block per block
period (sleeping in between, under SCHED_FIFO where allowed, one BLAS thread): cold
caches make a paced block dearer than a back-to-back one, and the tail is what misses a
deadline (``paced_med``/``paced_p99``). Figures are printed, not asserted. Target: 64
voices at 128 frames paced, median at most 10% of the block period (267 us) and p99 at
most 1 ms, and at least pyo's throughput.

Each case runs twice: with a schema-v1 patch (``v1_us``: no index peak, no noise, so the
v2 work is skipped) and with a v2 patch whose index peak and noise both last the whole
measurement (``v2_us``: decays of 8 s, the worst case). Paced, two more: the v2 patch
with the third operator (schema v3) on for the whole measurement, every voice in the
parallel layout (``v3``), the three layouts on alternate channels (``mix``), and the v3
patch with the noise band (schema v4) on as well (``v4``: every voice runs every loop the
kernel has). Schema 5, every voice on a moving harmonic carrier for the whole
measurement: the v2 patch with an onset spectrum crossfading into a held one over 8 s,
the held one darkening over 8 s, and a decay half linear in dB over 5 s (``sp``), and the
same on the v4 patch (``sp4``).

Then, paced, blocks into which note-ons arrive (each stealing a voice), at one frame or at
as many frames as notes (MIDI stamped by arrival), rendered in one piece per event time
or in at most 4 or 2 (``Engine.max_splits_per_block``; the live host renders in 2).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from engine import Engine, KeyTable
from server.host import MAX_EVENTS_PER_BLOCK, MAX_SPLITS_PER_BLOCK

SR = 48000
VOICES = (1, 8, 32, 64, 128)
BLOCKS = (64, 128, 256)
TIMBRE = {"attack_s": 0.01, "decay_s": 0.5, "sustain": 0.7, "release_s": 0.3, "mod_ratio": 2.0, "mod_index": 3.0}
PATCH = KeyTable.flat(TIMBRE)
PATCH_V2 = KeyTable.flat({**TIMBRE, "index_peak": 4.0, "index_decay_s": 8.0, "noise_level": 0.2, "noise_decay_s": 8.0})
PATCH_V3 = PATCH_V2.with_param("op3_index", 1.0).with_param("op3_peak", 3.0).with_param("op3_ratio", 3.0)
PATCHES_MIXED = [PATCH_V3.with_param("op3_layout", float(v)) for v in (0, 1, 2)]
PATCH_V4 = PATCH_V3.with_param("band_level", 0.5).with_param("band_width", 0.5).with_param("band_centre", 2.0)
_SPECTRA = {
    **{f"onset_h{k}": -2.0 * (k - 1) for k in range(1, 33)},
    **{f"held_h{k}": max(-3.0 * (k - 1) - (12.0 if k % 2 == 0 else 0.0), -80.0) for k in range(1, 33)},
    "onset_s": 4.0, "darken_db": 6.0, "darken_s": 8.0, "env_curve": 0.5, "decay_s": 5.0,
}


def _with(table: KeyTable, values: dict) -> KeyTable:
    for name, v in values.items():
        table = table.with_param(name, float(v))
    return table


PATCH_SP = _with(PATCH_V2, _SPECTRA)
PATCH_SP4 = _with(PATCH_V4, _SPECTRA)


def _sounding(n_voices: int, block: int, patch: KeyTable | list[KeyTable]) -> tuple[Engine, np.ndarray]:
    """An engine with n_voices notes held, rendered a little, and its block buffer.
    ``patch``: one for every channel, or a list given to the channels in turn."""
    e = Engine(SR, max_voices=max(n_voices, 1))
    patches = patch if isinstance(patch, list) else [patch]
    for ch in range(16):
        e.set_patch(ch, patches[ch % len(patches)])
    for i in range(n_voices):
        e.note_on(i % 16, 36 + i % 72, 100)
    out = np.zeros((block, 2), dtype=np.float32)
    for _ in range(20):
        e.render_into(out)
    assert e.active_voices == n_voices
    return e, out


def bench_engine(n_voices: int, block: int, seconds: float, patch: KeyTable = PATCH) -> float:
    """Median microseconds per block with n_voices sounding."""
    e, out = _sounding(n_voices, block, patch)
    n = max(int(seconds * SR / block), 50)
    times = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        e.render_into(out)
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e6)


def _paced(e: Engine, out: np.ndarray, seconds: float, before=None) -> tuple[float, float]:
    """(median, p99) microseconds per block, one block per block period; ``before()``,
    if given, runs before each block's wait (what arrives during the block)."""
    period = out.shape[0] / SR
    n = max(int(seconds / period), 100)
    times = np.empty(n)
    due = time.monotonic()
    for i in range(n):
        if before is not None:
            before()
        due += period
        d = due - time.monotonic()
        if d > 0:
            time.sleep(d)
        t = time.perf_counter()
        e.render_into(out)
        times[i] = time.perf_counter() - t
    return float(np.median(times) * 1e6), float(np.percentile(times, 99) * 1e6)


def bench_engine_paced(
    n_voices: int, block: int, seconds: float, patch: KeyTable | list[KeyTable] = PATCH
) -> tuple[float, float]:
    """(median, p99) microseconds per block, one block per block period."""
    e, out = _sounding(n_voices, block, patch)
    return _paced(e, out, seconds)


def bench_events_paced(n_events: int, spread: bool, splits: int | None, seconds: float, patch: KeyTable = PATCH,
                       n_voices: int = 32, block: int = 128) -> tuple[float, float]:
    """(median, p99) microseconds per paced block in which ``n_events`` note-ons arrive,
    each stealing a voice (all ``n_voices`` sound), at one frame or at ``n_events``
    distinct frames of the block (MIDI stamped by arrival), with ``max_splits_per_block``
    = ``splits`` and at most ``MAX_EVENTS_PER_BLOCK`` events a block, as the live host
    applies them."""
    e, out = _sounding(n_voices, block, patch)
    e.max_events_per_block = MAX_EVENTS_PER_BLOCK
    e.max_splits_per_block = splits
    count = [0]

    def arrive() -> None:
        f0 = e.frame
        for j in range(n_events):
            count[0] += 1
            k = count[0]
            e.note_on(k % 16, k % 128, 100, f0 + (j * block // n_events if spread else 0))

    return _paced(e, out, seconds, arrive)


def bench_pyo(n_voices: int, block: int, seconds: float) -> float | None:
    """Microseconds per block for pyo's offline server rendering n_voices FM voices."""
    try:
        import pyo
    except ImportError:
        return None
    path = os.path.join(tempfile.mkdtemp(), "pyo.wav")
    s = pyo.Server(sr=SR, nchnls=2, buffersize=block, duplex=0, audio="offline", winhost=None)
    s.setVerbosity(0)
    s.boot()
    s.recordOptions(dur=seconds, filename=path, fileformat=0, sampletype=3)
    envs, voices = [], []
    for i in range(n_voices):
        env = pyo.Adsr(attack=0.01, decay=0.5, sustain=0.7, release=0.3, dur=0, mul=0.01)
        f = 440.0 * 2 ** ((36 + i % 72 - 69) / 12)
        fm = pyo.FM(carrier=f, ratio=2.0, index=3.0, mul=env).out()
        env.play()
        envs.append(env)
        voices.append(fm)
    t = time.perf_counter()
    s.start()  # offline: renders `dur` seconds as fast as it can, then returns
    elapsed = time.perf_counter() - t
    s.shutdown()
    os.remove(path)
    return elapsed / (seconds * SR / block) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0, help="audio seconds rendered per case")
    ap.add_argument("--no-pyo", action="store_true")
    ap.add_argument("--no-paced", action="store_true", help="skip the paced measurement")
    args = ap.parse_args()
    import gc

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # as the render process does
    gc.disable()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(3))
        sched = "SCHED_FIFO 3"
    except (AttributeError, OSError) as exc:
        sched = f"normal priority ({exc})"
    print(
        f"{'block':>5} {'voices':>6} {'period_us':>9} {'v1_us':>8} {'v1_rtf':>7} {'v2_us':>8} {'v2_rtf':>7} "
        f"{'pyo_us':>8} {'pyo_rtf':>8} {'v1/pyo':>7}"
    )
    for block in BLOCKS:
        period = block / SR * 1e6
        for n in VOICES:
            us = bench_engine(n, block, args.seconds)
            us2 = bench_engine(n, block, args.seconds, PATCH_V2)
            py = None if args.no_pyo else bench_pyo(n, block, args.seconds)
            py_s = f"{py:8.1f} {period / py:8.1f} {py / us:7.2f}" if py else f"{'-':>8} {'-':>8} {'-':>7}"
            print(f"{block:5d} {n:6d} {period:9.1f} {us:8.1f} {period / us:7.1f} {us2:8.1f} {period / us2:7.1f} {py_s}")
    print("rtf = real-time factor (block period / render time); v1/pyo > 1: the engine is faster")
    if args.no_paced:
        return
    print(f"\npaced, one block per period ({sched}), {max(args.seconds, 4.0):g} s per case:")
    cols = (("v1", PATCH), ("v2", PATCH_V2), ("v3", PATCH_V3), ("mix", PATCHES_MIXED), ("v4", PATCH_V4),
            ("sp", PATCH_SP), ("sp4", PATCH_SP4))
    print(f"{'block':>5} {'voices':>6} {'period_us':>9} " + " ".join(f"{c + '_med':>8} {c + '_p99':>8}" for c, _ in cols))
    for block in (128,):
        for n in (32, 64):
            row = [bench_engine_paced(n, block, max(args.seconds, 4.0), patch) for _, patch in cols]
            print(f"{block:5d} {n:6d} {block / SR * 1e6:9.1f} " + " ".join(f"{m:8.1f} {p:8.1f}" for m, p in row))
    print("target at 128 frames, 64 voices: median <= 267 us, p99 <= 1000 us")
    secs = max(args.seconds, 4.0)
    print(f"\npaced, 32 voices, 128 frames, note-ons that steal arriving in the block, {secs:g} s per case:")
    print(f"{'events':>6} {'at':>16} {'pieces at most':>14} {'med_us':>8} {'p99_us':>8} {'sp_med':>8} {'sp_p99':>8}")
    for n_ev in (0, 4, 16):
        for spread, splits in ((False, None), (True, None), (True, 4), (True, 2)):
            if n_ev == 0 and spread:
                continue
            m, p = bench_events_paced(n_ev, spread, splits, secs)
            ms, ps = bench_events_paced(n_ev, spread, splits, secs, PATCH_SP)  # each note builds its tables
            at = f"{n_ev} frames" if spread else "one frame"
            print(f"{n_ev:6d} {at:>16} {splits or '-':>14} {m:8.1f} {p:8.1f} {ms:8.1f} {ps:8.1f}")
    print(f"the live host renders a block in at most {MAX_SPLITS_PER_BLOCK} pieces")


if __name__ == "__main__":
    main()
