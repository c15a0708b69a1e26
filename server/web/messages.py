"""The page's messages: OSC messages written as JSON, checked on arrival.

A message is one WebSocket text frame, ``{"address": "/prompt", "args": ["a soft flute",
1]}``, exactly the address and arguments an OSC client would send (docs/osc.md); the
host answers in the same form, ``{"address": "/prompt/done", "args": [...]}``. Only the
frame's shape is checked here; its arguments are checked by the address space, the one
place every way in shares.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MessageError", "decode", "encode", "MAX_ARGS", "MAX_ADDRESS_CHARS"]

#: Most arguments in one message (``/spectrum`` takes 33).
MAX_ARGS = 64
#: Longest address.
MAX_ADDRESS_CHARS = 128


class MessageError(ValueError):
    """A frame that is no message; ``address`` is what it named, if anything."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address}: {reason}")
        self.address = address
        self.reason = reason


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a message may carry")


def decode(frame: str | bytes) -> tuple[str, list]:
    """``(address, args)`` of one frame; raises :class:`MessageError` saying what is
    wrong with it."""
    if not isinstance(frame, str):
        raise MessageError("", "send text frames holding JSON, "
                           '{"address": "/status", "args": []}; got a binary frame')
    try:
        msg = json.loads(frame, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise MessageError("", f"cannot parse message as JSON: {str(exc)[:120]}") from None
    if not isinstance(msg, dict):
        raise MessageError("", 'a message must be a JSON object {"address": ..., "args": [...]}, '
                           f"got {type(msg).__name__}")
    address = msg.get("address")
    if not isinstance(address, str) or not address.startswith("/"):
        raise MessageError("", f"address must be a string starting with /, got {_desc(address)}")
    if len(address) > MAX_ADDRESS_CHARS:
        raise MessageError(address[:MAX_ADDRESS_CHARS], f"address must be at most "
                           f"{MAX_ADDRESS_CHARS} characters, got {len(address)}")
    args = msg.get("args", [])
    if not isinstance(args, list):
        raise MessageError(address, f"args must be a list, got {_desc(args)}")
    if len(args) > MAX_ARGS:
        raise MessageError(address, f"at most {MAX_ARGS} args, got {len(args)}")
    for i, a in enumerate(args):
        # OSC's own argument types: strings and numbers (true/false are not numbers here,
        # as in the address space's checks).
        if isinstance(a, bool) or not isinstance(a, (str, int, float)):
            raise MessageError(address, f"argument {i + 1} must be a string or a number, got {_desc(a)}")
    extra = set(msg) - {"address", "args"}
    if extra:
        raise MessageError(address, f"unknown field(s) {', '.join(sorted(extra))[:80]}; "
                           "a message has address and args")
    return address, args


def _value(a: Any) -> Any:
    if isinstance(a, bool):
        return int(a)
    if hasattr(a, "item"):  # a numpy scalar
        a = a.item()
    if isinstance(a, float) and not math.isfinite(a):
        return None
    if isinstance(a, (str, int, float)) or a is None:
        return a
    return str(a)


def encode(address: str, args: tuple | list) -> str:
    """One reply or notice as the page reads it (numbers as JSON numbers, NaN as null)."""
    return json.dumps({"address": address, "args": [_value(a) for a in args]},
                      allow_nan=False, separators=(",", ":"))


def _desc(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'object'} of {len(value)}"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"
