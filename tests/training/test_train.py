"""A tiny training run: checkpoint with EMA weights, reload, predict, evaluate's report."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from engine import TIMBRE_NAMES
from model import TextEncoder, load_checkpoint, register_encoder
from model.checkpoint import KEY_FEATURES
from model.flow import ConditionalRealNVP
from training.manifest import write_manifest
from training.train import TrainConfig, train


class _HashEncoder(TextEncoder):
    """Deterministic 16-d embeddings from a hash: no model download, instant."""

    name = "test-hash"
    dim = 16
    source = "sha256"

    def _encode(self, texts):
        out = []
        for t in texts:
            h = hashlib.sha256(t.encode()).digest()
            out.append(np.frombuffer(h[:16], dtype=np.uint8).astype(np.float32) - 128.0)
        return np.stack(out)


register_encoder("test-hash", lambda **_: _HashEncoder())


def _records(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for fam, ratio in (("guitar", 1.0), ("flute", 3.0), ("organ", 2.0)):
        for k in range(3):
            for i in range(6):
                theta = {
                    "pitch_midi": float(48 + 4 * i),
                    "velocity": 100.0,
                    "sample_rate": 16000.0,
                    "duration_s": 4.0,
                    "attack_s": float(rng.uniform(0.01, 0.1)),
                    "decay_s": 0.3,
                    "sustain": float(rng.uniform(0.2, 0.8)),
                    "release_s": 0.2,
                    "mod_ratio": ratio,
                    "mod_index": float(rng.uniform(0, 3)),
                }
                recs.append(
                    {
                        "note_id": f"{fam}{k}-{i}",
                        "audio_path": str(tmp_path / "x.wav"),
                        "instrument": f"{fam}_{k}",
                        "family": fam,
                        "dataset": "nsynth",
                        "pitch": 48 + 4 * i,
                        "velocity": 100,
                        "source": "acoustic",
                        "name": fam,
                        "qualities": [],
                        "captions": [f"a {fam} note", f"an acoustic {fam} note"],
                        "theta": theta,
                    }
                )
    return recs


@pytest.mark.parametrize("ema", [0.9, 1.0])
def test_tiny_training_run_saves_ema_weights(tmp_path, ema):
    data = tmp_path / "data"
    write_manifest(data / "manifest.jsonl", _records(tmp_path))
    cfg = TrainConfig(
        encoder="test-hash",
        epochs=4,
        batch_size=16,
        hidden=16,
        n_layers=2,
        ema=ema,
        w_nll=0.1,
        seed=1,
    )
    out = tmp_path / "ckpt"
    summary = train(data / "manifest.jsonl", out, cfg, progress=False)
    assert summary["epochs_run"] == 4 and summary["val_notes"] > 0
    for name in ("model.safetensors", "meta.json", "train_log.csv", "curves.png", "split.json"):
        assert (out / name).is_file(), name
    assert (data / "embeddings-test-hash.npz").is_file()  # the embedding cache
    split = json.loads((out / "split.json").read_text())
    assert not set(split["val_instruments"]) & set(split["train_instruments"])
    ckpt = load_checkpoint(out)
    assert ckpt.meta["data"]["val_instruments"] == split["val_instruments"]
    assert ckpt.meta["training"]["config"]["ema"] == ema
    # With decay 1.0 the EMA never leaves the initial weights: saving them proves the EMA
    # copy (not the trained raw weights) is what the checkpoint holds.
    torch.manual_seed(cfg.seed)
    init = ConditionalRealNVP(
        dim=10,  # schema-2 labels: the ten (no third operator, noise band or schema-5 values; never spectra)
        context_dim=16 + KEY_FEATURES,  # the text embedding, then the note's pitch and velocity
        n_layers=2,
        hidden=16,
        n_blocks=2,
        dropout=cfg.dropout,
        seed=cfg.seed,
    ).state_dict()
    saved = ckpt.flow.state_dict()
    same = all(torch.equal(init[k], saved[k]) for k in init)
    assert same == (ema == 1.0)

    from model import Predictor

    pred = Predictor.load(out, warm=False)
    g, f = pred.patch("a guitar note"), pred.patch("a flute note")
    assert g.center()["mod_ratio"] > 0 and f.center()["mod_ratio"] > 0 and len(g.keys) > 1
    assert pred.key_tracked and ckpt.meta["condition"]["key_features"] == KEY_FEATURES
    assert ckpt.meta["theta_names"] == list(TIMBRE_NAMES[:10])
    assert g.center()["op3_index"] == 0.0 and g.center()["op3_peak"] == 0.0  # its default: off


def test_a_flat_training_run_conditions_on_text_alone(tmp_path):
    data = tmp_path / "data"
    write_manifest(data / "manifest.jsonl", _records(tmp_path))
    cfg = TrainConfig(encoder="test-hash", epochs=2, batch_size=16, hidden=16, n_layers=2, key_tracked=False)
    out = tmp_path / "flat"
    train(data / "manifest.jsonl", out, cfg, progress=False)
    from model import Predictor

    pred = Predictor.load(out, warm=False)
    assert not pred.key_tracked and pred.checkpoint.flow.context_dim == 16
    assert pred.patch("a guitar note").is_flat
