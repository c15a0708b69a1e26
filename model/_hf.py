"""Loading Hugging Face transformers models from local files only."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from model.errors import ModelError


def offline_transformers():
    """Import transformers with the hub switched off, so nothing waits on a network.

    HF_HUB_OFFLINE is only set where the user has not set it; with it set, every
    ``from_pretrained`` reads local files or fails at once.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return transformers


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(folder: Path, expected: dict[str, str], what: str) -> None:
    """Raise ModelError unless each file in ``expected`` exists with that sha256."""
    for rel, want in expected.items():
        path = folder / rel
        if not path.is_file():
            raise ModelError(f"{what}: {path} is missing; reinstall the package that provides it")
        got = sha256_file(path)
        if got != want:
            raise ModelError(
                f"{what}: {path} has sha256 {got}, expected {want}; the file is not the "
                "pinned release (corrupt or replaced), so it is not loaded"
            )
