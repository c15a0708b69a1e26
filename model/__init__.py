"""promptsynth's model: text encoders, the conditional Real-NVP, checkpoints, Predictor.

Names are imported on first use, so ``from model import ModelError, check_prompt``
costs no torch import; ``from model import Predictor`` imports torch, and transformers
is only imported when an encoder is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    # errors and prompt checking (no torch)
    "MAX_PROMPT_CHARS": "model.errors",
    "CheckpointError": "model.errors",
    "ModelError": "model.errors",
    "PromptError": "model.errors",
    "check_prompt": "model.errors",
    # encoders
    "TextEncoder": "model.text_encoder",
    "encoder_names": "model.encoders",
    "get_encoder": "model.encoders",
    "register_encoder": "model.encoders",
    "MiniLMEncoder": "model.minilm",
    "ClapEncoder": "model.clap",
    "CLAP_MODEL_ID": "model.clap",
    # normalisation
    "Normaliser": "model.normalise",
    "ThetaNormaliser": "model.normalise",
    # flow
    "ConditionalRealNVP": "model.flow",
    "MIXINGS": "model.flow",
    "AffineCoupling": "model.coupling",
    "LUMixing": "model.mixing",
    "Permutation": "model.mixing",
    # checkpoints
    "Checkpoint": "model.checkpoint",
    "load_checkpoint": "model.checkpoint",
    "read_meta": "model.checkpoint",
    "save_checkpoint": "model.checkpoint",
    # sound library
    "LIBRARY_FILE": "model.library",
    "LibraryParams": "model.library",
    "SoundLibrary": "model.library",
    # predictor
    "DEFAULT_CHECKPOINT": "model.predictor",
    "Predictor": "model.predictor",
    "Choice": "model.predictor",
}

__all__ = [
    "AffineCoupling",
    "CLAP_MODEL_ID",
    "Checkpoint",
    "CheckpointError",
    "Choice",
    "ClapEncoder",
    "ConditionalRealNVP",
    "DEFAULT_CHECKPOINT",
    "LIBRARY_FILE",
    "LUMixing",
    "LibraryParams",
    "MAX_PROMPT_CHARS",
    "MIXINGS",
    "MiniLMEncoder",
    "ModelError",
    "Normaliser",
    "Permutation",
    "Predictor",
    "PromptError",
    "TextEncoder",
    "SoundLibrary",
    "ThetaNormaliser",
    "check_prompt",
    "encoder_names",
    "get_encoder",
    "load_checkpoint",
    "read_meta",
    "register_encoder",
    "save_checkpoint",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ does this lazily
    from model.checkpoint import Checkpoint, load_checkpoint, read_meta, save_checkpoint
    from model.clap import CLAP_MODEL_ID, ClapEncoder
    from model.coupling import AffineCoupling
    from model.encoders import encoder_names, get_encoder, register_encoder
    from model.errors import (
        MAX_PROMPT_CHARS,
        CheckpointError,
        ModelError,
        PromptError,
        check_prompt,
    )
    from model.flow import MIXINGS, ConditionalRealNVP
    from model.library import LIBRARY_FILE, LibraryParams, SoundLibrary
    from model.minilm import MiniLMEncoder
    from model.mixing import LUMixing, Permutation
    from model.normalise import Normaliser, ThetaNormaliser
    from model.predictor import DEFAULT_CHECKPOINT, Choice, Predictor
    from model.text_encoder import TextEncoder
