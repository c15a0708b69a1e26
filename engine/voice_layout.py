"""The voice's state layout, derived from the theta schema, and the constants the voice
and its compiled kernel share.

Every per-voice field is one row of a single float64 array ``[field, voice]``: the
voice's own rows (where and how it plays), then each timbre value's, named after its
parameter, as its schema row's ``voice`` kind says (engine/schema.py). :data:`_S` gives
the rows as the kernel reads them (an IntEnum, which numba compiles to constants).
"""

from __future__ import annotations

import hashlib
import math
from enum import IntEnum

import numpy as np

from engine.schema import (
    DECAY_TIME,
    ENVELOPE_TIME,
    GLIDE,
    PARAMS,
    RESTART,
    SPECTRUM,
    STEPPED,
    TIMBRE_INDEX,
    param,
)

TWO_PI = 2.0 * math.pi
#: Longest stretch rendered in one go (the kernel's scratch rows); longer requests are split.
MAX_CHUNK = 512
#: Time constant of the smoothing of live changes (index, ratio, sustain, gains).
SMOOTH_S = 0.010
#: Entries in the fixed noise table every voice reads.
NOISE_TABLE_SIZE = 65536

#: The third operator's layouts (``op3_layout``, rounded).
LAYOUT_PARALLEL, LAYOUT_STACK, LAYOUT_CARRIER2 = 0.0, 1.0, 2.0

# The voice's own rows of the per-voice state array: where and how it plays (not timbre).
_OWN_FIELDS = (
    "chan",
    "pitch",
    "amp",
    "phase_c",
    "phase_m",
    "inc_c",
    "tau",
    "released",
    "rel_level",
    "rel_t",
    "rel_dur",
    "level",
    "age",
    "held",
    "pedal_held",
    "fading",
    "gain_l",
    "gain_r",
    "gain_l_tgt",
    "gain_r_tgt",
    "mod_scale",
    "t_on",
    "noise_first",
    "sost",
    "note_key",
    "phase_3",
    "band_pos",
    "phase_b",
    # The (fractional) MIDI note it sounds before bend: its key's in the tuning, or a
    # note at any frequency (fnote 1: not a key's, so a new tuning leaves it alone).
    "note",
    "fnote",
    # The harmonic carrier (engine.spectrum): whether it reads tables (0: sine), its slot
    # in VoiceBank.tables, the buffer it reads, the weight of the other buffer (a live
    # change's crossfade), whether its tables await a rebuild, and whether the onset
    # and dark tables differ from the held one.
    "harmonic",
    "tslot",
    "spec_buf",
    "spec_fade",
    "spec_dirty",
    "onset_on",
    "dark_on",
    # Per-note expression (engine.expression): the note's own pressure and timbre (0..1:
    # polyphonic key pressure, an OSC id note's, an MPE member channel's) and pitch offset
    # (semitones); what they and the channel's controllers make of the sound, each
    # gliding to its target over SMOOTH_S: a gain above 1 (``x_boost`` + 1), an FM index
    # added, and the vibrato's depth (semitones), its phase and rate (radians a sample).
    # All 0 in a voice without expression, which then skips that work.
    "n_press",
    "n_timbre",
    "n_bend",
    "x_boost",
    "x_boost_tgt",
    "x_index",
    "x_index_tgt",
    "vib",
    "vib_tgt",
    "vib_phase",
    "vib_inc",
)
_TIMBRE_PARAMS = tuple(p for p in PARAMS if p.timbre)


def _timbre_fields(p) -> tuple[str, ...]:
    """The voice fields of timbre parameter ``p``, named after it: the value, and where
    it glides (``GLIDE``, ``RESTART``) its target ``NAME_tgt``."""
    return (p.name, p.name + "_tgt") if p.voice in (GLIDE, RESTART) else (p.name,)


# Row indices of the per-voice state array: the voice's own, then each timbre value's.
_FIELDS = _OWN_FIELDS + tuple(f for p in _TIMBRE_PARAMS for f in _timbre_fields(p))
_F = {name: i for i, name in enumerate(_FIELDS)}
#: The rows as the kernel reads them: ``st[_S.op3_ratio, v]`` (an IntEnum, which numba
#: compiles to constants).
_S = IntEnum("_S", {name: i for i, name in enumerate(_FIELDS)})


def _note_pairs() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    """What a note's timbre sets, as (state row, timbre column) pairs, from each value's
    ``voice`` kind: every note (a retrigger too) sets the targets, the times and the
    restarting values; a fresh voice also starts its gliding values at their targets and
    takes the next-note values."""
    note, fresh = [], []
    for p in _TIMBRE_PARAMS:
        c = TIMBRE_INDEX[p.name]
        if p.voice == GLIDE:
            note.append((p.name + "_tgt", c))
            fresh.append((p.name, c))
        elif p.voice == RESTART:
            note += [(p.name, c), (p.name + "_tgt", c)]
        elif p.voice in (ENVELOPE_TIME, DECAY_TIME, SPECTRUM):
            note.append((p.name, c))
        else:  # NEXT_NOTE
            fresh.append((p.name, c))
    return tuple(note), tuple(note) + tuple(fresh)


_NOTE_PAIRS, _FRESH_PAIRS = _note_pairs()
_NOTE_FIELDS, _FRESH_FIELDS = (
    (np.array([_F[f] for f, _ in pairs]), np.array([c for _, c in pairs]))
    for pairs in (_NOTE_PAIRS, _FRESH_PAIRS)
)
# A fresh voice plays a stepped value (a choice: the third operator's layout) rounded to
# the nearest whole value in its range: these are its places among _FRESH_PAIRS and bounds.
_STEPPED = tuple(
    (j, param(f).minimum, param(f).maximum) for j, (f, _) in enumerate(_FRESH_PAIRS) if f in STEPPED
)
_STEPPED_AT, _STEPPED_LO, _STEPPED_HI = (
    (np.array(col) for col in zip(*_STEPPED)) if _STEPPED else ((), (), ())
)
# What a live change (``set_param``, OSC /param/NAME) writes, per timbre column: the
# target of a gliding or restarting value, a decay time itself, nothing for a next-note
# value (-1); envelope times go through VoiceBank.set_time.
_LIVE_ROWS = tuple(
    _F[p.name + "_tgt"]
    if p.voice in (GLIDE, RESTART)
    else _F[p.name]
    if p.voice in (DECAY_TIME, SPECTRUM)
    else -1
    for p in _TIMBRE_PARAMS
)
_SPECTRAL = tuple(p.voice == SPECTRUM for p in _TIMBRE_PARAMS)
_ENVELOPE_TIMES = tuple(p.voice == ENVELOPE_TIME for p in _TIMBRE_PARAMS)

# The layout's digest: the kernels' disk cache entries carry it (engine.kernel).
_LAYOUT_DIGEST = hashlib.sha1(" ".join(_FIELDS).encode()).hexdigest()[:12]
