"""What a voice reads besides its own fields: the fixed noise tables (white, and
low-passed for the band), the pitch and loudness curves, and the keys that name a
sounding note (MIDI key, /fnote frequency, OSC id). :mod:`engine.voices` re-exports them.
"""

from __future__ import annotations

import math

import numpy as np

from engine.voice_layout import MAX_CHUNK, NOISE_TABLE_SIZE

__all__ = ["FADE_S", "NOISE", "NOISE_LP", "VELOCITY_EXPONENT", "fnote_key", "id_key", "midi_to_hz",
           "noise_start", "note_key", "velocity_to_amp"]

#: Length of the fade given to a stolen or silenced voice: short, but long enough not to click.
FADE_S = 0.005
#: The noise: uniform in [-1, 1), fixed by its seed so that a render is reproducible
#: (and a re-implementation elsewhere can match it sample for sample).
NOISE = np.random.default_rng(0x5EED).uniform(-1.0, 1.0, NOISE_TABLE_SIZE).astype(np.float32)
NOISE.flags.writeable = False
# Extended by MAX_CHUNK entries so that any voice's chunk is one window, never a wrap.
_NOISE_EXT = np.concatenate([NOISE, NOISE[:MAX_CHUNK]])


def _low_passed(noise: np.ndarray) -> np.ndarray:
    """``noise`` (one period) low-passed to 1/16 cycle per entry, at its RMS, float64,
    extended by its first entry (the interpolation's right neighbour at the end)."""
    spec = np.fft.rfft(np.asarray(noise, dtype=np.float64))
    spec[len(noise) // 16 :] = 0.0
    lp = np.fft.irfft(spec, len(noise))
    lp *= math.sqrt(np.mean(np.asarray(noise, dtype=np.float64) ** 2) / np.mean(lp**2))
    return np.concatenate([lp, lp[:1]])


#: The band noise's table (schema v4): ``NOISE`` low-passed, ``NOISE_TABLE_SIZE + 1``
#: entries (the last is the first again), read between entries at a rate set by the
#: band's width.
NOISE_LP = _low_passed(NOISE)
NOISE_LP.flags.writeable = False
# The kernel's copy, extended by half a period: a chunk's read (at most 64 entries a
# sample, far beyond any audible band, for MAX_CHUNK samples) from any start within the
# period stays within it, with no wrap per sample.
_NOISE_LP_EXT = np.concatenate([NOISE_LP, NOISE_LP[1 : 1 + 64 * MAX_CHUNK]])


def midi_to_hz(note: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency in Hz of a (fractional) MIDI note; A4 = 69 = 440 Hz."""
    if isinstance(note, (int, float)):  # a note-on: plain floats, the same pow()
        return 440.0 * 2.0 ** ((float(note) - 69.0) / 12.0)
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def noise_start(pitch: float) -> int:
    """Where in ``NOISE`` a voice of this (rounded) MIDI pitch starts reading at note-on."""
    return (int(round(pitch)) * 7919) % NOISE_TABLE_SIZE


#: The loudness curve's exponent: the seed's (velocity / 127) ** 1.5, what training's
#: renders and offline renders use; a live player may choose another (``play
#: --velocity-curve``, :data:`engine.sender.VELOCITY_CURVES`).
VELOCITY_EXPONENT = 1.5


def velocity_to_amp(
    velocity: float | np.ndarray, exponent: float = VELOCITY_EXPONENT
) -> float | np.ndarray:
    """The loudness curve: (velocity / 127) ** exponent (the seed's 1.5 by default)."""
    if isinstance(velocity, (int, float)):  # a note-on: plain floats, the same pow()
        return (float(velocity) / 127.0) ** exponent
    return (np.asarray(velocity, dtype=np.float64) / 127.0) ** exponent


def fnote_key(ch: int, hz: float) -> float:
    """The ``note_key`` of a note at ``hz`` on ``ch`` (/fnote): negative, so never a
    key's, and the same for the same frequency to a thousandth of a hertz."""
    return -float(ch * (1 << 25) + int(round(hz * 1000.0)) + 1)


def id_key(note_id: int) -> float:
    """The ``note_key`` of the OSC id note ``note_id`` (0..2**24 - 1, any channel):
    negative and below every ``fnote_key`` (whose magnitude stays under 2**30)."""
    return -float((1 << 34) + int(note_id))


def note_key(ch: int, pitch: int) -> float:
    """What a sounding voice's ``note_key`` field holds: one number per channel and key,
    never 0 (the value of a voice that is fading out, or of no note)."""
    return float(ch * 128 + int(pitch) + 1)
