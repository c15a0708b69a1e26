"""The checkpoint format: a folder with ``model.safetensors`` and ``meta.json``.

Weights are safetensors (plain tensors; reading them runs no code, unlike a pickle).
meta.json holds everything else: format and theta schema versions, the encoder's name
and size, the flow's hyper-parameters, both normalisers' statistics, and free-form
summaries of the data, training and metrics. See docs/model.md for every field.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import SCHEMA_VERSION
from model._hf import sha256_file
from model.encoders import encoder_names
from model.errors import CheckpointError
from model.flow import ConditionalRealNVP
from model.normalise import Normaliser, ThetaNormaliser
from model.text_encoder import TextEncoder

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "KEY_FEATURES",
    "key_features",
    "META_FILE",
    "WEIGHTS_FILE",
    "Checkpoint",
    "load_checkpoint",
    "read_meta",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "promptsynth.flow"
#: 2: the flow may model the timbre values alone, conditioned on the text embedding
#: and the note's pitch and velocity (meta ``condition.key_features``).
CHECKPOINT_FORMAT_VERSION = 2
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"
#: Number of note features a key-conditioned flow is given after the embedding.
KEY_FEATURES = 2


def key_features(pitch, velocity) -> np.ndarray:
    """The note features of a key-conditioned flow, ``[n, 2]``: pitch and velocity,
    centred and scaled to about -1..1 over the keyboard's useful range."""
    p = np.atleast_1d(np.asarray(pitch, dtype=np.float64))
    v = np.broadcast_to(np.asarray(velocity, dtype=np.float64), p.shape)
    return np.stack([(p - 60.0) / 24.0, (v - 80.0) / 40.0], axis=-1)


@dataclass
class Checkpoint:
    """A loaded checkpoint: the flow (in eval mode), its normalisers and the metadata."""

    flow: ConditionalRealNVP
    theta_normaliser: ThetaNormaliser
    embedding_normaliser: Normaliser
    encoder_name: str
    encoder_dim: int
    meta: dict[str, Any] = field(default_factory=dict)
    #: Note features after the embedding in the flow's context (0: text alone).
    key_features: int = 0


def save_checkpoint(
    folder: str | Path,
    flow: ConditionalRealNVP,
    theta_normaliser: ThetaNormaliser,
    embedding_normaliser: Normaliser,
    encoder: TextEncoder | str,
    *,
    data: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    key_features: int = 0,
) -> Path:
    """Write ``flow``'s weights (as they are now: pass the EMA copy if training keeps one)
    and the metadata into ``folder`` (created if needed; files replaced atomically).

    ``encoder``: the encoder instance the flow was trained with, or its registry name.
    ``data``, ``training``, ``metrics``: JSON-able summaries stored as given.
    ``key_features``: 0, or KEY_FEATURES for a flow whose context ends with the note's
    :func:`key_features` (it then models the values the theta normaliser names).
    Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    if isinstance(encoder, TextEncoder):
        enc = {"name": encoder.name, "dim": int(encoder.dim), "source": encoder.source}
    else:
        enc = {"name": str(encoder), "dim": int(flow.context_dim) - key_features, "source": ""}
    if enc["name"] not in encoder_names():
        raise CheckpointError(
            f"unknown encoder {enc['name']!r}; known: {', '.join(encoder_names())}"
        )
    if key_features not in (0, KEY_FEATURES):
        raise CheckpointError(f"key_features must be 0 or {KEY_FEATURES}, got {key_features!r}")
    if enc["dim"] + key_features != flow.context_dim:
        raise CheckpointError(
            f"encoder {enc['name']!r} gives {enc['dim']}-d embeddings (+{key_features} note "
            f"features) but the flow takes {flow.context_dim}"
        )
    if theta_normaliser.size != flow.dim:
        raise CheckpointError(
            f"flow has {flow.dim} dims but the theta normaliser {theta_normaliser.size}"
        )
    if embedding_normaliser.size != enc["dim"]:
        raise CheckpointError(
            f"embedding normaliser has {embedding_normaliser.size} features, encoder {enc['dim']}"
        )

    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in flow.state_dict().items()}
    tmp_weights = folder / (WEIGHTS_FILE + ".tmp")
    save_file(weights, str(tmp_weights), metadata={"format": CHECKPOINT_FORMAT})
    meta = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "theta_schema_version": SCHEMA_VERSION,
        "theta_names": list(theta_normaliser.names),
        "condition": {"text": enc["name"], "key_features": int(key_features)},
        "encoder": enc,
        "flow": {"class": type(flow).__name__, **flow.config},
        "theta_normaliser": theta_normaliser.to_dict(),
        "embedding_normaliser": embedding_normaliser.to_dict(),
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(tmp_weights)},
        "data": dict(data or {}),
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    try:
        text = json.dumps(meta, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        tmp_weights.unlink(missing_ok=True)
        raise CheckpointError(
            f"checkpoint metadata must be JSON (finite numbers, str, lists, dicts): {exc}"
        ) from exc
    tmp_meta = folder / (META_FILE + ".tmp")
    tmp_meta.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp_weights, folder / WEIGHTS_FILE)
    os.replace(tmp_meta, folder / META_FILE)
    return folder


def read_meta(folder: str | Path) -> dict[str, Any]:
    """meta.json of a checkpoint folder, checked for format and theta schema version."""
    folder = Path(folder)
    path = folder / META_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{folder} is not a checkpoint: {META_FILE} is missing (a checkpoint is a folder "
            f"with {WEIGHTS_FILE} and {META_FILE})"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a promptsynth checkpoint (format must be {CHECKPOINT_FORMAT!r})"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this promptsynth reads "
            f"1..{CHECKPOINT_FORMAT_VERSION} (upgrade promptsynth for newer ones)"
        )
    schema = meta.get("theta_schema_version")
    if isinstance(schema, bool) or not isinstance(schema, int) or not 1 <= schema <= SCHEMA_VERSION:
        raise CheckpointError(
            f"checkpoint {folder} was trained for theta schema version {schema!r}, but this "
            f"promptsynth reads versions 1..{SCHEMA_VERSION}; upgrade promptsynth, or retrain "
            "it (`promptsynth train`)"
        )
    return meta


def load_checkpoint(folder: str | Path) -> Checkpoint:
    """Read a checkpoint folder; CheckpointError says plainly what does not fit."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    meta = read_meta(folder)
    enc = meta.get("encoder")
    if (
        not isinstance(enc, dict)
        or not isinstance(enc.get("name"), str)
        or not isinstance(enc.get("dim"), int)
    ):
        raise CheckpointError(
            f"{folder}/{META_FILE}: 'encoder' must be {{'name': str, 'dim': int}}, got {enc!r}"
        )
    if enc["name"] not in encoder_names():
        raise CheckpointError(
            f"checkpoint {folder} needs text encoder {enc['name']!r}, which this promptsynth "
            f"does not have (known: {', '.join(encoder_names())})"
        )
    cfg = dict(meta.get("flow") or {})
    cls = cfg.pop("class", None)
    if cls != ConditionalRealNVP.__name__:
        raise CheckpointError(
            f"{folder}: flow class {cls!r} is unknown (known: {ConditionalRealNVP.__name__})"
        )
    try:
        flow = ConditionalRealNVP(**cfg)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}: bad flow hyper-parameters {cfg}: {exc}") from exc
    kf = (meta.get("condition") or {}).get("key_features", 0)
    if kf not in (0, KEY_FEATURES) or isinstance(kf, bool):
        raise CheckpointError(
            f"{folder}: condition.key_features must be 0 or {KEY_FEATURES}, got {kf!r}"
        )
    if flow.context_dim != enc["dim"] + kf:
        raise CheckpointError(
            f"{folder}: flow takes {flow.context_dim}-d context but encoder {enc['name']!r} is "
            f"{enc['dim']}-d (+{kf} note features)"
        )
    theta_norm = ThetaNormaliser.from_dict(meta.get("theta_normaliser") or {})
    if flow.dim != theta_norm.size:
        raise CheckpointError(
            f"{folder}: flow has {flow.dim} dims but the theta normaliser names {theta_norm.size}"
        )
    emb_norm = Normaliser.from_dict(
        meta.get("embedding_normaliser") or {}, size=enc["dim"], what="embedding normaliser"
    )

    wpath = folder / WEIGHTS_FILE
    if not wpath.is_file():
        raise CheckpointError(f"{folder}: {WEIGHTS_FILE} is missing")
    want = (meta.get("weights") or {}).get("sha256")
    if want is not None and sha256_file(wpath) != want:
        raise CheckpointError(
            f"{wpath} does not match the sha256 in {META_FILE}: corrupt or replaced"
        )
    try:
        state = load_file(str(wpath))
        flow.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"{wpath} does not fit the flow in {META_FILE}: {exc}") from exc
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise CheckpointError(f"{wpath} holds NaN or infinite weights")
    flow.eval()
    return Checkpoint(flow, theta_norm, emb_norm, enc["name"], enc["dim"], meta, int(kf))
