"""Evaluation on the validation instruments (never trained on).

- per-parameter error: |g(0|caption) - extracted theta| in learning space, per timbre
  parameter, over every (validation note, caption) pair, beside the per-family-mean baseline;
- spectral distance (:mod:`training.spectral`) between the real note and the render, at
  the note's pitch and velocity, of: the model's patch for "a {family} note"; the
  per-family mean theta of the training notes; one global mean patch; and the note's own
  fitted label (the best the synth reached: a floor, not a baseline), and silence (a
  sanity check: any patch worth having must beat it);
- family retrieval: render every family's patch at the note's pitch and velocity; the
  retrieved family is the one whose render is nearest the real note in log-mel space;
  accuracy over notes of NSynth's families (chance: 1 / number of families);
- the same retrieval with ``PARAPHRASES`` (prompts never used as captions), and whether
  each paraphrase's patch sounds nearest (log-mel, pitches 48/60/72) its own family's.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from engine import PARAM_NAMES, TIMBRE_NAMES, KeyTable, render_notes, to_learning
from training.captions import PARAPHRASES, family_prompt
from training.manifest import manifest_thetas, read_manifest
from training.notes import load_audio
from training.nsynth import NSYNTH_FAMILIES
from training.spectral import log_mel, spectral_distance

__all__ = ["evaluate", "report_markdown"]

_TIMBRE_IDX = [PARAM_NAMES.index(n) for n in TIMBRE_NAMES]


def _timbres(theta: np.ndarray) -> np.ndarray:
    return np.atleast_2d(theta)[:, _TIMBRE_IDX]


def _at(patch, pitch: int, velocity: int) -> np.ndarray:
    """The timbre ``[n_timbre]`` a patch gives a note: a KeyTable's row for the key and
    velocity, or a full theta array's timbre values."""
    if isinstance(patch, KeyTable):
        return patch.lookup(int(pitch), int(velocity))
    return _timbres(patch)[0]


def evaluate(
    checkpoint: str | os.PathLike,
    manifest: str | os.PathLike,
    max_notes: int | None = 400,
    seed: int = 0,
    progress: bool = True,
    flatten: bool = False,
    snap: bool = True,
) -> dict:
    """Evaluate ``checkpoint`` on the validation instruments recorded in it.

    The model's patch for a prompt is its key table (flat for a text-only checkpoint);
    each note is scored with the table's timbre for its pitch and velocity. ``flatten``:
    use the table's timbre at key 60, velocity 100 for every note instead (what the
    model gives without following the key).
    """
    from model import Predictor

    pred = Predictor.load(checkpoint, warm=False, snap=snap)

    def patch(prompt: str) -> KeyTable:
        table = pred.patch(prompt)
        return KeyTable.flat(table.lookup(60, 100)) if flatten else table

    records = read_manifest(manifest)
    val_insts = set((pred.meta.get("data") or {}).get("val_instruments") or [])
    if not val_insts:
        raise ValueError(f"{checkpoint} records no validation instruments")
    val = [r for r in records if r["instrument"] in val_insts]
    train = [r for r in records if r["instrument"] not in val_insts]
    rng = np.random.default_rng(seed)
    if max_notes is not None and len(val) > max_notes:
        val = [val[i] for i in sorted(rng.choice(len(val), max_notes, replace=False))]

    th_train = manifest_thetas(train)
    learn_train = to_learning(th_train)
    fams_train = np.array([r["family"] for r in train])
    fam_mean = {f: learn_train[fams_train == f].mean(0) for f in set(fams_train)}
    global_mean = learn_train.mean(0)

    def physical(learn):
        from engine import clamp_array, from_learning

        return clamp_array(from_learning(learn))

    families = [f for f in NSYNTH_FAMILIES if f in set(fams_train)]
    model_fam = {f: patch(family_prompt(f)) for f in families}
    extra = sorted({r["family"] for r in val} - set(model_fam))
    for f in extra:
        model_fam[f] = patch(family_prompt(f))
    para_fam = [
        {f: patch(PARAPHRASES[f][k]) for f in families}
        for k in range(min(len(v) for v in PARAPHRASES.values()))
    ]

    # Per-parameter error over (note, caption) pairs, the model told each note's key.
    caps = [(r, c) for r in val for c in r["captions"]]
    truth = manifest_thetas([r for r, _ in caps])
    predicted = truth.copy()
    predicted[:, _TIMBRE_IDX] = np.stack(
        [_at(patch(c), r["pitch"], r["velocity"]) for r, c in caps]
    )
    err_model = np.abs(to_learning(predicted) - to_learning(truth))[:, _TIMBRE_IDX]
    base = np.stack([fam_mean.get(r["family"], global_mean) for r, _ in caps])
    err_base = np.abs(base - to_learning(truth))[:, _TIMBRE_IDX]
    per_param = {
        name: {
            "model": round(float(err_model[:, i].mean()), 4),
            "family_mean": round(float(err_base[:, i].mean()), 4),
        }
        for i, name in enumerate(TIMBRE_NAMES)
    }

    dist = defaultdict(list)
    hits = defaultdict(list)
    it = val
    if progress:
        from tqdm import tqdm

        it = tqdm(val, desc="evaluate", unit="note")
    for r in it:
        y = load_audio(r["audio_path"])
        p, v, f = r["pitch"], r["velocity"], r["family"]
        cands = {
            "model": model_fam[f],
            "family_mean": physical(fam_mean.get(f, global_mean)),
            "global_patch": physical(global_mean),
            "fitted_label": manifest_thetas([r])[0],
        }
        names = list(cands)
        renders = render_notes(np.stack([_at(cands[k], p, v) for k in names]), p, v)
        d = spectral_distance(np.repeat(y[None], len(names), 0), renders)
        for k, dk in zip(names, d):
            dist[k].append(float(dk))
        dist["silence"].append(float(spectral_distance(y, np.zeros_like(y))))
        if f not in families:
            continue
        ref = log_mel(y[None])[0]
        for label, table in [
            ("model", model_fam),
            ("family_mean", {g: physical(fam_mean[g]) for g in families}),
        ] + [(f"paraphrase_{k}", t) for k, t in enumerate(para_fam)]:
            th = np.stack([_at(table[g], p, v) for g in families])
            feats = log_mel(render_notes(th, p, v))
            got = families[int(np.argmin(((feats - ref) ** 2).sum(-1)))]
            hits[label].append(got == f)
    retrieval = {k: round(float(np.mean(v)), 4) for k, v in hits.items()}
    para_keys = [k for k in retrieval if k.startswith("paraphrase_")]

    # Does each paraphrase's patch sound nearest its own family's patch? Log-mel distance
    # summed over renders at pitches 48/60/72, velocity 100.
    def sound(patches):
        return np.concatenate(
            [
                log_mel(render_notes(np.stack([_at(t, pitch, 100) for t in patches]), pitch, 100))
                for pitch in (48, 60, 72)
            ],
            axis=1,
        )

    fam_feats = sound([model_fam[f] for f in families])
    near = []
    per_prompt = {}
    for f in families:
        for prompt in PARAPHRASES[f]:
            q = sound([patch(prompt)])[0]
            g = families[int(np.argmin(((fam_feats - q) ** 2).sum(-1)))]
            near.append(g == f)
            per_prompt[prompt] = g
    report = {
        "checkpoint": str(checkpoint),
        "key_tracked": pred.key_tracked and not flatten,
        "ratio_snapped": snap,
        "val_instruments": sorted(val_insts),
        "val_notes": len(val),
        "families": families,
        "chance": round(1.0 / max(len(families), 1), 4),
        "per_parameter_abs_error_learning_space": per_param,
        "spectral_distance": {k: round(float(np.mean(v)), 4) for k, v in dist.items()},
        "family_retrieval_accuracy": {
            "model": retrieval.get("model"),
            "family_mean": retrieval.get("family_mean"),
            "paraphrases_model": round(float(np.mean([retrieval[k] for k in para_keys])), 4)
            if para_keys
            else None,
        },
        "paraphrase_nearest_family_patch": round(float(np.mean(near)), 4) if near else None,
        "paraphrase_nearest_family": per_prompt,
        "family_patches_at_key_60_velocity_100": {
            f: dict(zip(TIMBRE_NAMES, np.round(_at(model_fam[f], 60, 100), 4).tolist()))
            for f in families
        },
    }
    return report


def report_markdown(report: dict) -> str:
    """The report as markdown tables."""
    sd = report["spectral_distance"]
    fr = report["family_retrieval_accuracy"]
    lines = [
        f"Validation: {report['val_notes']} notes of {len(report['val_instruments'])} instruments "
        "never trained on. Patches: "
        + (
            "key-tracked (each note gets the table's timbre for its pitch and velocity)."
            if report.get("key_tracked")
            else "flat (one timbre for every note)."
        )
        + (
            " Modulator ratios snapped to the grid, as the host plays them."
            if report.get("ratio_snapped", True)
            else " The flow's raw modulator ratios (not snapped)."
        ),
        "",
        "| patch rendered at each real note's pitch and velocity | spectral distance (lower is better) |",
        "|---|---|",
        f'| model, prompt "a {{family}} note" | {sd.get("model")} |',
        f"| baseline: per-family mean theta (training notes) | {sd.get('family_mean')} |",
        f"| baseline: one global mean patch | {sd.get('global_patch')} |",
        f"| floor: the note's own fitted label | {sd.get('fitted_label')} |",
        f"| sanity check: silence | {sd.get('silence')} |",
        "",
        f"| family retrieval (log-mel nearest of {len(report['families'])} family patches; "
        f"chance {report['chance']}) | accuracy |",
        "|---|---|",
        f'| model, "a {{family}} note" | {fr.get("model")} |',
        f"| model, paraphrased prompts (never captions) | {fr.get('paraphrases_model')} |",
        f"| baseline: per-family mean theta | {fr.get('family_mean')} |",
        f"| paraphrase's patch sounds nearest its own family's patch (log-mel, 3 pitches) | "
        f"{report.get('paraphrase_nearest_family_patch')} |",
        "",
        "| parameter | abs error, model (learning space) | abs error, family mean |",
        "|---|---|---|",
    ]
    for name, v in report["per_parameter_abs_error_learning_space"].items():
        lines.append(f"| {name} | {v['model']} | {v['family_mean']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / "eval.json", out / "eval.md"
    jp.write_text(json.dumps(report, indent=1) + "\n")
    mp.write_text(report_markdown(report))
    return jp, mp


__all__ += ["write_report"]
