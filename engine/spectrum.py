"""The carrier's harmonic spectra (schema 5): from levels in dB to single-cycle tables.

A voice's carrier reads, instead of a sine, a mix of up to three single-cycle tables
built at its note-on from its timbre:

- the **onset** spectrum (``onset_h1..onset_h32``), which crossfades linearly into
- the **held** spectrum (``held_h1..held_h32``) over ``onset_s`` from note-on, which
  itself crossfades linearly over ``darken_s`` into
- the **dark** spectrum: the held one with harmonic k lowered by ``darken_db * log2(k)``
  dB (struck and plucked sounds darken as they decay)::

    w_on(t) = max(0, 1 - t_on / onset_s)      d(t) = min(1, t_on / darken_s)
    carrier(phi) = w_on T_onset(phi) + (1 - w_on) ((1 - d) T_held(phi) + d T_dark(phi))

A spectrum's levels become amplitudes ``10 ** (dB / 20)`` (0 at or below ``DB_FLOOR``),
scaled to the power of a unit sine (the sum of squares is 1; the dark spectrum keeps the
held one's scale, so it is quieter). A table holds harmonics below ``BAND_LIMIT`` times
the sample rate at the note's frequency, so no key aliases (a bend of up to 1.8
semitones up stays below Nyquist). Each table is ``TABLE_SIZE`` samples of one cycle
plus the first again, held as float32 (half the memory a block reads, so fewer cache
misses), read with linear interpolation: ``phi`` in radians is at
``phi * TABLE_SIZE / 2 pi`` (wrapped). A voice whose spectra are both the default (a
sine) reads ``sin`` as before schema 5, so older patches render bit for bit as they did.

The torch render (``training.torchsynth``) builds the same tables with ``BASIS`` and
reads them the same way.
"""

from __future__ import annotations

import math

import numpy as np

from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES, TIMBRE_INDEX

__all__ = [
    "TABLE_SIZE",
    "BAND_LIMIT",
    "BASIS",
    "N_HARMONICS",
    "amplitudes",
    "dark_gains",
    "band_mask",
    "is_sine",
    "tables",
]

#: Samples in one cycle of a carrier table.
TABLE_SIZE = 1024
#: Harmonics at or above this fraction of the sample rate (at the note's frequency, bend
#: included at note-on) are left out of a voice's tables.
BAND_LIMIT = 0.45
#: ``BASIS[k - 1, n] = sin(2 pi k n / TABLE_SIZE)``, ``[N_HARMONICS, TABLE_SIZE + 1]``:
#: a table is its harmonics' amplitudes times this.
BASIS = np.sin(
    2.0
    * math.pi
    * np.arange(1, N_HARMONICS + 1)[:, None]
    * np.arange(TABLE_SIZE + 1)[None, :]
    / TABLE_SIZE
)
BASIS[:, -1] = BASIS[:, 0]  # exactly the first entry again
BASIS.flags.writeable = False
_LOG2K = np.log2(np.arange(1, N_HARMONICS + 1, dtype=np.float64))
ONSET_COLS = np.array([TIMBRE_INDEX[n] for n in ONSET_NAMES])
HELD_COLS = np.array([TIMBRE_INDEX[n] for n in HELD_NAMES])


def amplitudes(db: np.ndarray) -> np.ndarray:
    """Levels ``[..., N_HARMONICS]`` in dB -> amplitudes at the power of a unit sine (all
    silent: zeros)."""
    d = np.asarray(db, dtype=np.float64)
    a = np.where(d > DB_FLOOR, 10.0 ** (d / 20.0), 0.0)
    power = np.sqrt(np.sum(a * a, axis=-1, keepdims=True))
    return np.where(power > 0.0, a / np.where(power > 0.0, power, 1.0), 0.0)


def dark_gains(darken_db: float | np.ndarray) -> np.ndarray:
    """Each harmonic's gain in the dark spectrum, ``[..., N_HARMONICS]``."""
    return 10.0 ** (-np.asarray(darken_db, dtype=np.float64)[..., None] * _LOG2K / 20.0)


def band_mask(inc_c: float | np.ndarray) -> np.ndarray:
    """Which harmonics a note of carrier phase increment ``inc_c`` (radians a sample)
    keeps: ``[..., N_HARMONICS]`` bool, k * f0 below ``BAND_LIMIT`` times the rate."""
    k = np.arange(1, N_HARMONICS + 1, dtype=np.float64)
    return np.asarray(inc_c, dtype=np.float64)[..., None] * k < 2.0 * math.pi * BAND_LIMIT


def is_sine(timbre: np.ndarray) -> np.ndarray:
    """Whether timbre rows ``[..., n_timbre]`` play the plain sine carrier: both spectra
    harmonic 1 alone (their levels then do not matter)."""
    t = np.asarray(timbre, dtype=np.float64)
    on, held = t[..., ONSET_COLS], t[..., HELD_COLS]
    return (
        (on[..., 0] > DB_FLOOR)
        & (held[..., 0] > DB_FLOOR)
        & np.all(on[..., 1:] <= DB_FLOOR, axis=-1)
        & np.all(held[..., 1:] <= DB_FLOOR, axis=-1)
    )


def tables(timbre: np.ndarray, inc_c: float | np.ndarray) -> np.ndarray:
    """The onset, held and dark tables of timbre rows ``[..., n_timbre]`` at carrier
    increments ``inc_c``: ``[..., 3, TABLE_SIZE + 1]`` (what the engine's voices read;
    for tests and plots, the voices build theirs in place)."""
    t = np.asarray(timbre, dtype=np.float64)
    keep = band_mask(inc_c)
    on = amplitudes(t[..., ONSET_COLS]) * keep
    held = amplitudes(t[..., HELD_COLS]) * keep
    dark = held * dark_gains(t[..., TIMBRE_INDEX["darken_db"]])
    return np.stack([on @ BASIS, held @ BASIS, dark @ BASIS], axis=-2)
