"""The checkpoint format: safetensors + meta.json, round trip and plain refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from engine import PARAM_NAMES, SCHEMA_VERSION
from model import (
    CheckpointError,
    ConditionalRealNVP,
    Normaliser,
    ThetaNormaliser,
    load_checkpoint,
    read_meta,
    register_encoder,
    save_checkpoint,
)
from model.text_encoder import TextEncoder
from tests.model.conftest import perturb, random_theta


class FakeEncoder(TextEncoder):
    """A cheap deterministic encoder, so these tests need no transformer."""

    name = "fake-test"
    dim = 6

    def _encode(self, texts):
        return np.array([[hash((t, i)) % 97 + 1.0 for i in range(self.dim)] for t in texts])


register_encoder(FakeEncoder.name, FakeEncoder)


@pytest.fixture
def parts():
    enc = FakeEncoder()
    flow = perturb(ConditionalRealNVP(len(PARAM_NAMES), enc.dim, n_layers=3, hidden=16, mixing="lu")).eval()
    emb = enc.encode([f"prompt {i}" for i in range(20)])
    return flow, ThetaNormaliser.fit(random_theta(30)), Normaliser.fit(emb), enc


def test_round_trip(tmp_path, parts):
    flow, tn, en, enc = parts
    folder = save_checkpoint(
        tmp_path / "ck",
        flow,
        tn,
        en,
        enc,
        data={"n": 30},
        metrics={"val_nll": 0.5},
        training={"lr": 3e-4},
    )
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.safetensors"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == "promptsynth.flow" and meta["format_version"] == 2
    assert meta["theta_schema_version"] == SCHEMA_VERSION
    assert meta["theta_names"] == list(PARAM_NAMES)
    assert meta["encoder"]["name"] == "fake-test" and meta["encoder"]["dim"] == 6
    assert meta["flow"]["class"] == "ConditionalRealNVP" and meta["flow"]["mixing"] == "lu"
    assert meta["data"] == {"n": 30} and meta["metrics"] == {"val_nll": 0.5}
    assert meta["training"] == {"lr": 3e-4}
    assert len(meta["weights"]["sha256"]) == 64

    ck = load_checkpoint(folder)
    assert not ck.flow.training
    assert ck.encoder_name == "fake-test" and ck.encoder_dim == 6
    assert np.array_equal(ck.theta_normaliser.mean, tn.mean)
    assert np.array_equal(ck.embedding_normaliser.std, en.std)
    x, c = torch.randn(4, len(PARAM_NAMES)), torch.randn(4, 6)
    with torch.no_grad():
        assert torch.equal(ck.flow(x, c)[0], flow(x, c)[0])


def _edit_meta(folder, **changes):
    path = folder / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


@pytest.fixture
def saved(tmp_path, parts):
    flow, tn, en, enc = parts
    return save_checkpoint(tmp_path / "ck", flow, tn, en, enc)


def test_schema_version_mismatch_is_said_plainly(saved):
    _edit_meta(saved, theta_schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(
        CheckpointError,
        match=rf"theta schema version {SCHEMA_VERSION + 1}, but this promptsynth reads "
        rf"versions 1..{SCHEMA_VERSION}",
    ):
        load_checkpoint(saved)


def test_unknown_encoder_is_said_plainly(saved):
    _edit_meta(saved, encoder={"name": "word2vec", "dim": 6})
    with pytest.raises(CheckpointError, match=r"needs text encoder 'word2vec'.*known: .*minilm"):
        load_checkpoint(saved)


def test_encoder_size_mismatch(saved):
    _edit_meta(saved, encoder={"name": "fake-test", "dim": 7})
    with pytest.raises(CheckpointError, match="6-d context but encoder 'fake-test' is 7-d"):
        load_checkpoint(saved)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="meta.json is missing"):
        load_checkpoint(tmp_path)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not a promptsynth checkpoint"):
        read_meta(tmp_path)


def test_newer_format_version(saved):
    _edit_meta(saved, format_version=99)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_checkpoint(saved)


def test_weights_that_do_not_match(saved, tmp_path, parts):
    (saved / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_checkpoint(saved)
    # with no hash recorded, the content itself is checked
    meta = json.loads((saved / "meta.json").read_text())
    del meta["weights"]
    (saved / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="does not fit the flow"):
        load_checkpoint(saved)


def test_weights_of_another_flow(tmp_path, parts):
    flow, tn, en, enc = parts
    a = save_checkpoint(tmp_path / "a", flow, tn, en, enc)
    big = ConditionalRealNVP(len(PARAM_NAMES), enc.dim, n_layers=3, hidden=32, mixing="lu")
    b = save_checkpoint(tmp_path / "b", big, tn, en, enc)
    shutil.copy(b / "model.safetensors", a / "model.safetensors")
    _edit_meta(a, weights={})
    with pytest.raises(CheckpointError, match="does not fit the flow"):
        load_checkpoint(a)


def test_save_refuses_mismatched_parts(tmp_path, parts):
    flow, tn, en, enc = parts
    with pytest.raises(CheckpointError, match="embedding normaliser has 3 features"):
        save_checkpoint(tmp_path, flow, tn, Normaliser(np.zeros(3), np.ones(3)), enc)
    with pytest.raises(CheckpointError, match="unknown encoder 'nope'"):
        save_checkpoint(tmp_path, flow, tn, en, "nope")
    with pytest.raises(CheckpointError, match="must be JSON"):
        save_checkpoint(tmp_path, flow, tn, en, enc, metrics={"loss": float("nan")})
    assert not (tmp_path / "model.safetensors").exists()
