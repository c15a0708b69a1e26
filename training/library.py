"""Build a checkpoint's sound library (:class:`model.library.SoundLibrary`).

From a dataset's manifest (fitted labels of real NSynth notes and of SoundFont renders):

- one **candidate** patch per training instrument: a key table anchored where its
  labelled notes lie (:func:`instrument_table`);
- the **targets** of the sound: per instrument, real recordings (NSynth: every note of the
  instrument at the slot pitches, not only the labelled ones, at most ``per_instrument``)
  or the SoundFont renders;
- the **distance** of every candidate to every instrument: the candidate is rendered by
  the engine at each target note's pitch and velocity (3 s held, 1 s release, 16 kHz) and
  compared with the note by :func:`training.metric.mel_l1` (the evaluation's log-mel L1 distance), then
  averaged over the instrument's notes;
- every instrument's captions, embedded by the encoder the flow was trained with;
- every candidate's name as a person reads it (``"Clarinet, FluidR3 GM"``, from its
  notes' ``name`` field: :func:`model.library.instrument_titles`).

Instruments named in ``exclude`` (the evaluation's) take no part in any of it.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine import TIMBRE_NAMES, TIMBRE_SPACE, KeyTable, op3_layout, render_notes, snap_ratio
from training.manifest import manifest_timbres, read_manifest
from training.metric import mel_features
from training.notes import load_audio

__all__ = [
    "SLOT_PITCHES",
    "build_library",
    "instrument_table",
    "median_learning",
    "op3_choice",
    "note_distances",
    "nsynth_targets",
    "render_features",
    "render_shard",
    "target_features",
    "target_shard",
    "target_slots",
]

#: Pitches real target notes are taken at (every 6 semitones, C2..C6): candidates are
#: rendered at these pitches x the notes' velocities, once each.
SLOT_PITCHES: tuple[int, ...] = tuple(range(36, 85, 6))
_RATIO = TIMBRE_NAMES.index("mod_ratio")
_R3, _I3, _PK3, _LAY = (TIMBRE_NAMES.index(n) for n in ("op3_ratio", "op3_index", "op3_peak", "op3_layout"))
_OP3_DEFAULT = TIMBRE_SPACE.to_learning(TIMBRE_SPACE.default)


def op3_choice(th: np.ndarray) -> tuple[tuple[float, float] | None, np.ndarray]:
    """The third operator a group of labels ``th [n, n_timbre]`` shares: its most common
    (layout, ratio) among the labels, or None (off) when most leave it off (ties: the
    first label's); and which labels have that choice."""
    on = (th[:, _I3] > 0.0) | (th[:, _PK3] > 0.0)
    combos = [(op3_layout(float(lay)), float(r)) if o else None for o, lay, r in zip(on, th[:, _LAY], th[:, _R3])]
    mode = Counter(combos).most_common(1)[0][0]  # the first of equal counts
    return mode, np.array([c == mode for c in combos])


def with_op3(learn: np.ndarray, th: np.ndarray, choice: tuple[float, float] | None, mask: np.ndarray,
             near=None) -> np.ndarray:
    """Learning-space rows ``learn [..., n_timbre]`` (medians of labels) with the third
    operator of ``choice`` (:func:`op3_choice`'s choice and ``mask``, its labels): off, or
    its layout and ratio, and its index and peak the medians of the labels ``th[mask]``
    (``near``: those of them to use where any)."""
    out = np.array(learn, dtype=np.float64)
    if choice is None:
        for j in (_R3, _I3, _PK3, _LAY):
            out[..., j] = _OP3_DEFAULT[j]
        return out
    pick = mask if near is None or not (mask & near).any() else mask & near
    u = TIMBRE_SPACE.to_learning(th[pick])
    out[..., _LAY] = choice[0]
    out[..., _R3] = np.log(choice[1])
    out[..., _I3] = np.median(u[:, _I3])
    out[..., _PK3] = np.median(u[:, _PK3])
    return out


def median_learning(th: np.ndarray) -> np.ndarray:
    """A group's patch in learning space ``[n_timbre]``: the median of its labels ``th
    [n, n_timbre]``, the third operator the group's most common choice (a median of
    layouts or of ratios is no layout, nor a ratio any of them had)."""
    return with_op3(np.median(TIMBRE_SPACE.to_learning(th), axis=0), th, *op3_choice(th))


def instrument_table(records: Sequence[dict], spacing: int = 12) -> KeyTable:
    """A key table from one instrument's labelled notes.

    Anchors every ``spacing`` semitones where notes lie: each anchor takes the median, in
    the schema's learning space, of the labels within half a spacing of it. The modulator
    ratio is one for the whole table (the median label's, snapped to the grid), as a
    ratio between two grid values beats against the carrier. So are the third operator's
    layout and ratio (the instrument's most common, :func:`op3_choice`).
    """
    th = manifest_timbres(list(records))
    learn = TIMBRE_SPACE.to_learning(th)
    pitches = np.array([r["pitch"] for r in records], dtype=float)
    lo = int(spacing * np.floor(pitches.min() / spacing))
    choice, mask = op3_choice(th)
    keys, rows = [], []
    for k in range(lo, int(pitches.max()) + spacing, spacing):
        near = np.abs(pitches - k) <= spacing / 2
        if near.any() and 0 <= k <= 127:
            keys.append(k)
            rows.append(with_op3(np.median(learn[near], axis=0), th, choice, mask, near))
    values = np.stack(rows)
    ratio = float(snap_ratio(np.array([np.median(th[:, _RATIO])]))[0])
    values[:, _RATIO] = TIMBRE_SPACE.to_learning(np.full((1, th.shape[1]), ratio))[0, _RATIO]
    return KeyTable.from_learning_values(keys, [100], values[:, None, :])


def nsynth_targets(
    root: str | os.PathLike,
    instruments: Sequence[str],
    per_instrument: int = 24,
    pitches: Sequence[int] = SLOT_PITCHES,
    seed: int = 0,
) -> list[dict]:
    """Real notes of ``instruments`` in the NSynth folder ``root`` at ``pitches``: at most
    ``per_instrument`` each (a seeded draw), as dicts (instrument, family, pitch,
    velocity, audio_path)."""
    from training.nsynth import _audio_path

    root = Path(root)
    with open(root / "examples.json") as f:
        examples = json.load(f)
    want = set(instruments)
    keep = set(pitches)
    by_inst: dict[str, list[dict]] = defaultdict(list)
    for note_str in sorted(examples):
        ex = examples[note_str]
        if ex["instrument_str"] in want and int(ex["pitch"]) in keep:
            path = _audio_path(root, note_str)
            if path is not None:
                by_inst[ex["instrument_str"]].append(
                    {
                        "instrument": ex["instrument_str"],
                        "family": ex["instrument_family_str"],
                        "pitch": int(ex["pitch"]),
                        "velocity": int(ex["velocity"]),
                        "audio_path": str(path),
                    }
                )
    rng = random.Random(seed)
    out = []
    for inst in sorted(by_inst):
        notes = by_inst[inst]
        if len(notes) > per_instrument:
            notes = sorted(rng.sample(notes, per_instrument), key=lambda n: (n["pitch"], n["velocity"]))
        out += notes
    return out


def render_shard(tables: Sequence[KeyTable], slots: Sequence[tuple[int, int]]) -> np.ndarray:
    """A worker's task: log-mel features of ``tables`` rendered at every (pitch,
    velocity) slot, one engine call per slot, ``[n_tables, n_slots, 1024]`` float16."""
    out = np.zeros((len(tables), len(slots), 1024), dtype=np.float16)
    for j, (pitch, vel) in enumerate(slots):
        rows = np.stack([t.lookup(pitch, vel) for t in tables])
        out[:, j] = mel_features(render_notes(rows, pitch, vel))
    return out


def render_features(
    tables: Sequence[KeyTable],
    slots: Sequence[tuple[int, int]],
    progress: bool = False,
    batch: int = 64,
    executor=None,
    store: str | os.PathLike | None = None,
) -> np.ndarray:
    """Log-mel features of every table rendered at every (pitch, velocity) slot,
    ``[n_tables, n_slots, 1024]`` float16; ``batch`` tables a shard on ``executor``
    (:class:`training.executor.Executor`; default: in this process), each shard kept in
    the folder ``store`` where given."""
    from training.executor import Executor, Shard, digest, run_shards

    slots = [(int(p), int(v)) for p, v in slots]
    shards = []
    for i in range(0, len(tables), batch):
        chunk = list(tables[i : i + batch])
        ident = digest("candidates", slots, *[a for t in chunk for a in (np.asarray(t.keys), np.asarray(t.velocities), t.learning_values())])
        shards.append(Shard((chunk, slots), len(chunk) * len(slots), ident))
    run = run_shards(render_shard, shards, store, "candidates", executor or Executor(workers=1), progress=progress)
    if not shards:
        return np.zeros((0, len(slots), 1024), dtype=np.float16)
    return np.concatenate(run.results).astype(np.float16, copy=False)


def target_slots(targets: Sequence[dict]) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The distinct (pitch, velocity) slots of ``targets``, and each target's slot index."""
    slots = sorted({(t["pitch"], t["velocity"]) for t in targets})
    index = {s: j for j, s in enumerate(slots)}
    return slots, np.array([index[(t["pitch"], t["velocity"])] for t in targets], dtype=np.int64)


def target_shard(paths: Sequence[str]) -> np.ndarray:
    """A worker's task: log-mel features ``[n, 1024]`` float32 of the recordings at
    ``paths``."""
    return mel_features(np.stack([load_audio(p) for p in paths]))


def target_features(
    targets: Sequence[dict],
    progress: bool = False,
    executor=None,
    store: str | os.PathLike | None = None,
) -> np.ndarray:
    """Log-mel features ``[n_targets, 1024]`` of the recordings of ``targets``
    (``audio_path``), 64 a shard on ``executor`` (default: in this process), each shard
    kept in the folder ``store`` where given."""
    from training.executor import Executor, Shard, digest, run_shards

    shards = []
    for i in range(0, len(targets), 64):
        paths = [str(t["audio_path"]) for t in targets[i : i + 64]]
        shards.append(Shard((paths,), len(paths), digest("targets", paths)))
    run = run_shards(target_shard, shards, store, "targets", executor or Executor(workers=1), progress=progress)
    if not shards:
        return np.zeros((0, 1024), dtype=np.float32)
    return np.concatenate(run.results).astype(np.float32, copy=False)


def note_distances(cand: np.ndarray, slot_of: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The log-mel L1 ``[n_candidates, n_targets]`` of each candidate's render at a
    target's slot (``cand [n_candidates, n_slots, 1024]``) to that target's features."""
    import torch

    out = np.zeros((cand.shape[0], target.shape[0]), dtype=np.float32)
    for s in np.unique(slot_of):
        rows = np.flatnonzero(slot_of == s)
        a = torch.from_numpy(cand[:, s].astype(np.float32))
        b = torch.from_numpy(target[rows].astype(np.float32))
        out[:, rows] = (torch.cdist(a, b, p=1) / a.shape[1]).numpy()
    return out


def _distances(per_note: np.ndarray, inst_of: np.ndarray, n_inst: int) -> np.ndarray:
    """Each candidate's mean of ``per_note`` distances over each instrument's targets."""
    total = np.zeros((per_note.shape[0], n_inst), dtype=np.float64)
    np.add.at(total.T, inst_of, per_note.T)
    count = np.bincount(inst_of, minlength=n_inst).astype(np.float64)
    return (total / np.maximum(count, 1)).astype(np.float32)


def build_library(
    manifest: str | os.PathLike,
    encoder,
    nsynth_root: str | os.PathLike | None = None,
    exclude: Sequence[str] = (),
    per_instrument: int = 24,
    params=None,
    progress: bool = True,
    seed: int = 0,
    executor=None,
    store: str | os.PathLike | None = None,
):
    """The :class:`model.library.SoundLibrary` of a dataset (see the module's docstring).

    The targets' features and the candidates' renders run in shards on ``executor``
    (:class:`training.executor.Executor`; default: in this process), each shard kept in
    the folder ``store`` where given (a rerun redoes none that is there).

    ``encoder``: a :class:`model.TextEncoder` (the checkpoint's). ``nsynth_root``: where
    the dataset's NSynth notes came from (their targets are every note at the slot
    pitches); without it, an NSynth instrument's targets are its labelled notes.
    """
    from model.library import LibraryParams, SoundLibrary, instrument_titles
    from training.manifest import cached_embeddings

    manifest = Path(manifest)
    records = [r for r in read_manifest(manifest) if r["instrument"] not in set(exclude)]
    by_inst: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_inst[r["instrument"]].append(r)
    instruments = sorted(by_inst)
    index = {k: i for i, k in enumerate(instruments)}
    real = np.array([by_inst[k][0]["dataset"] == "nsynth" for k in instruments])
    family = np.array([by_inst[k][0]["family"] for k in instruments])

    # Candidates: one table per instrument.
    tables = [instrument_table(by_inst[k]) for k in instruments]

    # Targets.
    targets: list[dict] = []
    real_insts = [k for k, r in zip(instruments, real) if r]
    if nsynth_root is not None and real_insts:
        targets += nsynth_targets(nsynth_root, real_insts, per_instrument, seed=seed)
    covered = {t["instrument"] for t in targets}
    for k in instruments:
        if k not in covered:
            recs = by_inst[k][:per_instrument]
            targets += [
                {"instrument": k, "pitch": r["pitch"], "velocity": r["velocity"],
                 "audio_path": r["audio_path"]}
                for r in recs
            ]
    slots, slot_of = target_slots(targets)
    feats = target_features(targets, progress=progress, executor=executor, store=store)
    inst_of = np.array([index[t["instrument"]] for t in targets])
    cand = render_features(tables, slots, progress=progress, executor=executor, store=store)
    distance = _distances(note_distances(cand, slot_of, feats), inst_of, len(instruments))

    # Captions.
    caps_of = {k: sorted({c for r in by_inst[k] for c in r["captions"]}) for k in instruments}
    texts = sorted({c for cs in caps_of.values() for c in cs})
    emb = cached_embeddings(texts, encoder, manifest.parent / f"embeddings-{encoder.name}.npz")
    row_of = {t: i for i, t in enumerate(texts)}
    cap_rows, cap_inst = [], []
    for i, k in enumerate(instruments):
        for c in caps_of[k]:
            cap_rows.append(row_of[c])
            cap_inst.append(i)
    captions = emb[np.array(cap_rows)]
    captions = captions / np.maximum(np.linalg.norm(captions, axis=1, keepdims=True), 1e-12)

    keys_n = max(len(t.keys) for t in tables)
    keys = -np.ones((len(tables), keys_n), dtype=np.int16)
    values = np.zeros((len(tables), keys_n, len(TIMBRE_NAMES)), dtype=np.float32)
    for i, t in enumerate(tables):
        keys[i, : len(t.keys)] = t.keys
        values[i, : len(t.keys)] = t.learning_values()[:, 0, :]
    return SoundLibrary(
        keys, values, np.array(instruments), distance, np.array(instruments), real, family,
        captions, np.array(cap_inst), np.array([texts[r] for r in cap_rows]),
        params or LibraryParams(),
        np.array(instrument_titles(instruments, [by_inst[k][0].get("name") for k in instruments])),
    ), {"targets": len(targets), "slots": len(slots), "candidates": len(tables),
        "instruments": len(instruments), "real_instruments": int(real.sum())}
