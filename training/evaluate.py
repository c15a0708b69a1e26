"""The yardstick: do the words choose the instrument? Judged on real recordings of
instruments never trained on, side by side with baselines and the synth's ceiling.

The judged notes are the dataset's labelled NSynth notes of the checkpoint's evaluation
instruments (``eval_instruments`` in its meta: neither trained on nor used for early
stopping nor in its sound library). Every patch is rendered by the engine at each note's
pitch and velocity (3 s held, 1 s release, 16 kHz) and compared with the real note by
the log-mel L1 distance (:func:`training.metric.mel_l1`: mean absolute difference of
log-mel spectrograms, 64 mels x 16 time slices, of RMS-normalised audio).

- **accuracy**: the share of notes whose nearest of the family patches (one per NSynth
  family, from the prompt "a {family} note" or a paraphrase) is its own family's
  (chance: 1 / number of families);
- **own distance**: the mean distance of each note to its own family's patch;
- **± (accuracy_se)**: the standard error of the accuracy over the judged instruments
  (each instrument's accuracy on its own notes, their standard deviation / sqrt(n)):
  with ten instruments a row's accuracy is uncertain by about 0.1, and so is the
  difference between two rows.

Rows: the model as shipped (its sound library choosing, where it has one); the flow
alone; no model: the per-family **parameter median** of training labels (NSynth, and
SoundFont renders); the **closest in sound**: per family, the one training label whose
renders come closest to that family's real training notes; the **ceiling**: the
per-family parameter median of the labels fitted on the judged notes themselves. Each
model row with canonical prompts, with hand-written paraphrases (``PARAPHRASES``, never
captions) and with plain instrument names (``NAME_PROMPTS``), key-tracked and flat (the
table's centre on every key; names key-tracked only).

**Each left out** (with an NSynth folder, no labels needed): the sound library's patches
for the same three kinds of prompt, judged on every NSynth instrument of the folder, each
left out of the library in turn, and on the evaluation instruments alone
(:mod:`training.left_out`); accuracy and own distance each ± its standard error over the
instruments.

**Spread**: the median distance between the renders (pitches 48/60/72, velocity 100) of
the patches of ``DIVERSE_PROMPTS``, pair by pair, beside that of real notes of different
families at the same pitch.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from engine import KeyTable, render_notes
from training.captions import PARAPHRASES, family_prompt
from training.left_out import candidate_distances, judge_left_out, left_out_choices
from training.left_out import standard_error as _standard_error
from training.library import median_learning, nsynth_targets
from training.manifest import manifest_timbres, read_manifest
from training.metric import mel_features, mel_l1
from training.notes import load_audio
from training.nsynth import NSYNTH_FAMILIES

__all__ = [
    "DIVERSE_PROMPTS", "EVAL_INSTRUMENTS", "NAME_PROMPTS", "evaluate", "report_markdown", "write_report",
]

#: The shipped model's evaluation instruments: one of each NSynth family in
#: ``../shared/data/nsynth-test``, never trained on, validated on or in its library
#: (``promptsynth train --eval-instruments default``).
EVAL_INSTRUMENTS: tuple[str, ...] = (
    "bass_electronic_018", "brass_acoustic_015", "flute_synthetic_000", "guitar_acoustic_015",
    "keyboard_electronic_002", "mallet_acoustic_047", "organ_electronic_113",
    "reed_acoustic_023", "string_acoustic_012", "vocal_acoustic_000",
)

#: Prompts of many kinds of instrument (the spread of the patches they give).
DIVERSE_PROMPTS: tuple[str, ...] = (
    "a warm nylon guitar",
    "a distorted electric guitar",
    "a grand piano",
    "a vintage electric piano",
    "a church organ",
    "a deep synth bass",
    "a plucked upright bass",
    "a bowed cello",
    "a violin section",
    "a harp",
    "a breathy flute",
    "a muted trumpet",
    "a tenor saxophone",
    "a clarinet",
    "a marimba",
    "a glockenspiel",
    "a choir singing aah",
    "a square wave lead",
    "a soft synth pad",
    "a bagpipe",
)
SPREAD_PITCHES = (48, 60, 72)

#: Plain instrument names, four per NSynth family, judged like the canonical prompts (the
#: k-th name of every family is one set of ten patches). Families as the project's
#: General MIDI table assigns them (``training.gm.GM_PROGRAMS``): accordion and
#: harmonica are reeds, harp and contrabass strings; bass is the bass guitar's family.
NAME_PROMPTS: dict[str, tuple[str, ...]] = {
    "bass": ("a bass guitar", "an electric bass", "a fretless bass", "a synth bass"),
    "brass": ("a trumpet", "a trombone", "a tuba", "a french horn"),
    "flute": ("a flute", "a piccolo", "a recorder", "a pan flute"),
    "guitar": ("an acoustic guitar", "an electric guitar", "a classical guitar", "a steel string guitar"),
    "keyboard": ("a piano", "an electric piano", "a harpsichord", "a clavinet"),
    "mallet": ("a marimba", "a xylophone", "a vibraphone", "a glockenspiel"),
    "organ": ("an organ", "a pipe organ", "a church organ", "an electric organ"),
    "reed": ("a saxophone", "a clarinet", "an oboe", "an accordion"),
    "string": ("a violin", "a cello", "a viola", "a harp"),
    "vocal": ("a choir", "a singer", "a soprano voice", "a male voice"),
}

#: Where ``promptsynth eval`` finds NSynth for the rows "each left out", beside the project.
DEFAULT_NSYNTH = Path(__file__).resolve().parents[2] / "shared" / "data" / "nsynth-test"


def _wordings(families: Sequence[str]) -> dict[str, list[list[str]]]:
    """Prompt kind -> its wordings, each one prompt per family (in ``families``' order)."""
    n_para = min(len(PARAPHRASES[f]) for f in families)
    n_names = min(len(NAME_PROMPTS[f]) for f in families)
    return {
        "canonical": [[family_prompt(f) for f in families]],
        "paraphrases": [[PARAPHRASES[f][k] for f in families] for k in range(n_para)],
        "names": [[NAME_PROMPTS[f][k] for f in families] for k in range(n_names)],
    }


class _Renders:
    """Log-mel features of renders, cached by (timbre row, pitch, velocity)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, int, int], np.ndarray] = {}

    def features(self, rows: np.ndarray, pitch: int, velocity: int) -> np.ndarray:
        rows = np.ascontiguousarray(np.atleast_2d(rows), dtype=np.float64)
        keys = [(r.tobytes(), int(pitch), int(velocity)) for r in rows]
        todo = sorted({i for i, k in enumerate(keys) if k not in self._cache}, key=lambda i: keys[i])
        todo = list({keys[i]: i for i in todo}.values())
        for start in range(0, len(todo), 64):
            idx = todo[start : start + 64]
            feats = mel_features(render_notes(rows[idx], pitch, velocity))
            for i, f in zip(idx, feats):
                self._cache[keys[i]] = f
        return np.stack([self._cache[k] for k in keys])


def _flat(table: KeyTable) -> KeyTable:
    return KeyTable.flat(table.lookup(60, 100))


def _median_table(records: Sequence[dict]) -> KeyTable:
    """A flat patch: the median of the records' labels in the schema's learning space (the
    third operator: their most common choice, :func:`training.library.median_learning`)."""
    return KeyTable.from_learning_values([60], [100], median_learning(manifest_timbres(records))[None, None, :])


def _closest_in_sound(
    records: Sequence[dict], renders: _Renders, max_targets: int, seed: int
) -> KeyTable:
    """The one label of ``records`` (flat) whose renders come closest, on average, to the
    real notes of ``records`` (at most ``max_targets`` of them, a seeded draw)."""
    rng = np.random.default_rng(seed)
    targets = list(records)
    if len(targets) > max_targets:
        targets = [targets[i] for i in sorted(rng.choice(len(targets), max_targets, replace=False))]
    rows = manifest_timbres(list(records))
    total = np.zeros(len(rows))
    for t in targets:
        ref = mel_features(load_audio(t["audio_path"]))[0]
        total += mel_l1(renders.features(rows, t["pitch"], t["velocity"]), ref)
    return KeyTable.flat(rows[int(np.argmin(total))])


def _spread(tables: Sequence[KeyTable], renders: _Renders) -> np.ndarray:
    """Pairwise distances ``[n, n]`` between the tables' renders, averaged over pitches."""
    n = len(tables)
    d = np.zeros((n, n))
    for p in SPREAD_PITCHES:
        f = renders.features(np.stack([t.lookup(p, 100) for t in tables]), p, 100)
        d += np.abs(f[:, None, :] - f[None, :, :]).mean(-1)
    return d / len(SPREAD_PITCHES)


def _real_spread(records: Sequence[dict]) -> float:
    """Median distance between real notes of different families at the same pitch."""
    by_pitch = defaultdict(list)
    for r in records:
        by_pitch[r["pitch"]].append(r)
    ds = []
    for group in by_pitch.values():
        fams = [r["family"] for r in group]
        if len(set(fams)) < 2:
            continue
        f = mel_features(np.stack([load_audio(r["audio_path"]) for r in group]))
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                if fams[i] != fams[j]:
                    ds.append(float(mel_l1(f[i], f[j])))
    return float(np.median(ds)) if ds else float("nan")


def evaluate(
    checkpoint: str | os.PathLike,
    manifest: str | os.PathLike | None,
    eval_instruments: Sequence[str] | None = None,
    max_targets: int = 40,
    seed: int = 0,
    progress: bool = True,
    predictors: dict[str, Callable[[str], KeyTable]] | None = None,
    nsynth: str | os.PathLike | None = DEFAULT_NSYNTH,
    per_instrument: int = 24,
    cache: str | os.PathLike | None = None,
) -> dict:
    """The yardstick of ``checkpoint`` on ``manifest``'s notes of its evaluation
    instruments (``eval_instruments`` overrides the checkpoint's list).

    ``predictors``: prompt -> patch functions to judge instead of the checkpoint's model
    and flow (name -> function), e.g. a library with other parameters.

    ``nsynth``: an NSynth folder (``examples.json``, ``audio/``) for the sound library's
    rows "each left out" (:func:`_left_out`): every instrument of it judged on at most
    ``per_instrument`` of its notes at the slot pitches, the library's distances to them
    kept in ``cache`` (an ``.npz`` file) where given. None, or a folder that is not
    there, or one that holds none of the library's real instruments nor the evaluation's,
    leaves those rows out. ``manifest`` None judges only those rows (they need no labels).
    """
    from model import Predictor

    t0 = time.time()
    model = Predictor.load(checkpoint, warm=False)
    data_meta = model.meta.get("data") or {}
    held = list(eval_instruments or data_meta.get("eval_instruments") or [])
    if not held:
        raise ValueError(
            f"{checkpoint} records no evaluation instruments (train with eval_instruments, "
            "or name them)"
        )
    nsynth_root = Path(nsynth) if nsynth is not None and (Path(nsynth) / "examples.json").is_file() else None
    if manifest is None and (nsynth_root is None or model.library is None):
        raise ValueError(
            "evaluate needs a manifest, or a checkpoint with a sound library and an NSynth "
            "folder for the rows 'each left out'"
        )
    renders = _Renders()
    report: dict = {
        "checkpoint": str(checkpoint),
        "eval_instruments": sorted(held),
        "name_prompts": {f: list(v) for f, v in NAME_PROMPTS.items()},
    }
    if predictors is None:
        predictors = {"model": model.patch}
        if model.library is not None:
            predictors["flow alone"] = Predictor(model.checkpoint, model.encoder, snap=model.snap).patch
    judged: list[dict] = []
    if manifest is not None:
        judged = _per_note(report, read_manifest(manifest), held, predictors, renders, max_targets, seed, progress)
    if nsynth_root is not None and model.library is not None:
        left_out = _left_out(model, nsynth_root, held, per_instrument, cache, progress)
        if left_out:
            report["left_out"] = left_out
        elif not judged:
            raise ValueError(f"{nsynth_root} holds none of the library's or evaluation's instruments")
        if not judged:
            judged = nsynth_targets(nsynth_root, held, per_instrument)
            report["families"] = report["left_out"]["families"]
            report["chance"] = round(1.0 / len(report["families"]), 4)

    spread = {}
    for name, fn in predictors.items():
        d = _spread([fn(q) for q in DIVERSE_PROMPTS], renders)
        iu = np.triu_indices(len(DIVERSE_PROMPTS), 1)
        k = int(np.argmin(d[iu]))
        spread[name] = {
            "median": round(float(np.median(d[iu])), 4),
            "closest_pair": [DIVERSE_PROMPTS[iu[0][k]], DIVERSE_PROMPTS[iu[1][k]]],
            "closest_distance": round(float(d[iu][k]), 4),
        }
    report["spread"] = spread
    report["real_spread"] = round(_real_spread(judged), 4)
    report["diverse_prompts"] = list(DIVERSE_PROMPTS)
    report["seconds"] = round(time.time() - t0, 1)
    return report


def _per_note(
    report: dict,
    records: Sequence[dict],
    held: Sequence[str],
    predictors: dict[str, Callable[[str], KeyTable]],
    renders: _Renders,
    max_targets: int,
    seed: int,
    progress: bool,
) -> list[dict]:
    """The rows judged on the manifest's labelled notes of ``held`` (each at its own pitch
    and velocity), beside the label baselines; fills ``report`` and returns the notes."""
    judged = [r for r in records if r["instrument"] in set(held) and r["family"] in NSYNTH_FAMILIES]
    if not judged:
        raise ValueError(f"the manifest has no labelled notes of {list(held)}")
    train_real = [
        r for r in records
        if r["dataset"] == "nsynth" and r["instrument"] not in set(held)
    ]
    train_sf = [r for r in records if r["dataset"] != "nsynth"]
    families = [f for f in NSYNTH_FAMILIES if f in {r["family"] for r in train_real + judged}]
    wordings = _wordings(families)

    # Patch sets: (name, prompts, key-tracked) -> list of {family: table}, one per wording.
    sets: dict[tuple[str, str, bool], list[dict[str, KeyTable]]] = {}
    for name, fn in predictors.items():
        for kind, ws in wordings.items():
            tables = [{f: fn(q) for f, q in zip(families, w)} for w in ws]
            sets[(name, kind, True)] = tables
            # Names are judged as played (key-tracked) only: the flat rows' question, how
            # much the key table adds, is answered by the other two kinds.
            if kind != "names":
                sets[(name, kind, False)] = [{f: _flat(t) for f, t in p.items()} for p in tables]

    def by_family(rs):
        out = defaultdict(list)
        for r in rs:
            out[r["family"]].append(r)
        return out

    real_by_f, sf_by_f, judged_by_f = by_family(train_real), by_family(train_sf), by_family(judged)
    baselines = {
        "parameter median, NSynth training labels": {
            f: _median_table(real_by_f[f]) for f in families if real_by_f[f]
        },
        "parameter median, SoundFont labels": {
            f: _median_table(sf_by_f[f]) for f in families if sf_by_f[f]
        },
        "closest in sound (one training label per family)": {
            f: _closest_in_sound(real_by_f[f], renders, max_targets, seed)
            for f in families if real_by_f[f]
        },
        # A family with no judged instrument (only in small worlds) keeps its training
        # median, so the ceiling's other candidates are still there to be confused with.
        "ceiling: parameter median fitted on the judged notes": {
            f: _median_table(judged_by_f[f] or real_by_f[f] + sf_by_f[f])
            for f in families if judged_by_f[f] or real_by_f[f] or sf_by_f[f]
        },
    }
    for name, table in baselines.items():
        if set(table) == set(families):
            sets[(name, "-", False)] = [table]

    hits: dict[tuple, list[bool]] = defaultdict(list)
    own: dict[tuple, list[float]] = defaultdict(list)
    per_family: dict[tuple, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    per_instrument: dict[tuple, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    it = judged
    if progress:
        from tqdm import tqdm

        it = tqdm(judged, desc="evaluate", unit="note")
    for r in it:
        ref = mel_features(load_audio(r["audio_path"]))[0]
        p, v, fam = r["pitch"], r["velocity"], r["family"]
        for key, tables in sets.items():
            for table in tables:
                rows = np.stack([table[f].lookup(p, v) for f in families])
                d = mel_l1(renders.features(rows, p, v), ref)
                got = families[int(np.argmin(d))]
                hits[key].append(got == fam)
                per_family[key][fam].append(got == fam)
                per_instrument[key][r["instrument"]].append(got == fam)
                own[key].append(float(d[families.index(fam)]))

    rows = []
    for key in sets:
        name, prompts, tracked = key
        rows.append(
            {
                "patches": name,
                "prompts": prompts,
                "key_tracked": tracked,
                "accuracy": round(float(np.mean(hits[key])), 4),
                "accuracy_se": round(_standard_error(per_instrument[key]), 4),
                "own_distance": round(float(np.mean(own[key])), 4),
                "accuracy_per_family": {
                    f: round(float(np.mean(v)), 3) for f, v in sorted(per_family[key].items())
                },
            }
        )
    ceiling = next((r for r in rows if r["patches"].startswith("ceiling")), None)
    report.update(
        notes=len(judged),
        families=families,
        chance=round(1.0 / len(families), 4),
        rows=rows,
        ceiling_own_distance=ceiling["own_distance"] if ceiling else None,
    )
    return judged


def _left_out(
    model, nsynth: Path, held: Sequence[str], per_instrument: int,
    cache: str | os.PathLike | None, progress: bool,
) -> dict:
    """The sound library's patches judged on every instrument of ``nsynth``, each left
    out of the library in turn (:mod:`training.left_out`), and on ``held`` (never in it):
    for each prompt kind, accuracy and own distance, each ± its standard error over the
    instruments."""
    lib = model.library
    with open(nsynth / "examples.json") as f:
        examples = json.load(f)
    fam_of = {e["instrument_str"]: e["instrument_family_str"] for e in examples.values()}
    known = set(held) | {str(k) for k, r in zip(lib.instruments, lib.real) if r}
    if not known & set(fam_of):
        return {}  # not the NSynth the library and its evaluation were drawn from
    families = [f for f in NSYNTH_FAMILIES if f in set(fam_of.values())]
    instruments = sorted(k for k, f in fam_of.items() if f in families)
    targets = nsynth_targets(nsynth, instruments, per_instrument)
    note_inst = np.array([t["instrument"] for t in targets])
    note_fam = np.array([t["family"] for t in targets])
    instruments = [k for k in instruments if k in set(note_inst)]
    wordings = _wordings(families)
    prompts = sorted({q for ws in wordings.values() for w in ws for q in w})
    emb = model.embed(prompts)
    chosen = left_out_choices(lib, emb, instruments, lib.params)
    col = {q: i for i, q in enumerate(prompts)}
    dist = candidate_distances(lib, targets, np.unique(chosen), cache=cache, progress=progress)
    groups = {
        f"the {len([k for k in instruments if k in set(held)])} evaluation instruments":
            [k for k in instruments if k in set(held)],
        f"all {len(instruments)}, each left out": instruments,
    }
    out: dict = {"families": families, "per_instrument": per_instrument, "groups": {}}
    for label, members in groups.items():
        rows = [instruments.index(k) for k in members]
        res = {}
        for kind, ws in wordings.items():
            cols = np.array([[col[q] for q in w] for w in ws])  # [n_wordings, n_families]
            res[kind] = {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in judge_left_out(
                    dist, note_inst, note_fam, families, members, chosen[rows][:, cols]
                ).items()
            }
        out["groups"][label] = res
    return out


def report_markdown(report: dict) -> str:
    """The report as markdown: the table of the per-note rows (with a manifest), the sound
    library's rows on the evaluation instruments and on every instrument left out (with
    NSynth), then the spread."""
    ceil = report.get("ceiling_own_distance")
    lines: list[str] = []
    if "rows" in report:
        lines += [
            f"{report['notes']} real notes of {len(report['eval_instruments'])} instruments never "
            f"trained on ({', '.join(report['eval_instruments'])}); {len(report['families'])} family "
            f"patches each, nearest by log-mel L1 (chance {report['chance']}). Accuracy ± its "
            "standard error over the instruments.",
            "",
            "| patches | prompts | key-tracked | accuracy | own distance | / ceiling's |",
            "|---|---|---|---|---|---|",
        ]
        for r in report["rows"]:
            ratio = f"{r['own_distance'] / ceil:.3f}" if ceil else "-"
            lines.append(
                f"| {r['patches']} | {r['prompts']} | {'yes' if r['key_tracked'] else 'no'} | "
                f"{r['accuracy']:.3f} ± {r.get('accuracy_se', 0.0):.2f} | {r['own_distance']:.3f} | {ratio} |"
            )
        lines.append("")
    lo = report.get("left_out")
    if lo:
        lines += [
            f"The sound library's patches (key-tracked), each instrument left out of it in turn "
            f"(neither a target nor a candidate; the evaluation instruments are never in it), "
            f"judged on its real NSynth notes at the slot pitches (at most {lo['per_instrument']} "
            f"each); {len(lo['families'])} family patches per wording, nearest by log-mel L1 "
            f"(chance {1 / len(lo['families']):.2f}). Each figure ± its standard error over the "
            "instruments.",
            "",
            "| judged on | prompts | instruments | notes | accuracy | own distance |",
            "|---|---|---|---|---|---|",
        ]
        for label, res in lo["groups"].items():
            for kind, r in res.items():
                lines.append(
                    f"| {label} | {kind} | {r['instruments']} | {r['notes']} | "
                    f"{r['accuracy']:.3f} ± {r['accuracy_se']:.3f} | "
                    f"{r['own_distance']:.3f} ± {r['own_distance_se']:.3f} |"
                )
        lines += [
            "",
            "Prompts: canonical \"a {family} note\"; paraphrases: three per family; names: "
            + "; ".join(f"{f}: {', '.join(v)}" for f, v in report.get("name_prompts", {}).items())
            + ".",
            "",
        ]
    lines += [
        f"Spread over {len(report['diverse_prompts'])} diverse prompts (median distance between "
        "their patches' renders, pitches 48/60/72):",
        "",
        "| patches | median | / real notes' | closest pair | its distance |",
        "|---|---|---|---|---|",
    ]
    real = report["real_spread"]
    for name, s in report["spread"].items():
        lines.append(
            f"| {name} | {s['median']:.3f} | {s['median'] / real:.3f} | "
            f"{' / '.join(s['closest_pair'])} | {s['closest_distance']:.3f} |"
        )
    lines.append(f"| real notes of different families, same pitch | {real:.3f} | 1.000 | | |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / "eval.json", out / "eval.md"
    jp.write_text(json.dumps(report, indent=1) + "\n")
    mp.write_text(report_markdown(report))
    return jp, mp
