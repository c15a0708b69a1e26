"""Checks for the arguments of one OSC message: every number from outside passes here.

Max and Pd send most numbers as floats, so an int argument also accepts a float with a
whole value (60.0, not 60.5). Channels arrive as 1-16 and leave as 0-15. Each check
raises :class:`ArgError` with the argument's name, the accepted range and the value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ArgError", "Arg", "parse_args", "MAX_TEXT_CHARS"]

#: Longest accepted text argument (prompts, patch names), in characters.
MAX_TEXT_CHARS = 1000


class ArgError(ValueError):
    """An OSC argument of the wrong type, count or range; the message says which."""


@dataclass(frozen=True)
class Arg:
    """One argument: ``kind`` is "int", "float", "str" or "channel" (1-16 -> 0-15).

    ``default`` marks it optional (``None`` = required); bounds are inclusive.
    """

    name: str
    kind: str
    lo: float | None = None
    hi: float | None = None
    default: Any = None

    def accepted(self) -> str:
        if self.kind == "str":
            return "a string"
        if self.kind == "channel":
            return "an int in range 1..16"
        what = "an int" if self.kind == "int" else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{what} in range {_fmt(self.lo)}..{_fmt(self.hi)}"
        if self.lo is not None:
            return f"{what} >= {_fmt(self.lo)}"
        return what

    def check(self, value: object) -> Any:
        if self.kind == "str":
            if not isinstance(value, str):
                raise ArgError(f"{self.name} must be a string, got {_desc(value)}")
            if len(value) > MAX_TEXT_CHARS:
                raise ArgError(
                    f"{self.name} must be at most {MAX_TEXT_CHARS} characters, got {len(value)}"
                )
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ArgError(f"{self.name} must be {self.accepted()}, got {_desc(value)}")
        v = float(value)
        if not math.isfinite(v):
            raise ArgError(f"{self.name} must be {self.accepted()}, got {v}")
        if self.kind in ("int", "channel"):
            if v != math.floor(v):
                raise ArgError(
                    f"{self.name} must be {self.accepted()} (a whole number), got {_fmt(v)}"
                )
            lo, hi = (1, 16) if self.kind == "channel" else (self.lo, self.hi)
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                raise ArgError(f"{self.name} must be {self.accepted()}, got {_fmt(v)}")
            return int(v) - 1 if self.kind == "channel" else int(v)
        if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
            raise ArgError(f"{self.name} must be {self.accepted()}, got {_fmt(v)}")
        return v


def parse_args(spec: Sequence[Arg], args: Sequence[object]) -> list[Any]:
    """Check ``args`` against ``spec``; missing optional ones take their defaults."""
    required = sum(1 for a in spec if a.default is None)
    if not required <= len(args) <= len(spec):
        want = (
            " ".join(f"{a.name}" if a.default is None else f"[{a.name}]" for a in spec)
            or "no arguments"
        )
        raise ArgError(f"takes {want}; got {len(args)} argument(s)")
    out = [a.check(v) for a, v in zip(spec, args)]
    for a in spec[len(args) :]:
        out.append(a.default)
    return out


def _fmt(v: float) -> str:
    # Whole numbers in full (an id's range: 0..16777215, not 0..1.67772e+07).
    if math.isfinite(v) and v == math.floor(v) and abs(v) < 2**53:
        return str(int(v))
    return f"{v:g}"


def _desc(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"a blob of {len(value)} bytes"
    if value is None:
        return "nil"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"
