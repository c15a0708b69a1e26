"""Shared fixtures for the model tests: small checkpoints built in tmp folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import PARAM_NAMES, PARAMS, TIMBRE_NAMES
from model import (
    ConditionalRealNVP,
    Normaliser,
    TextEncoder,
    ThetaNormaliser,
    get_encoder,
    save_checkpoint,
)
from model.checkpoint import KEY_FEATURES

PROMPTS = [
    "a bright bell",
    "a warm brass pad",
    "a plucked string",
    "a deep sub bass",
    "a reedy organ",
    "a soft flute",
    "a metallic mallet",
    "a distorted lead",
]


def random_theta(n: int, seed: int = 0) -> np.ndarray:
    """Physical theta [n, len(PARAMS)] inside the schema's ranges; sample_rate and
    duration constant."""
    rng = np.random.default_rng(seed)
    lo = np.array([p.minimum for p in PARAMS])
    hi = np.array([p.maximum for p in PARAMS])
    theta = lo + (hi - lo) * rng.uniform(0.0, 0.5, size=(n, len(PARAMS)))
    theta[:, 2] = 16000.0
    theta[:, 3] = 4.0
    return theta


def perturb(flow: ConditionalRealNVP, std: float = 0.05, seed: int = 0) -> ConditionalRealNVP:
    """Give the zero-initialised last conditioner layers random weights, so every
    coupling does something (a fresh flow is the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for coupling in flow.couplings:
            out = coupling.net.out
            out.weight.copy_(torch.randn(out.weight.shape, generator=gen) * std)
            out.bias.copy_(torch.randn(out.bias.shape, generator=gen) * std * 4)
    return flow


def make_checkpoint(
    folder: Path,
    encoder: TextEncoder,
    *,
    n_layers: int = 4,
    hidden: int = 32,
    mixing: str = "permutation",
    seed: int = 0,
    key_tracked: bool = False,
) -> Path:
    """A checkpoint with random weights: over every theta value and conditioned on the
    text alone, or (``key_tracked``) over the timbre values and conditioned on the text
    and the note's pitch and velocity."""
    theta = random_theta(64, seed)
    emb = encoder.encode([f"{p} {i}" for i, p in enumerate(PROMPTS * 8)])
    if key_tracked:
        names = TIMBRE_NAMES
        theta = theta[:, [PARAM_NAMES.index(n) for n in names]]
    else:
        names = PARAM_NAMES
    kf = KEY_FEATURES if key_tracked else 0
    flow = perturb(
        ConditionalRealNVP(
            len(names), encoder.dim + kf, n_layers=n_layers, hidden=hidden, mixing=mixing, seed=seed
        ),
        seed=seed,
    )
    return save_checkpoint(
        folder,
        flow,
        ThetaNormaliser.fit(theta, names),
        Normaliser.fit(emb),
        encoder,
        data={"n_examples": 64, "source": "random test data"},
        metrics={"val_nll": 1.5},
        training={"epochs": 0},
        key_features=kf,
    )


@pytest.fixture(scope="session")
def minilm() -> TextEncoder:
    return get_encoder("minilm")


@pytest.fixture(scope="session")
def minilm_checkpoint(minilm: TextEncoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "minilm", minilm)
