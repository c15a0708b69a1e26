"""The synth parameter schema (theta): every parameter declared once.

The model, patch files, training and the engine all read `PARAMS`. A parameter has a
physical unit and range (what the engine renders) and a learning scale (how the model
sees it): ``log`` values are learned as ``log(value + offset)``, ``linear`` as is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "PARAMS",
    "PARAM_NAMES",
    "TIMBRE_NAMES",
    "TIMBRE_INDEX",
    "Param",
    "Theta",
    "ThetaError",
    "param",
    "check_value",
    "upgrade_theta_dict",
    "RATIO_GRID",
    "snap_ratio",
    "STEPPED",
    "op3_layout",
    "GLIDE",
    "RESTART",
    "ENVELOPE_TIME",
    "DECAY_TIME",
    "NEXT_NOTE",
    "SPECTRUM",
    "VOICE_KINDS",
    "N_HARMONICS",
    "DB_FLOOR",
    "ONSET_NAMES",
    "HELD_NAMES",
]

SCHEMA_VERSION = 5
#: Version history: 1 = the seed's 10 parameters; 2 appends index_peak, index_decay_s,
#: noise_level and noise_decay_s; 3 appends a third operator: op3_ratio, op3_index,
#: op3_peak and op3_layout; 4 appends band-pass noise: band_level, band_width and
#: band_centre; 5 appends the carrier's harmonic spectra (onset_h1..onset_h32,
#: held_h1..held_h32, onset_s, darken_db, darken_s) and the envelope's curve
#: (env_curve). Each version's additions default to off (a sine carrier, linear
#: envelope), so an older theta sounds exactly as before.


#: How a timbre value lives in a voice (``Param.voice``). The engine derives from it the
#: voice's fields (named after the parameter: ``op3_ratio``, and ``op3_ratio_tgt`` where
#: there is a target), what a note sets and what a live change (``set_param``, OSC
#: ``/param/NAME``) does to the notes that sound:
#:
#: - ``GLIDE``: the voice's value glides to its target (``NAME_tgt``) over ``SMOOTH_S``;
#:   a note sets the target, a new voice starts at it; a live change sets the target.
#: - ``RESTART``: as ``GLIDE``, but every note, a retrigger too, restarts the value at its
#:   target (the index peaks, the noise level).
#: - ``ENVELOPE_TIME``: a note sets it; a live change keeps the envelope's level where it
#:   is (``VoiceBank.set_time``).
#: - ``DECAY_TIME``: a note sets it; a live change applies from the note's current time
#:   since note-on (which steps the level when a decay is under way).
#: - ``NEXT_NOTE``: a new voice takes it (a ``STEPPED`` value rounded); a retrigger and a
#:   live change leave sounding voices as they are: the channel's next notes take it.
#: - ``SPECTRUM``: a note builds the voice's carrier tables from it (band-limited at the
#:   note's pitch, ``engine.spectrum``); a live change rebuilds the sounding voices'
#:   tables and crossfades to them over ``SMOOTH_S``.
GLIDE, RESTART, ENVELOPE_TIME, DECAY_TIME, NEXT_NOTE, SPECTRUM = (
    "glide",
    "restart",
    "envelope time",
    "decay time",
    "next note",
    "spectrum",
)
VOICE_KINDS: tuple[str, ...] = (GLIDE, RESTART, ENVELOPE_TIME, DECAY_TIME, NEXT_NOTE, SPECTRUM)

#: Harmonics in each of the carrier's spectra (schema 5).
N_HARMONICS = 32
#: A harmonic at or below this level (dB) is silent.
DB_FLOOR = -80.0
#: The onset and held spectra's parameter names, harmonic 1 first.
ONSET_NAMES: tuple[str, ...] = tuple(f"onset_h{k}" for k in range(1, N_HARMONICS + 1))
HELD_NAMES: tuple[str, ...] = tuple(f"held_h{k}" for k in range(1, N_HARMONICS + 1))


class ThetaError(ValueError):
    """A theta value or dict that the schema does not accept."""


@dataclass(frozen=True)
class Param:
    """One synth parameter.

    ``scale`` is the learning transform: ``"log"`` maps v -> log(v + offset),
    ``"linear"`` leaves v as is. ``timbre`` parameters make up a patch; the others
    (pitch, velocity, sample rate, duration) describe one rendered note. ``voice``: how a
    timbre value lives in a voice, one of ``VOICE_KINDS`` (None for the others).
    """

    name: str
    unit: str
    minimum: float
    maximum: float
    default: float
    scale: str
    timbre: bool
    doc: str
    offset: float = 0.0
    voice: str | None = None

    def __post_init__(self) -> None:
        if (self.voice is not None) != self.timbre or (
            self.timbre and self.voice not in VOICE_KINDS
        ):
            raise ValueError(
                f"{self.name}: a timbre parameter needs voice in {VOICE_KINDS}, others none"
            )

    def check(self, value: object) -> float:
        """Return ``value`` as float, or raise ThetaError naming this parameter."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ThetaError(
                f"{self.name} must be a number in range {_fmt(self.minimum)}..{_fmt(self.maximum)}, "
                f"got {type(value).__name__} {value!r}"
            )
        v = float(value)
        if not math.isfinite(v):
            raise ThetaError(
                f"{self.name} must be a finite number in range "
                f"{_fmt(self.minimum)}..{_fmt(self.maximum)}, got {v}"
            )
        if v < self.minimum or v > self.maximum:
            raise ThetaError(
                f"{self.name} must be in range {_fmt(self.minimum)}..{_fmt(self.maximum)}, got {_fmt(v)}"
            )
        return v

    def to_learning(self, value: float | np.ndarray) -> float | np.ndarray:
        if self.scale == "log":
            return np.log(np.asarray(value, dtype=np.float64) + self.offset)
        return np.asarray(value, dtype=np.float64)

    def from_learning(self, value: float | np.ndarray) -> float | np.ndarray:
        if self.scale == "log":
            return np.exp(np.asarray(value, dtype=np.float64)) - self.offset
        return np.asarray(value, dtype=np.float64)


def _fmt(v: float) -> str:
    return f"{v:g}"


def _spectrum_rows(names: tuple[str, ...], what: str) -> tuple[Param, ...]:
    """One row per harmonic of a spectrum: its level in dB; harmonic 1 at 0 dB and the
    others at ``DB_FLOOR`` (silent) by default: a sine, the carrier before schema 5."""
    return tuple(
        Param(
            name,
            "dB",
            DB_FLOOR,
            0.0,
            0.0 if k == 0 else DB_FLOOR,
            "linear",
            True,
            f"Level of harmonic {k + 1} of the carrier's {what} ({_fmt(DB_FLOOR)}: none); the "
            "spectrum is played at the power of a sine, so only the levels' differences count.",
            voice=SPECTRUM,
        )
        for k, name in enumerate(names)
    )


PARAMS: tuple[Param, ...] = (
    Param(
        "pitch_midi",
        "MIDI note",
        0,
        127,
        60,
        "linear",
        False,
        "Pitch of a rendered note; in live play the key played sets it.",
    ),
    Param(
        "velocity",
        "MIDI velocity",
        1,
        127,
        100,
        "linear",
        False,
        "Loudness of a rendered note, amplitude (velocity/127)^1.5; live play uses the key's.",
    ),
    Param(
        "sample_rate",
        "Hz",
        8000,
        192000,
        16000,
        "log",
        False,
        "Sample rate of an offline render; live play uses the audio device's.",
    ),
    Param(
        "duration_s",
        "s",
        0.05,
        60.0,
        4.0,
        "log",
        False,
        "Length of an offline render, release included (note-off at duration - release).",
    ),
    Param(
        "attack_s",
        "s",
        0.0,
        2.0,
        0.01,
        "log",
        True,
        "Time from note-on to full level (linear).",
        offset=1e-3,
        voice=ENVELOPE_TIME,
    ),
    Param(
        "decay_s",
        "s",
        0.0,
        5.0,
        0.3,
        "log",
        True,
        "Time from full level down to the sustain level (linear).",
        offset=1e-3,
        voice=ENVELOPE_TIME,
    ),
    Param(
        "sustain",
        "level 0..1",
        0.0,
        1.0,
        0.7,
        "linear",
        True,
        "Level held while the key is down, as a fraction of full level.",
        voice=GLIDE,
    ),
    Param(
        "release_s",
        "s",
        0.001,
        4.0,
        0.3,
        "log",
        True,
        "Time from note-off to silence (linear).",
        offset=1e-3,
        voice=ENVELOPE_TIME,
    ),
    Param(
        "mod_ratio",
        "modulator/carrier frequency",
        0.25,
        16.0,
        1.0,
        "log",
        True,
        "Modulator frequency as a multiple of the carrier's: sets where the partials lie.",
        voice=GLIDE,
    ),
    Param(
        "mod_index",
        "radians of phase deviation",
        0.0,
        16.0,
        1.0,
        "log",
        True,
        "FM index: how strongly the modulator bends the carrier's phase (brightness).",
        offset=1.0,
        voice=GLIDE,
    ),
    # Schema version 2: appended, so that version-1 vectors are a prefix.
    Param(
        "index_peak",
        "radians",
        0.0,
        16.0,
        0.0,
        "log",
        True,
        "Extra FM index at note-on, falling linearly to 0 over index_decay_s "
        "(brightness that decays, as plucked and struck sounds).",
        offset=1.0,
        voice=RESTART,
    ),
    Param(
        "index_decay_s",
        "s",
        0.001,
        8.0,
        0.3,
        "log",
        True,
        "Time for index_peak to fall to 0.",
        offset=1e-3,
        voice=DECAY_TIME,
    ),
    Param(
        "noise_level",
        "amplitude relative to the tone",
        0.0,
        1.0,
        0.0,
        "log",
        True,
        "White noise added to the tone (breath, bow, hammer), shaped by the amplitude "
        "envelope and its own decay.",
        offset=0.01,
        voice=RESTART,
    ),
    Param(
        "noise_decay_s",
        "s",
        0.001,
        8.0,
        0.2,
        "log",
        True,
        "Time for the noise to fall linearly to 0 from note-on (8 s: about the whole note).",
        offset=1e-3,
        voice=DECAY_TIME,
    ),
    # Schema version 3: a third operator, appended (version-2 vectors are a prefix).
    Param(
        "op3_ratio",
        "operator-3/carrier frequency",
        0.25,
        16.0,
        1.0,
        "log",
        True,
        "Frequency of the third operator as a multiple of the carrier's.",
        voice=GLIDE,
    ),
    Param(
        "op3_index",
        "radians (layout 2: level x 16)",
        0.0,
        16.0,
        0.0,
        "log",
        True,
        "How strongly the third operator acts: its FM index in layouts 0 and 1, 16x its "
        "level as a second carrier in layout 2. 0 (with op3_peak 0): no third operator.",
        offset=1.0,
        voice=GLIDE,
    ),
    Param(
        "op3_peak",
        "radians (layout 2: level x 16)",
        0.0,
        16.0,
        0.0,
        "log",
        True,
        "Extra op3_index at note-on, falling linearly to 0 over index_decay_s.",
        offset=1.0,
        voice=RESTART,
    ),
    Param(
        "op3_layout",
        "0, 1 or 2",
        0.0,
        2.0,
        0.0,
        "linear",
        True,
        "Where the third operator goes (rounded to the nearest): 0 modulates the carrier "
        "beside the modulator, 1 modulates the modulator (a stack), 2 is a second carrier "
        "modulated by the modulator. A live change applies from the next note.",
        voice=NEXT_NOTE,
    ),
    # Schema version 4: band-pass noise, appended (version-3 vectors are a prefix).
    Param(
        "band_level",
        "amplitude relative to the tone",
        0.0,
        2.0,
        0.0,
        "log",
        True,
        "Noise in a band around band_centre x the pitch, band_width x the pitch wide, "
        "shaped by the amplitude envelope alone (breath, bow); beside the white noise. "
        "0: none.",
        offset=0.01,
        voice=GLIDE,
    ),
    Param(
        "band_width",
        "multiple of the pitch",
        0.05,
        4.0,
        0.5,
        "log",
        True,
        "Width of the noise band in Hz, as a multiple of the note's frequency.",
        voice=GLIDE,
    ),
    Param(
        "band_centre",
        "multiple of the pitch",
        0.0,
        8.0,
        1.0,
        "linear",
        True,
        "Centre of the noise band, as a multiple of the note's frequency (0: low-passed "
        "noise, band_width / 2 x the pitch wide, at 1.41x the level).",
        voice=GLIDE,
    ),
    # Schema version 5: the carrier's spectra and the envelope's curve, appended.
    *_spectrum_rows(
        ONSET_NAMES, "onset spectrum (at note-on, crossfading to the held one over onset_s)"
    ),
    *_spectrum_rows(HELD_NAMES, "held spectrum"),
    Param(
        "onset_s",
        "s",
        0.001,
        4.0,
        0.1,
        "log",
        True,
        "Time over which the onset spectrum crossfades (linearly) into the held one.",
        offset=1e-3,
        voice=DECAY_TIME,
    ),
    Param(
        "darken_db",
        "dB per octave of harmonic number",
        0.0,
        48.0,
        0.0,
        "linear",
        True,
        "How much darker the held spectrum becomes by darken_s after note-on: harmonic k "
        "loses darken_db x log2(k) dB (struck and plucked sounds). 0: none.",
        voice=SPECTRUM,
    ),
    Param(
        "darken_s",
        "s",
        0.01,
        20.0,
        1.0,
        "log",
        True,
        "Time from note-on over which the held spectrum crossfades (linearly) into its "
        "darkened self.",
        voice=DECAY_TIME,
    ),
    Param(
        "env_curve",
        "0..1",
        0.0,
        1.0,
        0.0,
        "linear",
        True,
        "Shape of the decay and release: 0 linear in amplitude (the envelope before "
        "schema 5), 1 linear in dB, falling 96 dB over decay_s and release_s (as "
        "SoundFont envelopes), and between the two a mix.",
        voice=NEXT_NOTE,
    ),
)

#: The modulator ratios the grid fit tries and a predicted patch is snapped to: simple
#: ratios give harmonic (or plainly clangorous) spectra, while a ratio a little off one
#: (1.02, say) beats slowly against the carrier, which no real instrument does.
RATIO_GRID: tuple[float, ...] = (
    0.5,
    1.0,
    1.5,
    2.0,
    2.5,
    3.0,
    3.5,
    4.0,
    5.0,
    6.0,
    7.0,
    8.0,
    11.0,
    14.0,
)


def snap_ratio(ratio: float | np.ndarray) -> float | np.ndarray:
    """The nearest ratio of ``RATIO_GRID`` (nearest on a log scale)."""
    r = np.asarray(ratio, dtype=np.float64)
    grid = np.asarray(RATIO_GRID)
    idx = np.argmin(np.abs(np.log(np.maximum(r[..., None], 1e-9) / grid)), axis=-1)
    out = grid[idx]
    return float(out) if np.ndim(ratio) == 0 else out


#: Timbre values that are a choice, not an amount: a table read between anchors or layers,
#: or a morph, takes the nearer end's value (the upper one at the midpoint), never one
#: between (halfway from a parallel third operator, 0, to a second carrier, 2, is not a
#: stack, 1).
STEPPED: tuple[str, ...] = ("op3_layout",)


def op3_layout(value: float | np.ndarray) -> float | np.ndarray:
    """The layout an ``op3_layout`` value plays: rounded to the nearest of 0, 1, 2."""
    if np.ndim(value) == 0:  # a note-on's: plain floats (round() is rint's half-to-even)
        return float(min(max(round(float(value)), 0), 2))
    return np.minimum(np.maximum(np.rint(np.asarray(value, dtype=np.float64)), 0.0), 2.0)


PARAM_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMS)
TIMBRE_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMS if p.timbre)
#: Position of each timbre parameter in a timbre vector (``Theta.timbre()``).
TIMBRE_INDEX: dict[str, int] = {name: i for i, name in enumerate(TIMBRE_NAMES)}
_BY_NAME = {p.name: p for p in PARAMS}


def param(name: str) -> Param:
    """The declaration of parameter ``name``; KeyError lists the known names."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ThetaError(
            f"unknown parameter {name!r}; known parameters: {', '.join(PARAM_NAMES)}"
        ) from None


def check_value(name: str, value: object) -> float:
    """Validate one value from outside (OSC, MIDI, file, CLI) by parameter name."""
    return param(name).check(value)


def upgrade_theta_dict(values: Mapping[str, object], version: int) -> dict[str, object]:
    """Bring a theta dict written with schema ``version`` to SCHEMA_VERSION.

    Version 2 appended index_peak, index_decay_s, noise_level and noise_decay_s, and
    version 3 op3_ratio, op3_index, op3_peak and op3_layout, version 4 band_level,
    band_width and band_centre, and version 5 the spectra and env_curve; an older dict
    needs no change, since missing names take their defaults, which are off (no index
    peak, no noise, no third operator, no noise band, a sine carrier, a linear envelope):
    it sounds exactly as before. A newer version than
    this code knows cannot be read, since its parameters may mean something else.
    """
    if isinstance(version, bool) or not isinstance(version, int):
        raise ThetaError(f"schema_version must be an integer, got {version!r}")
    if version in (1, 2, 3, 4, SCHEMA_VERSION):
        return dict(values)
    if version > SCHEMA_VERSION:
        raise ThetaError(
            f"theta schema version {version} is newer than this promptsynth "
            f"(knows up to {SCHEMA_VERSION}); upgrade promptsynth to read it"
        )
    raise ThetaError(f"theta schema version {version} is unknown (known: 1..{SCHEMA_VERSION})")


class Theta:
    """A validated, immutable set of synth parameters in physical units.

    >>> t = Theta.from_dict({"attack_s": 0.02, "mod_ratio": 2.0})
    >>> t.attack_s, t.mod_ratio, t.sustain
    (0.02, 2.0, 0.7)
    >>> Theta.from_dict({"attack_s": 5.0})
    Traceback (most recent call last):
    ...
    engine.schema.ThetaError: attack_s must be in range 0..2, got 5
    """

    __slots__ = ("_values",)
    schema_version = SCHEMA_VERSION
    names = PARAM_NAMES

    def __init__(self, values: Iterable[float] | None = None) -> None:
        """Values in schema order, each validated; None gives the defaults."""
        if values is None:
            vals = tuple(float(p.default) for p in PARAMS)
        else:
            vals = tuple(values)
            if len(vals) != len(PARAMS):
                raise ThetaError(
                    f"theta needs {len(PARAMS)} values in order {', '.join(PARAM_NAMES)}; got {len(vals)}"
                )
            vals = tuple(p.check(v) for p, v in zip(PARAMS, vals))
        object.__setattr__(self, "_values", vals)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Theta is immutable; use replace()")

    def __getattr__(self, name: str) -> float:
        try:
            idx = PARAM_NAMES.index(name)
        except ValueError:
            raise AttributeError(name) from None
        return self._values[idx]

    def __getitem__(self, name: str) -> float:
        return self._values[PARAM_NAMES.index(param(name).name)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Theta) and other._values == self._values

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={v:g}" for n, v in zip(PARAM_NAMES, self._values))
        return f"Theta({inner})"

    @classmethod
    def from_dict(cls, values: Mapping[str, object], *, strict: bool = False) -> Theta:
        """Build from ``{name: value}``; missing names take their defaults.

        Unknown names are an error. With ``strict``, missing names are an error too.
        """
        if not isinstance(values, Mapping):
            raise ThetaError(
                f"theta must be a mapping of parameter name to number, got {type(values).__name__}"
            )
        unknown = [k for k in values if k not in _BY_NAME]
        if unknown:
            raise ThetaError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(PARAM_NAMES)}"
            )
        if strict:
            missing = [n for n in PARAM_NAMES if n not in values]
            if missing:
                raise ThetaError(f"missing parameter(s): {', '.join(missing)}")
        return cls(values.get(p.name, p.default) for p in PARAMS)

    def to_dict(self) -> dict[str, float]:
        return dict(zip(PARAM_NAMES, self._values))

    def to_array(self) -> np.ndarray:
        """Values in schema order, shape [n_params], float64."""
        return np.array(self._values, dtype=np.float64)

    @classmethod
    def from_array(cls, values: Iterable[float], *, clamp: bool = False) -> Theta:
        """From values in schema order; ``clamp`` puts out-of-range or NaN values in range.

        Clamping is for model outputs (trusted, but unbounded); NaN becomes the default.
        """
        arr = np.asarray(
            list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64
        )
        if arr.shape != (len(PARAMS),):
            raise ThetaError(f"theta array must have shape ({len(PARAMS)},), got {arr.shape}")
        if clamp:
            arr = clamp_array(arr)
        return cls(arr.tolist())

    def replace(self, **changes: object) -> Theta:
        d = self.to_dict()
        for k in changes:
            param(k)
        d.update(changes)
        return Theta.from_dict(d)

    def timbre(self) -> np.ndarray:
        """The timbre values (a patch) in schema order, shape [n_timbre]."""
        return np.array(
            [self._values[PARAM_NAMES.index(n)] for n in TIMBRE_NAMES], dtype=np.float64
        )

    def to_learning(self) -> np.ndarray:
        """All values in learning space (log for log-scaled ones), shape [n_params]."""
        return to_learning(self.to_array())

    @classmethod
    def from_learning(cls, values: np.ndarray) -> Theta:
        """From learning-space values, clamped into range."""
        return cls.from_array(from_learning(np.asarray(values, dtype=np.float64)), clamp=True)


_MIN = np.array([p.minimum for p in PARAMS])
_MAX = np.array([p.maximum for p in PARAMS])
_DEFAULT = np.array([p.default for p in PARAMS])


def clamp_array(values: np.ndarray) -> np.ndarray:
    """Clamp ``[..., n_params]`` physical values into range; NaN -> default."""
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isnan(v), _DEFAULT, v)
    return np.clip(v, _MIN, _MAX)


@dataclass(frozen=True)
class Space:
    """Bounds, defaults and learning transforms of some parameters, as arrays in their
    order: the one table that key tables, the fits and the torch render read.

    ``log[i]``: parameter i is learned as ``log(value + offset[i])``."""

    names: tuple[str, ...]
    minimum: np.ndarray
    maximum: np.ndarray
    default: np.ndarray
    log: np.ndarray
    offset: np.ndarray

    def to_learning(self, values: np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return np.where(self.log, np.log(np.where(self.log, v + self.offset, 1.0)), v)

    def from_learning(self, values: np.ndarray, clamp: bool = True) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        v = np.where(self.log, np.exp(np.where(self.log, x, 0.0)) - self.offset, x)
        return np.clip(v, self.minimum, self.maximum) if clamp else v


def space(names: Iterable[str]) -> Space:
    """The :class:`Space` of the parameters ``names``, in that order."""
    ps = [param(n) for n in names]

    def arr(values, dtype=np.float64):
        a = np.array(values, dtype=dtype)
        a.flags.writeable = False
        return a

    return Space(
        tuple(p.name for p in ps),
        arr([p.minimum for p in ps]),
        arr([p.maximum for p in ps]),
        arr([p.default for p in ps]),
        arr([p.scale == "log" for p in ps], bool),
        arr([p.offset for p in ps]),
    )


def learning_transforms(names: Iterable[str] = PARAM_NAMES):
    """``(to_learning, from_learning)`` for arrays ``[..., len(names)]`` of the parameters
    ``names`` (in that order), vectorised: each parameter's ``Param.to_learning`` /
    ``Param.from_learning``, the transforms precomputed once (cheap enough for the audio
    thread). ``from_learning`` does not clamp."""
    s = space(names)
    return s.to_learning, lambda values: s.from_learning(values, clamp=False)


_TO_LEARNING, _FROM_LEARNING = learning_transforms()


def to_learning(values: np.ndarray) -> np.ndarray:
    """Physical ``[..., n_params]`` -> learning space."""
    return _TO_LEARNING(values)


def from_learning(values: np.ndarray) -> np.ndarray:
    """Learning space ``[..., n_params]`` -> physical values (not clamped)."""
    return _FROM_LEARNING(values)


#: The timbre values' space (a patch's values, schema order).
TIMBRE_SPACE = space(TIMBRE_NAMES)

__all__ += [
    "clamp_array",
    "to_learning",
    "from_learning",
    "learning_transforms",
    "Space",
    "space",
    "TIMBRE_SPACE",
]
