"""The interface every text encoder implements, with its cache of embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model.errors import ModelError, check_prompt
from model.lru import LRUCache

__all__ = ["TextEncoder"]


class TextEncoder:
    """Maps texts to L2-normalised embeddings, shape ``[n_texts, dim]``, float32.

    Subclasses set ``name`` and ``dim`` and implement ``_encode(texts)`` for texts that
    are already checked and not cached. ``encode`` checks each text (see
    :func:`model.errors.check_prompt`), serves repeats from an LRU cache of
    ``cache_size`` entries and normalises the rows.
    """

    name: str = ""
    dim: int = 0
    #: What exactly was loaded (model id, weight hash); recorded in checkpoints.
    source: str = ""

    def __init__(self, cache_size: int = 4096) -> None:
        self._cache: LRUCache[str, np.ndarray] = LRUCache(cache_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape ``[len(texts), dim]``, float32, unit rows."""
        if isinstance(texts, str):
            raise ModelError("encode takes a list of texts, got one str; wrap it in a list")
        cleaned = [check_prompt(t) for t in texts]
        out = np.empty((len(cleaned), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(cleaned):
            row = self._cache.get(text)
            if row is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = row
        if missing:
            todo = list(missing)
            emb = np.asarray(self._encode(todo), dtype=np.float32)
            if emb.shape != (len(todo), self.dim):
                raise ModelError(
                    f"encoder {self.name!r} returned shape {emb.shape}, expected {(len(todo), self.dim)}"
                )
            emb = _unit_rows(emb)
            for text, row in zip(todo, emb):
                row.setflags(write=False)
                self._cache.put(text, row)
                out[missing[text]] = row
        return out

    def cache_clear(self) -> None:
        self._cache.clear()

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Raw embeddings of distinct, checked texts, shape ``[len(texts), dim]``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise ModelError("encoder produced a non-finite embedding")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    if not np.isfinite(x).all():
        raise ModelError("encoder produced a non-finite embedding")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)
