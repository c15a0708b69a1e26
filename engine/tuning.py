"""Tunings other than twelve-tone equal temperament: Scala scale (.scl) and keyboard
mapping (.kbm) files, read into one table, the (fractional) MIDI note each key sounds.

The engine plays a key ``k`` at ``midi_to_hz(table[k] + bend)``; equal temperament is the
identity table, and with it every note sounds exactly as before. Formats:
https://www.huygens-fokker.org/scala/scl_format.html and the Scala help's ``.kbm``
section. Every error names the file, the line and what was expected there.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["Tuning", "TuningError", "EQUAL", "read_scl", "read_kbm", "N_KEYS", "NOTE_RANGE"]

N_KEYS = 128
#: The (fractional) MIDI notes a key may be tuned to: about 2 Hz to 20 kHz, beyond
#: hearing at both ends.
NOTE_RANGE = (-24.0, 151.0)
#: Most degrees a scale may have (Scala's own files stay far below).
MAX_DEGREES = 1024


class TuningError(ValueError):
    """A .scl or .kbm file that cannot be read; the message names file, line and what
    was expected."""


@dataclass(frozen=True)
class Scale:
    """A Scala scale: its description and its degrees in cents above the 1/1 (the last
    degree is the period, usually the octave)."""

    description: str
    cents: tuple[float, ...]


@dataclass(frozen=True)
class Keymap:
    """A Scala keyboard mapping (``.kbm``)."""

    size: int  # 0: linear mapping, every key the next degree
    first: int
    last: int
    middle: int  # the key of scale degree 0
    reference_key: int
    reference_hz: float
    octave_degree: int  # the degree of the formal octave (0: the scale's last)
    mapping: tuple[int | None, ...]  # degree of each key in a period; None: unmapped

    @classmethod
    def default(cls) -> Keymap:
        """Degree 0 on middle C (key 60) at its equal-tempered 261.63 Hz, every key the
        next degree."""
        return cls(0, 0, 127, 60, 60, 440.0 * 2.0 ** (-9 / 12), 0, ())


def _lines(path: str) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="latin-1") as f:
            text = f.read(1 << 20)
    except OSError as exc:
        raise TuningError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if not line.lstrip().startswith("!")]


def _pitch_cents(path: str, n: int, text: str) -> float:
    word = text.split()[0] if text.split() else ""
    where = f"{path}, line {n}"
    try:
        value = float(word) if "." in word else Fraction(word)
    except (ValueError, ZeroDivisionError):
        raise TuningError(
            f"{where}: expected a pitch (cents with a '.', like 701.955, or a ratio, like 3/2), got {text!r}"
        ) from None
    if isinstance(value, Fraction):
        if value <= 0:
            raise TuningError(f"{where}: a ratio must be positive, got {word!r}")
        c = 1200.0 * math.log2(value)
    else:
        c = value
    if not math.isfinite(c) or abs(c) > 1200.0 * 16:
        raise TuningError(f"{where}: a pitch must be finite and within 16 octaves, got {word!r}")
    return c


def read_scl(path: str | os.PathLike) -> Scale:
    """A Scala scale file, or TuningError naming the file, the line and what it expected."""
    path = os.fspath(path)
    lines = _lines(path)
    if not lines:
        raise TuningError(f"{path}: empty; expected a description line, the number of notes, then the notes")
    description = lines[0][1]
    if len(lines) < 2:
        raise TuningError(f"{path}: ends after the description; expected the number of notes")
    n, text = lines[1]
    try:
        count = int(text.split()[0])
    except (ValueError, IndexError):
        raise TuningError(f"{path}, line {n}: expected the number of notes (an integer), got {text!r}") from None
    if not 1 <= count <= MAX_DEGREES:
        raise TuningError(f"{path}, line {n}: the number of notes must be in range 1..{MAX_DEGREES}, got {count}")
    notes = lines[2:]
    if len(notes) < count:
        raise TuningError(f"{path}: says {count} notes, holds {len(notes)}")
    cents = tuple(_pitch_cents(path, ln, t) for ln, t in notes[:count])
    if cents[-1] <= 0:
        raise TuningError(f"{path}, line {notes[count - 1][0]}: the last note (the period) must be above the 1/1")
    return Scale(description, cents)


def read_kbm(path: str | os.PathLike) -> Keymap:
    """A Scala keyboard mapping file, or TuningError naming the file and line."""
    path = os.fspath(path)
    lines = _lines(path)
    names = ["the map size", "the first MIDI note", "the last MIDI note", "the middle note",
             "the reference note", "the reference frequency in Hz", "the octave degree"]
    values: list[float] = []
    for i, what in enumerate(names):
        if i >= len(lines):
            raise TuningError(f"{path}: ends early; expected {what}")
        n, text = lines[i]
        try:
            x = float(text.split()[0]) if i == 5 else int(text.split()[0])
        except (ValueError, IndexError):
            raise TuningError(f"{path}, line {n}: expected {what}, got {text!r}") from None
        if i in (1, 2, 3, 4) and not 0 <= x <= 127:
            raise TuningError(f"{path}, line {n}: {what} must be in range 0..127, got {x}")
        if i == 5 and not (math.isfinite(x) and 1.0 <= x <= 20000.0):
            raise TuningError(f"{path}, line {n}: {what} must be in range 1..20000, got {x}")
        if i in (0, 6) and not 0 <= x <= MAX_DEGREES:
            raise TuningError(f"{path}, line {n}: {what} must be in range 0..{MAX_DEGREES}, got {x}")
        values.append(x)
    size = int(values[0])
    mapping: list[int | None] = []
    for n, text in lines[7 : 7 + size]:
        word = text.split()[0] if text.split() else ""
        if word.lower() == "x":
            mapping.append(None)
            continue
        try:
            mapping.append(int(word))
        except ValueError:
            raise TuningError(f"{path}, line {n}: expected a scale degree or x, got {text!r}") from None
    if len(mapping) < size:  # Scala: missing entries at the end are unmapped
        mapping += [None] * (size - len(mapping))
    return Keymap(size, int(values[1]), int(values[2]), int(values[3]), int(values[4]), values[5],
                  int(values[6]), tuple(mapping))


@dataclass(frozen=True)
class Tuning:
    """What each MIDI key sounds, as a fractional MIDI note (69.0 = 440 Hz); NaN: the key
    is unmapped and sounds nothing."""

    name: str
    notes: np.ndarray  # [N_KEYS] float64

    @classmethod
    def from_files(cls, scl: str | os.PathLike, kbm: str | os.PathLike | None = None) -> Tuning:
        scale = read_scl(scl)
        keymap = read_kbm(kbm) if kbm is not None else Keymap.default()
        return cls.build(scale, keymap, os.path.basename(os.fspath(scl)))

    @classmethod
    def build(cls, scale: Scale, keymap: Keymap, name: str) -> Tuning:
        degrees = (0.0,) + scale.cents[:-1]
        period = scale.cents[-1]
        n_deg = len(scale.cents)
        size = keymap.size
        if size and any(d is not None and not 0 <= d < 10 * n_deg for d in keymap.mapping):
            raise TuningError(f"{name}: the keyboard mapping names a degree the scale does not have")
        if keymap.octave_degree > n_deg:
            raise TuningError(f"{name}: the keyboard mapping's octave degree {keymap.octave_degree} is beyond "
                              f"the scale's {n_deg} degrees")
        octave = (scale.cents[keymap.octave_degree - 1] if keymap.octave_degree else period) if size else period

        def cents_of(key: int) -> float | None:
            """Cents of ``key`` above the middle key's degree 0."""
            steps = key - keymap.middle
            if not size:  # linear: every key the next degree
                per, deg = divmod(steps, n_deg)
                return per * period + degrees[deg]
            per, idx = divmod(steps, size)
            d = keymap.mapping[idx]
            if d is None:
                return None
            dper, ddeg = divmod(d, n_deg)
            return per * octave + dper * period + degrees[ddeg]

        ref = cents_of(keymap.reference_key)
        if ref is None:
            raise TuningError(f"{name}: the reference key {keymap.reference_key} is unmapped")
        ref_note = 69.0 + 12.0 * math.log2(keymap.reference_hz / 440.0)
        notes = np.full(N_KEYS, np.nan)
        for key in range(keymap.first, keymap.last + 1):
            c = cents_of(key)
            if c is not None:
                notes[key] = ref_note + (c - ref) / 100.0
        # Keys beyond hearing are left unmapped rather than sounding a wrapped pitch.
        notes[(notes < NOTE_RANGE[0]) | (notes > NOTE_RANGE[1])] = np.nan
        return cls(name, notes)


#: Twelve-tone equal temperament: every key its own MIDI note.
EQUAL = Tuning("equal temperament", np.arange(N_KEYS, dtype=np.float64))
