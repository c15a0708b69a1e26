"""The registry of text encoders by name.

A checkpoint names the encoder its flow was trained with (``"minilm"``, ``"clap"``);
:func:`get_encoder` builds that encoder (once per process and set of options). The
interface they share is :class:`model.text_encoder.TextEncoder`; the encoders import it
from there, and this registry imports them only when one is built: no import loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from model.errors import ModelError
from model.text_encoder import TextEncoder

__all__ = [
    "TextEncoder",
    "encoder_names",
    "get_encoder",
    "register_encoder",
]


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
