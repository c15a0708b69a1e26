"""The checked event API shared by the engine and the live host's proxy of it.

Any thread may call these methods: each checks its arguments (errors name the argument,
its range and the value) and pushes one event onto ``self.queue``, a preallocated
:class:`engine.events.EventQueue` (full -> ``QueueFull``, never a block). Where the
queue is read is the subclass's business: :class:`engine.Engine` renders in the same
process; the live host's engine renders in a process of its own.
"""

from __future__ import annotations

import threading

import numpy as np

from engine.checks import _check_float, _check_frame, _check_int
from engine.effect_events import FX, SEND, EffectEvents
from engine.events import EventQueue, QueueFull
from engine.expression import EXPRESSION_INDEX, Expression, expression_amount
from engine.keytable import KeyTable
from engine.schema import (
    DB_FLOOR,
    HELD_NAMES,
    N_HARMONICS,
    ONSET_NAMES,
    TIMBRE_INDEX,
    TIMBRE_NAMES,
    ThetaError,
    param,
)
from engine.tuning import NOTE_RANGE

__all__ = [
    "CC",
    "FX",
    "SEND",
    "EventSender",
    "LocalSender",
    "N_CHANNELS",
    "NOTE_ID_MAX",
    "QueueFull",
    "SPECTRUM_NAMES",
    "VELOCITY_CURVES",
    "check_spectrum",
    "velocity_exponent",
]

N_CHANNELS = 16

# Event kinds.
(
    NOTE_ON, NOTE_OFF, CONTROL, BEND, PATCH, PARAM, PANIC, RESET, CURVE, TUNE_STAGE, TUNE_COMMIT, FNOTE_ON, FNOTE_OFF,
    SPEC_STAGE, SPEC_COMMIT, PRESSURE, POLY_PRESSURE, EXPR, NID_ON, NID_OFF, NID_PITCH, NID_PRESSURE, NID_TIMBRE,
    MPE,
) = range(24)
# The send effects' kinds follow (engine.effect_events): SEND, FX = 24, 25.
#: An MPE member channel's bend range (semitones) until RPN 0 says otherwise.
MPE_BEND_RANGE = 48.0
#: The ids an id note (``note_id_on``) may have: 0..2**24 - 1, every one exact in a
#: float32 (Pd's numbers), so that the id a patch sends is the id its note-off names.
NOTE_ID_MAX = 2**24 - 1
#: How far an id note's pitch may move from where it started (semitones each way).
NOTE_ID_BEND = 96.0
_T = TIMBRE_INDEX
#: The timbre values a spectrum's staging events address by position: the onset
#: spectrum's harmonics 1..32, then the held one's.
SPECTRUM_NAMES: tuple[str, ...] = ONSET_NAMES + HELD_NAMES
#: Producers of one process send a group of events (a tuning, a spectrum) one at a
#: time: two groups never interleave.
_GROUP_LOCK = threading.Lock()


class CC:
    """MIDI controller numbers the engine understands."""

    MOD_WHEEL = 1
    DATA_ENTRY_MSB = 6
    VOLUME = 7
    PAN = 10
    DATA_ENTRY_LSB = 38
    SUSTAIN = 64
    SOSTENUTO = 66
    BRIGHTNESS = 74
    REVERB_SEND = 91
    CHORUS_SEND = 93
    DELAY_SEND = 94
    NRPN_LSB = 98
    NRPN_MSB = 99
    RPN_LSB = 100
    RPN_MSB = 101
    ALL_SOUND_OFF = 120
    RESET_ALL_CONTROLLERS = 121
    ALL_NOTES_OFF = 123


#: Named velocity curves: the exponent of (velocity / 127) that gives a note's loudness.
#: ``soft`` is loud early (a light touch, or a keyboard that "maxes around 100");
#: ``medium`` is the seed's curve, the default; ``hard`` asks for a firm touch.
VELOCITY_CURVES = {"soft": 0.75, "linear": 1.0, "medium": 1.5, "hard": 2.5}
#: The exponents a velocity curve may have.
EXPONENT_RANGE = (0.25, 4.0)


def velocity_exponent(curve: object) -> float:
    """A velocity curve's exponent: a name of :data:`VELOCITY_CURVES` or a number in
    :data:`EXPONENT_RANGE` (a number as text too, as a command line gives it)."""
    lo, hi = EXPONENT_RANGE
    names = ", ".join(VELOCITY_CURVES)
    if isinstance(curve, str) and curve.strip().lower() in VELOCITY_CURVES:
        return VELOCITY_CURVES[curve.strip().lower()]
    try:
        x = float(curve) if not isinstance(curve, bool) else float("nan")
    except (TypeError, ValueError):
        x = float("nan")
    if not lo <= x <= hi:  # NaN too
        raise ValueError(f"velocity curve must be {names} or an exponent in range {lo:g}..{hi:g}, got {curve!r}")
    return x


def _check_hz(hz: object) -> float:
    return _check_float("hz", hz, 8.0, 20000.0)


def check_spectrum(levels: object, what: str = "spectrum") -> np.ndarray:
    """Check one carrier spectrum: ``N_HARMONICS`` (32) levels in dB, harmonic 1 first,
    each a number in range -80..0 (-80: silent). Returns them as float64 ``[32]``.
    Errors start with ``what`` and name the harmonic, the accepted range and the value."""
    lo, hi = DB_FLOOR, 0.0
    accepted = f"{N_HARMONICS} levels in dB (harmonic 1 first), each a number in range {lo:g}..{hi:g}"
    if isinstance(levels, (str, bytes, dict)) or not hasattr(levels, "__len__"):
        raise TypeError(f"{what} must be {accepted}; got {type(levels).__name__}")
    seq = levels.tolist() if isinstance(levels, np.ndarray) else list(levels)
    if len(seq) != N_HARMONICS:
        raise ValueError(f"{what} must be {accepted}; got {len(seq)} values")
    for k, x in enumerate(seq, start=1):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise TypeError(f"{what}: harmonic {k} must be a number in range {lo:g}..{hi:g} (dB), got {x!r}")
        if not lo <= x <= hi:  # NaN too
            raise ValueError(f"{what}: harmonic {k} must be in range {lo:g}..{hi:g} (dB), got {x!r}")
    return np.array(seq, dtype=np.float64)


class EventSender(EffectEvents):
    """The engine's event methods (the send effects' from :class:`EffectEvents`); a
    subclass provides ``self.queue``."""

    queue: EventQueue

    def set_patch(self, channel: int, patch: KeyTable, frame: int | None = None) -> None:
        """Use ``patch`` for new notes on ``channel`` from ``frame`` on: each note takes
        the timbre of its key and velocity (a flat table: the same on every key). Earlier
        ``set_param`` changes of the channel are dropped."""
        ch = _check_int("channel", channel, 0, 15)
        if not isinstance(patch, KeyTable):
            raise TypeError(
                f"patch must be a KeyTable (KeyTable.flat(values) plays one timbre on every "
                f"key), got {type(patch).__name__}"
            )
        self.queue.push(PATCH, ch, _check_frame(frame), obj=patch)

    def set_param(self, channel: int, name: str, value: float, frame: int | None = None) -> None:
        """Change one timbre value of ``channel``'s patch, sounding notes included.

        The value becomes flat across the channel's key table: every key and velocity
        gets it until the next ``set_patch``. Index, ratio, sustain, index_peak,
        noise_level, the third operator's ratio, index and peak and the noise band's
        level, width and centre glide (10 ms);
        attack/decay/release keep the envelope's level; index_decay_s and noise_decay_s
        apply from the note's current time since note-on; op3_layout applies from the
        channel's next note.
        """
        ch = _check_int("channel", channel, 0, 15)
        p = param(name)
        if not p.timbre:
            raise ThetaError(f"{name} is not a timbre parameter; timbre parameters: {', '.join(TIMBRE_NAMES)}")
        v = p.check(value)
        self.queue.push(PARAM, ch, _check_frame(frame), (float(_T[name]), v))

    def note_on(self, channel: int, pitch: int, velocity: int, frame: int | None = None) -> None:
        """Start a note (velocity 0 is a note-off)."""
        ch = _check_int("channel", channel, 0, 15)
        p = _check_int("pitch", pitch, 0, 127)
        v = _check_int("velocity", velocity, 0, 127)
        f = _check_frame(frame)
        if v == 0:
            self.queue.push(NOTE_OFF, ch, f, (p,))
        else:
            self.queue.push(NOTE_ON, ch, f, (p, v))

    def fnote_on(self, channel: int, hz: float, velocity: float, frame: int | None = None) -> None:
        """Start a note at ``hz`` (8..20000), whatever the tuning; its timbre is the
        nearest key's. Velocity 0..127 (0: its note-off)."""
        ch = _check_int("channel", channel, 0, 15)
        f = _check_hz(hz)
        v = _check_float("velocity", velocity, 0.0, 127.0)
        if v == 0.0:
            self.queue.push(FNOTE_OFF, ch, _check_frame(frame), (f,))
        else:
            self.queue.push(FNOTE_ON, ch, _check_frame(frame), (f, v))

    def fnote_off(self, channel: int, hz: float, frame: int | None = None) -> None:
        """End the note at ``hz`` that ``fnote_on`` started on ``channel``."""
        ch = _check_int("channel", channel, 0, 15)
        self.queue.push(FNOTE_OFF, ch, _check_frame(frame), (_check_hz(hz),))

    def note_off(self, channel: int, pitch: int, frame: int | None = None) -> None:
        ch = _check_int("channel", channel, 0, 15)
        p = _check_int("pitch", pitch, 0, 127)
        self.queue.push(NOTE_OFF, ch, _check_frame(frame), (p,))

    def control_change(self, channel: int, control: int, value: int, frame: int | None = None) -> None:
        ch = _check_int("channel", channel, 0, 15)
        c = _check_int("control", control, 0, 127)
        v = _check_int("value", value, 0, 127)
        self.queue.push(CONTROL, ch, _check_frame(frame), (c, v))
        self._note_send_cc(ch, c, v)

    def pitch_bend(self, channel: int, value: int, frame: int | None = None) -> None:
        """Bend ``channel`` by value in -8192..8191 (0 = centre), scaled by its bend range."""
        ch = _check_int("channel", channel, 0, 15)
        v = _check_int("value", value, -8192, 8191)
        self.queue.push(BEND, ch, _check_frame(frame), (v,))

    def all_notes_off(self, channel: int | None = None, frame: int | None = None) -> None:
        for ch in range(N_CHANNELS) if channel is None else (channel,):
            self.control_change(ch, CC.ALL_NOTES_OFF, 0, frame)

    def reset_channels(self, channels, frame: int | None = None) -> None:
        """All sound off and reset all controllers on each of ``channels`` (0..15), as
        one event: what a MIDI System Reset asks of the channels an input played. Their
        effect sends return to 0 and the effects' tails stop (``engine.effects``)."""
        mask = 0
        chans = []
        for c in channels:
            chans.append(_check_int("channel", c, 0, 15))
            mask |= 1 << chans[-1]
        if mask:
            self.queue.push(RESET, 0, _check_frame(frame), (float(mask),))
            self._note_reset(chans)

    def set_velocity_curve(self, curve: str | float, frame: int | None = None) -> None:
        """Loudness from velocity for notes from ``frame`` on, on every channel:
        (velocity / 127) ** exponent, the exponent named (:data:`VELOCITY_CURVES`) or
        given. A patch's velocity layers still choose the timbre by the velocity itself."""
        self.queue.push(CURVE, 0, _check_frame(frame), (velocity_exponent(curve),))

    def set_tuning(self, notes, frame: int | None = None) -> None:
        """Play key k at the (fractional) MIDI note ``notes[k]`` from ``frame`` on, every
        channel, sounding notes included (NaN: key k sounds nothing); 128 values
        (``engine.tuning.Tuning.notes``; ``EQUAL``: twelve-tone equal temperament).

        The table travels as 64 staging events and one that switches to it, so a note
        never meets half a tuning."""
        table = np.asarray(notes, dtype=np.float64)
        if table.shape != (128,):
            raise ValueError(f"a tuning must have 128 notes, one a key, got shape {table.shape}")
        lo, hi = NOTE_RANGE
        ok = np.isnan(table) | ((table >= lo) & (table <= hi))
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"key {k}'s note must be in range {lo:g}..{hi:g} or NaN (unmapped), got {table[k]}")
        self._push_tuning({k: float(x) for k, x in enumerate(table.tolist())}, _check_frame(frame))

    def retune_keys(self, notes: dict[int, float], frame: int | None = None) -> None:
        """Play each key of ``notes`` at its (fractional) MIDI note from ``frame`` on, the
        other keys as they are: a MIDI Tuning Standard single-note tuning change."""
        checked = {}
        for k, x in notes.items():
            key = _check_int("key", k, 0, 127)
            checked[key] = _check_float(f"key {key}'s note", x, *NOTE_RANGE)
        if checked:
            self._push_tuning(checked, _check_frame(frame))

    def _push_tuning(self, notes: dict[int, float], frame: int) -> None:
        # Two keys an event (first key, count, note, note), then the switch.
        keys = sorted(notes)
        with _GROUP_LOCK:
            i = 0
            while i < len(keys):
                k = keys[i]
                pair = i + 1 < len(keys) and keys[i + 1] == k + 1
                vals = (float(k), 2.0, notes[k], notes[k + 1]) if pair else (float(k), 1.0, notes[k])
                self.queue.push(TUNE_STAGE, 0, frame, vals)
                i += 2 if pair else 1
            self.queue.push(TUNE_COMMIT, 0, frame, ())

    def set_spectrum(self, channel: int, held_db, onset_db=None, frame: int | None = None) -> None:
        """Set the carrier's held spectrum of ``channel``'s patch (``held_h1..32``) and,
        where given, its onset spectrum (``onset_h1..32``), sounding notes included
        (they glide to it: their tables are rebuilt and crossfaded over 10 ms).

        Args:
            channel: 0..15.
            held_db: ``[32]`` levels in dB, harmonic 1 first, each in -80..0 (-80: silent);
                None: left as it is (then ``onset_db`` is needed).
            onset_db: ``[32]`` the same for the onset spectrum; None: left as it is.
            frame: when (None: the next block).

        Every value is checked before anything is sent; a bad one raises and changes
        nothing. The values travel as staging events and one that applies them all, as
        ``set_param`` changes (flat across the key table until the next ``set_patch``),
        so a note never meets half a spectrum."""
        ch = _check_int("channel", channel, 0, 15)
        if held_db is None and onset_db is None:
            raise ValueError("set_spectrum needs held_db, onset_db or both (32 levels in dB each)")
        held = None if held_db is None else check_spectrum(held_db, "held spectrum")
        onset = None if onset_db is None else check_spectrum(onset_db, "onset spectrum")
        f = _check_frame(frame)
        # Positions in SPECTRUM_NAMES: 0..31 the onset spectrum, 32..63 the held one.
        if onset is None:
            start, levels = N_HARMONICS, held
        else:
            start, levels = 0, onset if held is None else np.concatenate([onset, held])
        with _GROUP_LOCK:
            # Two levels an event (first position, count, level, level), then the switch.
            # The first event's count is negative (-2): it drops what a group cut short
            # by a full queue staged, so that a later switch never applies it.
            for j in range(0, len(levels), 2):
                count = -2.0 if j == 0 else 2.0
                self.queue.push(SPEC_STAGE, ch, f, (float(start + j), count, float(levels[j]), float(levels[j + 1])))
            self.queue.push(SPEC_COMMIT, ch, f, ())

    # -- expression ----------------------------------------------------------------------

    def channel_pressure(self, channel: int, value: int, frame: int | None = None) -> None:
        """MIDI channel pressure (aftertouch), 0..127: every note of ``channel``
        (``engine.expression``: louder and brighter by the patch's amounts)."""
        ch = _check_int("channel", channel, 0, 15)
        v = _check_int("value", value, 0, 127)
        self.queue.push(PRESSURE, ch, _check_frame(frame), (v / 127.0,))

    def poly_pressure(self, channel: int, pitch: int, value: int, frame: int | None = None) -> None:
        """MIDI polyphonic key pressure, 0..127: the note of ``pitch`` on ``channel`` only."""
        ch = _check_int("channel", channel, 0, 15)
        p = _check_int("pitch", pitch, 0, 127)
        v = _check_int("value", value, 0, 127)
        self.queue.push(POLY_PRESSURE, ch, _check_frame(frame), (float(p), v / 127.0))

    def set_expression(self, channel: int, amounts: Expression | None = None, frame: int | None = None,
                       **changes: float) -> None:
        """Set ``channel``'s expression amounts (``engine.expression``): all of them
        (``amounts``; None: the defaults, unless only ``changes`` are given), or the ones
        named in ``changes`` (``pressure_db=3``), sounding notes included. Every value is
        checked before anything is sent. The sender remembers what it sent
        (:meth:`expression`)."""
        ch = _check_int("channel", channel, 0, 15)
        if amounts is not None and not isinstance(amounts, Expression):
            raise TypeError(f"amounts must be an engine.expression.Expression, got {type(amounts).__name__}")
        checked = {name: expression_amount(name).check(v) for name, v in changes.items()}
        base = amounts if amounts is not None else (Expression() if not changes else self.expression(ch))
        new = base.replace(**checked) if checked else base
        f = _check_frame(frame)
        with _GROUP_LOCK:
            for name, value in new.to_dict().items():
                self.queue.push(EXPR, ch, f, (float(EXPRESSION_INDEX[name]), value))
            self._sent_expression()[ch] = new

    def expression(self, channel: int) -> Expression:
        """The expression amounts last sent for ``channel`` (the defaults if none)."""
        ch = _check_int("channel", channel, 0, 15)
        return self._sent_expression()[ch]

    def _sent_expression(self) -> list[Expression]:
        sent = self.__dict__.get("_expression_sent")
        if sent is None:
            sent = self.__dict__.setdefault("_expression_sent", [Expression()] * N_CHANNELS)
        return sent

    def note_id_on(self, note_id: int, pitch: float, velocity: float, channel: int = 0,
                   frame: int | None = None) -> None:
        """Start a note named by ``note_id`` (0..NOTE_ID_MAX) at ``pitch`` (a fractional
        MIDI note, 0..127, equal-tempered whatever the tuning; the nearest key's timbre)
        and ``velocity`` (0..127; 0: its note-off). An id already sounding restarts."""
        i = _check_int("id", note_id, 0, NOTE_ID_MAX)
        ch = _check_int("channel", channel, 0, 15)
        p = _check_float("pitch", pitch, 0.0, 127.0)
        v = _check_float("velocity", velocity, 0.0, 127.0)
        if v == 0.0:
            self.queue.push(NID_OFF, ch, _check_frame(frame), (float(i),))
        else:
            self.queue.push(NID_ON, ch, _check_frame(frame), (float(i), p, v))

    def note_id_off(self, note_id: int, frame: int | None = None) -> None:
        """End the id note ``note_id`` (its release; none sounding: nothing)."""
        i = _check_int("id", note_id, 0, NOTE_ID_MAX)
        self.queue.push(NID_OFF, 0, _check_frame(frame), (float(i),))

    def note_id_pitch(self, note_id: int, semitones: float, frame: int | None = None) -> None:
        """Move id note ``note_id`` ``semitones`` (-96..96) from the pitch it started at."""
        i = _check_int("id", note_id, 0, NOTE_ID_MAX)
        s = _check_float("semitones", semitones, -NOTE_ID_BEND, NOTE_ID_BEND)
        self.queue.push(NID_PITCH, 0, _check_frame(frame), (float(i), s))

    def note_id_pressure(self, note_id: int, pressure: float, frame: int | None = None) -> None:
        """Id note ``note_id``'s own pressure, 0..1 (as polyphonic key pressure)."""
        i = _check_int("id", note_id, 0, NOTE_ID_MAX)
        self.queue.push(NID_PRESSURE, 0, _check_frame(frame), (float(i), _check_float("pressure", pressure, 0.0, 1.0)))

    def note_id_timbre(self, note_id: int, timbre: float, frame: int | None = None) -> None:
        """Id note ``note_id``'s own timbre, 0..1 (as CC 74 for that note alone)."""
        i = _check_int("id", note_id, 0, NOTE_ID_MAX)
        self.queue.push(NID_TIMBRE, 0, _check_frame(frame), (float(i), _check_float("timbre", timbre, 0.0, 1.0)))

    def set_mpe(self, members: int = 15, frame: int | None = None) -> None:
        """MPE, the lower zone: channel 0 (MIDI channel 1) its master, channels
        1..``members`` its members, each note on a member channel of its own (its bend,
        48 semitones unless RPN 0 says otherwise, pressure and CC 74 act on that note;
        the master's on all); ``members`` 0: MPE off. The MPE Configuration Message
        (RPN 6 on channel 1) does the same."""
        m = _check_int("members", members, 0, 15)
        self.queue.push(MPE, 0, _check_frame(frame), (float(m),))

    def panic(self, frame: int | None = None) -> None:
        """Silence everything (5 ms fades) on every channel and lift every sustain and
        sostenuto pedal, at ``frame`` (None: the next block)."""
        self.queue.push(PANIC, 0, _check_frame(frame), ())



class _LocalPush:
    def __init__(self, queue: EventQueue) -> None:
        self.push = queue.push_local


class LocalSender(EventSender):
    """The checked event API for the render thread itself: each event goes straight into
    ``queue``'s pending table (:meth:`EventQueue.push_local`), for the block about to
    render. Used for MIDI read in JACK's cycle (engine/jackout.py)."""

    def __init__(self, queue: EventQueue) -> None:
        self.queue = _LocalPush(queue)  # type: ignore[assignment]
