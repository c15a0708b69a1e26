"""Reader for NSynth in its official layout: ``examples.json`` + ``audio/<note_str>.wav``.

``.flac`` files (as in ``../shared/data/nsynth-test``) are accepted in place of ``.wav``.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from training.notes import Note

__all__ = ["read_nsynth", "NSYNTH_FAMILIES", "NSYNTH_SOURCES"]

NSYNTH_FAMILIES = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "vocal",
)
NSYNTH_SOURCES = ("acoustic", "electronic", "synthetic")


def _audio_path(root: Path, note_str: str) -> Path | None:
    for ext in (".wav", ".flac"):
        p = root / "audio" / f"{note_str}{ext}"
        if p.exists():
            return p
    return None


def read_nsynth(
    root: str | os.PathLike,
    families: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    per_combo: int | None = None,
    per_instrument: int | None = None,
    seed: int = 0,
) -> list[Note]:
    """Notes of the NSynth folder ``root``, filtered and optionally balanced.

    Args:
        families: keep only these instrument families (None: all).
        sources: keep only these sources, e.g. ("acoustic", "electronic") (None: all).
        per_combo: draw at most this many notes per (family, source), like the seed.
        per_instrument: draw at most this many notes per instrument (applied first).
        seed: the random draw's seed.

    Notes whose audio file is missing are skipped. Order: sorted by note_str.
    """
    root = Path(root).resolve()
    meta_path = root / "examples.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"no examples.json in {root} (expected the official NSynth layout)")
    with open(meta_path) as f:
        meta = json.load(f)
    fams = set(families) if families is not None else None
    srcs = set(sources) if sources is not None else None
    for name, allowed, known in (
        ("family", fams, NSYNTH_FAMILIES),
        ("source", srcs, NSYNTH_SOURCES),
    ):
        bad = sorted(allowed - set(known)) if allowed else []
        if bad:
            raise ValueError(
                f"unknown NSynth {name}(s) {', '.join(bad)}; known: {', '.join(known)}"
            )
    notes = []
    for note_str in sorted(meta):
        e = meta[note_str]
        fam, src = e["instrument_family_str"], e["instrument_source_str"]
        if (fams is not None and fam not in fams) or (srcs is not None and src not in srcs):
            continue
        path = _audio_path(root, note_str)
        if path is None:
            continue
        notes.append(Note(
            note_id=note_str, audio_path=str(path), pitch=int(e["pitch"]),
            velocity=int(e["velocity"]), instrument=e["instrument_str"], family=fam,
            source=src, name=f"{src} {fam}", dataset="nsynth",
            qualities=list(e.get("qualities_str", [])), sample_rate=int(e.get("sample_rate", 16000)),
        ))  # fmt: skip
    rng = random.Random(seed)
    if per_instrument is not None:
        notes = _draw(notes, lambda n: n.instrument, per_instrument, rng)
    if per_combo is not None:
        notes = _draw(notes, lambda n: (n.family, n.source), per_combo, rng)
    return notes


def _draw(notes: list[Note], key, limit: int, rng: random.Random) -> list[Note]:
    groups: dict[object, list[Note]] = defaultdict(list)
    for n in notes:
        groups[key(n)].append(n)
    keep = set()
    for members in groups.values():
        chosen = members if len(members) <= limit else rng.sample(members, limit)
        keep.update(n.note_id for n in chosen)
    return [n for n in notes if n.note_id in keep]
