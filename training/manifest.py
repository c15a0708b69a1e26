"""Dataset manifests (JSONL, one note per line) and the per-encoder embedding cache.

A line holds the note's metadata (:class:`training.notes.Note` fields), ``captions``,
``theta`` (the extracted 10-value theta dict), ``distance`` (spectral distance of its
render to the note), and the seed-style and heuristic labels with their distances.
Audio paths are stored relative to the manifest's folder when inside it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from engine import SCHEMA_VERSION, Theta, ThetaError, upgrade_theta_dict
from training.notes import Note

__all__ = ["write_manifest", "read_manifest", "manifest_thetas", "manifest_timbres", "cached_embeddings"]


def write_manifest(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write ``records`` (dicts) to ``path`` as JSONL; returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    n = 0
    with open(path, "w") as f:
        for rec in records:
            rec = dict(rec)
            ap = Path(rec["audio_path"]).resolve()
            # Inside the dataset folder: relative (the folder can move); else absolute.
            rec["audio_path"] = str(ap.relative_to(base) if ap.is_relative_to(base) else ap)
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            n += 1
    return n


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Records of a JSONL manifest, audio paths made absolute; each theta is validated."""
    path = Path(path)
    out = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON: {exc}") from exc
            for key in ("note_id", "audio_path", "captions", "theta"):
                if key not in rec:
                    raise ValueError(f"{path}:{lineno}: missing field {key!r}")
            # A record's theta is of its own schema version (1 when it does not say):
            # brought to this one, every parameter present.
            try:
                theta = upgrade_theta_dict(rec["theta"], rec.get("schema_version", 1))
                rec["theta"] = Theta.from_dict(theta, strict=rec.get("schema_version", 1) == SCHEMA_VERSION).to_dict()
            except ThetaError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from exc
            ap = Path(rec["audio_path"])
            if not ap.is_absolute():
                rec["audio_path"] = str(path.parent / ap)
            out.append(rec)
    return out


def manifest_note(rec: dict) -> Note:
    return Note.from_dict(rec)


def manifest_thetas(records: Sequence[dict]) -> np.ndarray:
    """Theta of each record in schema order, ``[n, len(PARAM_NAMES)]`` float64."""
    # Missing names (a record of theta schema 1) take their defaults.
    return np.array([Theta.from_dict(r["theta"]).to_array() for r in records], dtype=np.float64)


def manifest_timbres(records: Sequence[dict]) -> np.ndarray:
    """The timbre values of each record's theta, ``[n, len(TIMBRE_NAMES)]`` float64."""
    return np.array([Theta.from_dict(r["theta"]).timbre() for r in records], dtype=np.float64)


def cached_embeddings(texts: Sequence[str], encoder, cache_path: str | os.PathLike) -> np.ndarray:
    """Embeddings ``[len(texts), dim]`` of ``texts`` by ``encoder`` (a model TextEncoder),
    reading and extending an ``.npz`` cache keyed by text (one cache file per encoder)."""
    cache_path = Path(cache_path)
    cache: dict[str, np.ndarray] = {}
    if cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as z:
            if str(z["encoder"]) == _encoder_key(encoder):
                cache = dict(zip(z["texts"].tolist(), z["emb"]))
    missing = sorted({t for t in texts if t not in cache})
    if missing:
        emb = encoder.encode(missing)
        cache.update(zip(missing, emb))
        keys = sorted(cache)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache_path,
            texts=np.array(keys),
            emb=np.stack([cache[k] for k in keys]),
            encoder=np.array(_encoder_key(encoder)),
        )
    return np.stack([cache[t] for t in texts]).astype(np.float32)


def _encoder_key(encoder) -> str:
    src = getattr(encoder, "source", "") or ""
    return f"{encoder.name}:{encoder.dim}:{hashlib.sha1(src.encode()).hexdigest()[:12]}"


__all__ += ["manifest_note"]
