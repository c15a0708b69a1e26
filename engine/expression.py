"""Per-note expression: what pressure, CC 74 and the mod wheel do to the sound, by how much.

The amounts are a patch's (saved in its file beside the key table, ``patches.format``),
not timbre values: the model neither predicts nor reads them. Each is declared once here,
as a theta parameter is (name, unit, range, default, what it does); the engine, OSC
(``/expression/NAME``) and patch files read this table.

A voice's pressure ``p`` is its channel's pressure (MIDI channel pressure, D0) plus its
own (polyphonic key pressure, A0; an OSC id note's ``/note/id/pressure``), at most 1; its
timbre ``t`` is its channel's CC 74 / 127 plus its own (``/note/id/timbre``), at most 1;
``w`` is the channel's mod wheel / 127. Then::

    gain       = 10 ** (pressure_db * p / 20)                (on top of the envelope)
    FM index  += pressure_index * p + timbre_index * t       (the modulator's, brightness)
    vibrato    = wheel_vibrato_cents / 100 * w semitones at vibrato_hz, a sine
    index scale = 1 + wheel_index * w                        (the mod wheel's scale, as before)

Each glides (10 ms, ``engine.voice_layout.SMOOTH_S``) in the voice: a change is heard from
the frame of its event on, without a step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["EXPRESSION", "EXPRESSION_NAMES", "ExpressionAmount", "Expression", "expression_amount"]


@dataclass(frozen=True)
class ExpressionAmount:
    """One expression amount: ``name``, ``unit``, inclusive range, ``default``, ``doc``."""

    name: str
    unit: str
    minimum: float
    maximum: float
    default: float
    doc: str

    def check(self, value: object) -> float:
        """``value`` as float, or ValueError/TypeError naming this amount and its range."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"{self.name} must be a number in range {self.minimum:g}..{self.maximum:g}, "
                f"got {type(value).__name__} {value!r}"
            )
        v = float(value)
        if not math.isfinite(v) or not self.minimum <= v <= self.maximum:
            raise ValueError(f"{self.name} must be in range {self.minimum:g}..{self.maximum:g}, got {v:g}")
        return v


#: Every expression amount, in the order the engine keeps them.
EXPRESSION: tuple[ExpressionAmount, ...] = (
    ExpressionAmount("pressure_db", "dB", 0.0, 24.0, 6.0, "loudness added at full pressure"),
    ExpressionAmount(
        "pressure_index", "FM index", 0.0, 16.0, 2.0, "FM index added at full pressure (brightness)"
    ),
    ExpressionAmount(
        "timbre_index", "FM index", 0.0, 16.0, 3.0,
        "FM index added at CC 74 = 127 or a note's timbre 1 (brightness)",
    ),
    ExpressionAmount(
        "wheel_vibrato_cents", "cents", 0.0, 200.0, 50.0, "vibrato depth at full mod wheel (CC 1)"
    ),
    ExpressionAmount("vibrato_hz", "Hz", 0.1, 20.0, 5.5, "the vibrato's rate"),
    ExpressionAmount(
        "wheel_index", "x", 0.0, 4.0, 1.0,
        "the FM index's scale added at full mod wheel (1: it doubles, as before expression)",
    ),
)
EXPRESSION_NAMES: tuple[str, ...] = tuple(a.name for a in EXPRESSION)
_BY_NAME = {a.name: a for a in EXPRESSION}
#: Each amount's place in the engine's per-channel array.
EXPRESSION_INDEX = {a.name: i for i, a in enumerate(EXPRESSION)}


def expression_amount(name: str) -> ExpressionAmount:
    """The declaration of amount ``name``; ValueError lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown expression amount {name!r}; known: {', '.join(EXPRESSION_NAMES)}") from None


@dataclass(frozen=True)
class Expression:
    """A patch's expression amounts, every one checked; missing ones take their defaults.

    >>> Expression().pressure_db, Expression.from_dict({"pressure_db": 3}).pressure_db
    (6.0, 3.0)
    """

    values: tuple[float, ...] = tuple(a.default for a in EXPRESSION)

    def __post_init__(self) -> None:
        if len(self.values) != len(EXPRESSION):
            raise ValueError(f"an Expression holds {len(EXPRESSION)} amounts ({', '.join(EXPRESSION_NAMES)})")
        object.__setattr__(self, "values", tuple(a.check(v) for a, v in zip(EXPRESSION, self.values)))

    def __getattr__(self, name: str) -> float:
        if name in EXPRESSION_INDEX:
            return self.values[EXPRESSION_INDEX[name]]
        raise AttributeError(name)

    @property
    def is_default(self) -> bool:
        return self.values == tuple(a.default for a in EXPRESSION)

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Expression:
        """From ``{name: value}``; unknown names and bad values raise, naming them."""
        if not isinstance(d, Mapping):
            raise TypeError(f"expression must be an object of amount name -> number, got {type(d).__name__}")
        for k in d:
            expression_amount(k)
        return cls(tuple(_BY_NAME[a.name].check(d.get(a.name, a.default)) for a in EXPRESSION))

    def to_dict(self) -> dict[str, float]:
        return dict(zip(EXPRESSION_NAMES, self.values))

    def replace(self, **changes: float) -> Expression:
        return Expression.from_dict({**self.to_dict(), **changes})
