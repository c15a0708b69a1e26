"""Text encoders: one small interface, an in-memory cache, and a registry by name.

A checkpoint names the encoder its flow was trained with (``"minilm"``, ``"clap"``);
:func:`get_encoder` builds that encoder (once per process and set of options).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from model.errors import ModelError, check_prompt

__all__ = [
    "TextEncoder",
    "encoder_names",
    "get_encoder",
    "register_encoder",
]


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
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape ``[len(texts), dim]``, float32, unit rows."""
        if isinstance(texts, str):
            raise ModelError("encode takes a list of texts, got one str; wrap it in a list")
        cleaned = [check_prompt(t) for t in texts]
        out = np.empty((len(cleaned), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, text in enumerate(cleaned):
                row = self._cache.get(text)
                if row is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = row
        if missing:
            todo = list(missing)
            emb = np.asarray(self._encode(todo), dtype=np.float32)
            if emb.shape != (len(todo), self.dim):
                raise ModelError(
                    f"encoder {self.name!r} returned shape {emb.shape}, expected {(len(todo), self.dim)}"
                )
            emb = _unit_rows(emb)
            with self._lock:
                for text, row in zip(todo, emb):
                    row.setflags(write=False)
                    self._cache[text] = row
                    out[missing[text]] = row
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def cache_clear(self) -> None:
        with self._lock:
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


_FACTORIES: dict[str, Callable[..., TextEncoder]] = {}
_INSTANCES: dict[tuple, TextEncoder] = {}
_REGISTRY_LOCK = threading.Lock()


def register_encoder(name: str, factory: Callable[..., TextEncoder]) -> None:
    """Make ``get_encoder(name, **options)`` call ``factory(**options)``."""
    if not isinstance(name, str) or not name:
        raise ModelError(f"encoder name must be a non-empty str, got {name!r}")
    with _REGISTRY_LOCK:
        _FACTORIES[name] = factory
        for key in [k for k in _INSTANCES if k[0] == name]:
            del _INSTANCES[key]


def encoder_names() -> tuple[str, ...]:
    """Names that :func:`get_encoder` accepts."""
    return tuple(sorted(_FACTORIES))


def get_encoder(name: str, **options: object) -> TextEncoder:
    """The encoder registered as ``name``, built once per process and options.

    Options go to the encoder's constructor (e.g. ``path=`` for ``"clap"``).
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ModelError(
            f"unknown text encoder {name!r}; known encoders: {', '.join(encoder_names())}"
        )
    key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
    with _REGISTRY_LOCK:
        enc = _INSTANCES.get(key)
    if enc is None:
        enc = factory(**options)
        with _REGISTRY_LOCK:
            enc = _INSTANCES.setdefault(key, enc)
    return enc


def _minilm(**options: object) -> TextEncoder:
    from model.minilm import MiniLMEncoder

    return MiniLMEncoder(**options)


def _clap(**options: object) -> TextEncoder:
    from model.clap import ClapEncoder

    return ClapEncoder(**options)


register_encoder("minilm", _minilm)
register_encoder("clap", _clap)
