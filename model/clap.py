"""CLAP (``laion/clap-htsat-fused``), the seed's text encoder: 512-d text embeddings.

Only the text tower is loaded (transformers' ``ClapTextModelWithProjection``), from a
local folder or the Hugging Face cache; nothing is downloaded. Weights must be
safetensors (never a pickle).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from model._hf import offline_transformers
from model.errors import ModelError
from model.text_encoder import TextEncoder

__all__ = ["CLAP_MODEL_ID", "ClapEncoder", "clap_folder"]

CLAP_MODEL_ID = "laion/clap-htsat-fused"
#: Environment variable naming a local CLAP folder, used when no ``path`` is given.
CLAP_PATH_ENV = "PROMPTSYNTH_CLAP_PATH"

_HOW_TO_GET = (
    "get the weights on a machine with internet: `hf download {id} --include '*.json' "
    "'*.safetensors' '*.txt'` (or `huggingface-cli download ...`), which fills the Hugging "
    "Face cache; copy that cache (or a folder holding config.json, model.safetensors and the "
    "tokenizer files) here and pass path=FOLDER or set " + CLAP_PATH_ENV
)


def clap_folder(
    path: str | Path | None = None,
    *,
    model_id: str = CLAP_MODEL_ID,
    cache_dir: str | Path | None = None,
) -> Path:
    """The local folder with CLAP's files: ``path``, else $PROMPTSYNTH_CLAP_PATH, else the
    Hugging Face cache (``cache_dir`` or the default one). Raises ModelError at once if none
    holds ``config.json`` and ``model.safetensors``."""
    how = _HOW_TO_GET.format(id=model_id)
    if path is None:
        path = os.environ.get(CLAP_PATH_ENV) or None
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise ModelError(f"CLAP folder {folder} does not exist; {how}")
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from huggingface_hub import snapshot_download

        try:
            folder = Path(
                snapshot_download(
                    model_id,
                    local_files_only=True,
                    cache_dir=None if cache_dir is None else str(cache_dir),
                )
            )
        except Exception as exc:  # LocalEntryNotFoundError and friends: all mean "not here"
            raise ModelError(
                f"CLAP weights ({model_id}) are not in the Hugging Face cache and no folder "
                f"was given; {how}"
            ) from exc
    missing = [f for f in ("config.json", "model.safetensors") if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"CLAP folder {folder} lacks {', '.join(missing)}; {how}")
    return folder


class ClapEncoder(TextEncoder):
    """CLAP's text embedding (text model + projection), L2-normalised, dim from the config.

    ``path``: a folder with config.json, model.safetensors and tokenizer files (a full
    CLAP checkpoint or a text-only one); None looks in $PROMPTSYNTH_CLAP_PATH and then
    the Hugging Face cache for ``model_id``.
    """

    name = "clap"
    dim = 512

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        model_id: str = CLAP_MODEL_ID,
        cache_dir: str | Path | None = None,
        cache_size: int = 4096,
    ) -> None:
        super().__init__(cache_size=cache_size)
        folder = clap_folder(path, model_id=model_id, cache_dir=cache_dir)
        transformers = offline_transformers()
        try:
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True
            )
            self._model = transformers.ClapTextModelWithProjection.from_pretrained(
                str(folder), local_files_only=True, use_safetensors=True
            ).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"could not load CLAP from {folder}: {exc}") from exc
        cfg = self._model.config
        self.dim = int(cfg.projection_dim)
        self.source = f"{model_id} ({folder})" if path is None else str(folder)
        # RoBERTa positions start after the padding index, so two fewer tokens fit.
        limit = int(cfg.max_position_embeddings) - 2
        self._max_tokens = min(limit, int(getattr(self._tokenizer, "model_max_length", limit)))

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=self._max_tokens, return_tensors="pt"
        )
        batch.pop("token_type_ids", None)
        with torch.inference_mode():
            out = self._model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.text_embeds.float().numpy()
