"""Build a training set: read/render notes, caption them, extract theta, write a manifest."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.captions import captions_for
from training.extract import extract_notes
from training.manifest import write_manifest
from training.notes import Note

__all__ = ["build_dataset", "extraction_summary"]


def build_dataset(
    out_dir: str | os.PathLike,
    nsynth_root: str | os.PathLike | None = None,
    per_instrument: int | None = None,
    per_combo: int | None = None,
    families: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    gm: bool = False,
    gm_pitches: Sequence[int] = (48, 60, 72),
    gm_velocities: Sequence[int] = (100,),
    soundfont: str | os.PathLike | None = None,
    soundfonts: Sequence[str | os.PathLike] | None = None,
    sf_pitches: Sequence[int] = (36, 48, 60, 72, 84),
    sf_velocities: Sequence[int] = (100,),
    executor=None,
    fit: bool = True,
    local_iters: int = 3,
    seed: int = 0,
    progress: bool = True,
    shard_notes: int = 8,
) -> dict:
    """Write ``out_dir/manifest.jsonl`` and ``out_dir/extraction.json``; returns the summary.

    NSynth notes are read in place; GM notes (``gm``: the 128 programs of one font) and
    SoundFont presets (``soundfonts``: ``all`` for every installed font of
    :data:`training.presets.SOUNDFONTS`, their keys, or ``.sf2``/``.sf3`` files and
    folders of them; every melodic preset at ``sf_pitches`` x ``sf_velocities``) are
    rendered into ``out_dir/audio``. Rendering and extraction run in shards on
    ``executor`` (:class:`training.executor.Executor`; default: local processes).
    Resumable: renders already there are kept, and each shard's labels, kept in
    ``out_dir/shards/`` as they are found, are not fitted again.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[Note] = []
    t0 = time.time()
    if nsynth_root is not None:
        from training.nsynth import read_nsynth

        notes += read_nsynth(nsynth_root, families, sources, per_combo, per_instrument, seed)
    if gm:
        from training.soundfont import render_gm_notes

        notes += render_gm_notes(
            out,
            pitches=gm_pitches,
            velocities=gm_velocities,
            soundfont=soundfont,
            progress=progress,
        )
    if soundfonts:
        from training.presets import resolve_soundfonts
        from training.soundfont import render_presets

        notes += render_presets(
            out,
            resolve_soundfonts(soundfonts),
            pitches=sf_pitches,
            velocities=sf_velocities,
            executor=executor,
            progress=progress,
        )
    if not notes:
        raise ValueError("no notes: give an NSynth folder and/or enable the GM SoundFont")
    labels = extract_notes(
        notes,
        executor,
        fit=fit,
        local_iters=local_iters,
        progress=progress,
        store=out / "shards",
        shard_notes=shard_notes,
    )
    records = []
    for note, lab in zip(notes, labels):
        rec = note.to_dict()
        rec["captions"] = captions_for(note)
        rec.update(lab)
        records.append(rec)
    write_manifest(out / "manifest.jsonl", records)
    summary = extraction_summary(records)
    summary["seconds"] = round(time.time() - t0, 1)
    summary["fit"] = fit
    with open(out / "extraction.json", "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def extraction_summary(records: Sequence[dict]) -> dict:
    """Mean spectral distance of renders from each label set, per dataset and overall."""

    def stats(rs):
        return {
            "notes": len(rs),
            "distance_seed": round(float(np.mean([r["distance_seed"] for r in rs])), 4),
            "distance_heuristic": round(float(np.mean([r["distance_heuristic"] for r in rs])), 4),
            "distance_fit": round(float(np.mean([r["distance"] for r in rs])), 4),
            "fit_better_than_seed": round(
                float(np.mean([r["distance"] < r["distance_seed"] for r in rs])), 4
            ),
        }

    out = {"all": stats(records)}
    for ds in sorted({r["dataset"] for r in records}):
        out[ds] = stats([r for r in records if r["dataset"] == ds])
    return out
