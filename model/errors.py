"""The model's errors, and the one check every prompt passes through."""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_PROMPT_CHARS", "CheckpointError", "ModelError", "PromptError", "check_prompt"]

#: Longest accepted prompt, in characters after cleaning. Encoders read at most a few
#: hundred tokens anyway; the limit keeps one request from costing much.
MAX_PROMPT_CHARS = 1000


class ModelError(RuntimeError):
    """Something in the model part failed: weights missing, bad input, bad checkpoint."""


class CheckpointError(ModelError):
    """A checkpoint folder that cannot be read, or that does not fit this code."""


class PromptError(ModelError, ValueError):
    """A prompt that is not a usable text."""


def check_prompt(prompt: object) -> str:
    """Return ``prompt`` cleaned, or raise PromptError saying what is accepted.

    Control characters (Unicode category Cc: newlines, tabs, escapes, NUL) become
    spaces, runs of whitespace become one space and the ends are stripped. The result
    must be non-empty and at most MAX_PROMPT_CHARS characters.

    >>> check_prompt("  warm\\tbrass\\n pad ")
    'warm brass pad'
    """
    if not isinstance(prompt, str):
        raise PromptError(f"prompt must be a str, got {type(prompt).__name__}")
    cleaned = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in prompt)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise PromptError(
            "prompt must contain some text, got only whitespace or control characters"
        )
    if len(cleaned) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"prompt must be at most {MAX_PROMPT_CHARS} characters, got {len(cleaned)}"
        )
    return cleaned
