"""How loud the model's plucked and struck sounds still are late in a held note, beside
real notes of the same families.

    python benchmarks/held_level.py [--model DIR] [--nsynth ../shared/data/nsynth-test]

A held note's late level is the RMS from 2.0 to 2.9 s into a 3 s held note (1 s release,
16 kHz) against its first 0.1 s, in dB. For each family prompt ("a mallet note", "a
guitar note", ...), the model's temperature-0 patch is rendered at pitch 60, velocity 100;
the real notes are the NSynth notes of that family (the evaluation's never-trained
instruments, ``training.evaluate.EVAL_INSTRUMENTS``, within 12 semitones of 60), whose
median is printed beside it, with the log-mel L1 (``training.metric.mel_l1``) of the
patch's render at each real note's pitch and velocity to that note. A linear envelope
must stop at its sustain level, so a fit that follows a pluck's early decay rings on
where the real note has died; a decay linear in dB (``env_curve``) need not. Printed, not
asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.render import render_notes  # noqa: E402
from model import Predictor  # noqa: E402
from training.evaluate import EVAL_INSTRUMENTS  # noqa: E402
from training.metric import mel_features, mel_l1  # noqa: E402
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S, load_audio  # noqa: E402

FAMILIES = ("mallet", "guitar", "keyboard", "bass", "string", "brass", "organ", "reed", "flute", "vocal")


def late_level_db(y: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """RMS in 2.0-2.9 s against the first 0.1 s, dB (floored at -120)."""
    y = np.asarray(y, dtype=np.float64)
    first = np.sqrt(np.mean(y[: int(0.1 * sr)] ** 2))
    late = np.sqrt(np.mean(y[int(2.0 * sr) : int(2.9 * sr)] ** 2))
    return float(20 * np.log10(max(late, 1e-6 * first, 1e-12) / max(first, 1e-12)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="checkpoint folder (default: the shipped one)")
    ap.add_argument("--nsynth", default=str(ROOT.parent / "shared" / "data" / "nsynth-test"))
    args = ap.parse_args(argv)
    nsynth = Path(args.nsynth)
    examples = json.loads((nsynth / "examples.json").read_text())
    by_family: dict[str, list[dict]] = {f: [] for f in FAMILIES}
    for ex in examples.values():
        if ex["instrument_str"] in EVAL_INSTRUMENTS and abs(ex["pitch"] - 60) <= 12:
            by_family[ex["instrument_family_str"]].append(ex)
    p = Predictor.load(args.model)
    print(f"{'prompt':>16} {'patch dB':>9} {'real dB':>8} {'real n':>6} {'log-mel L1':>10}  env_curve sustain")
    for fam in FAMILIES:
        table = p.patch(f"a {fam} note")
        timbre = table.lookup(60, 100)
        y = render_notes(timbre[None], np.array([60.0]), np.array([100.0]), SAMPLE_RATE, HOLD_S, TAIL_S)[0]
        notes = by_family[fam]
        real_db = [late_level_db(load_audio(nsynth / "audio" / (ex["note_str"] + ".flac"))) for ex in notes]
        dist = []
        if notes:
            t = np.stack([table.lookup(ex["pitch"], ex["velocity"]) for ex in notes])
            renders = render_notes(t, np.array([ex["pitch"] for ex in notes], dtype=np.float64),
                                   np.array([ex["velocity"] for ex in notes], dtype=np.float64),
                                   SAMPLE_RATE, HOLD_S, TAIL_S)
            real = np.stack([load_audio(nsynth / "audio" / (ex["note_str"] + ".flac")) for ex in notes])
            dist = mel_l1(mel_features(renders), mel_features(real))
        c = table.center()
        print(f"{'a ' + fam + ' note':>16} {late_level_db(y):9.1f} "
              f"{np.median(real_db) if real_db else float('nan'):8.1f} {len(notes):6d} "
              f"{np.mean(dist) if len(dist) else float('nan'):10.3f}  {c['env_curve']:9.2f} {c['sustain']:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
