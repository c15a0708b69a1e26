"""The argument checks every event method shares: errors name the argument, the range
accepted and the value (``channel must be in range 0..15, got 16``)."""

from __future__ import annotations

import numpy as np

from engine.events import IMMEDIATE

__all__: list[str] = []


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in range {lo}..{hi}, got {value}")
    return int(value)


def _check_float(name: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not lo <= value <= hi:  # NaN too
        raise ValueError(f"{name} must be in range {lo:g}..{hi:g}, got {value}")
    return float(value)


def _check_frame(frame: object) -> int:
    if frame is None:
        return IMMEDIATE
    if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or frame < 0:
        raise ValueError(f"frame must be a non-negative int or None, got {frame!r}")
    return int(frame)
