"""The patch file: versioned JSON, strictly validated, saved atomically.

A patch is a key table (``engine.KeyTable``): the timbre at key anchors and velocity
layers, a flat one for one sound on every key. A patch file (format 4) looks like::

    {
      "format": "promptsynth-patch",
      "format_version": 4,
      "name": "soft-flute",
      "schema_version": 5,
      "keytable": {"keys": [0, 6, ...], "velocities": [32, 64, 96, 127],
                   "values": {"attack_s": [[...], ...], ...},
                   "spectra": {"onset_db": [0, -12.5, ...], "held_db": [[[0, -6, ...], ...], ...]}},
      "prompt": "a soft flute",
      "source": {"checkpoint": "...", "encoder": "minilm", "temperature": 0.0, "seed": null},
      "created": "2026-11-27T06:30:00Z"
    }

A patch whose expression amounts (``engine.expression``: what pressure, CC 74 and the mod
wheel do) are not the defaults is written as format 5: format 4 and a field
``"expression": {"pressure_db": 3, "wheel_vibrato_cents": 20, ...}`` holding the amounts
that differ from their defaults. A patch with the default amounts is written as format 4,
byte for byte as before, so that older promptsynth reads it.

``values`` holds every timbre value but the carrier's spectra, as a ``[key][velocity]``
list per parameter. ``spectra`` holds the two spectra (schema 5: ``onset_h1..32`` and
``held_h1..32``, levels in dB, harmonic 1 first): each is either one list of 32 levels,
the same at every anchor, or a ``[key][velocity]`` list of such lists. A spectrum left
out is the default (a sine: harmonic 1 at 0 dB, the rest at -80 dB, silent).

Older files still load and play as they did: format 3 (``keytable`` with ``values``
only; the values it lacks take their defaults, a sine carrier) and, converted in one
place (:func:`_table_of_old_file`), format 1 (a seed-style ``theta``, schema 1) and
format 2 (``theta`` and an optional ``keytable``), which become the key table they
played: their ``keytable``, or their theta's timbre on every key. The parameters an
older schema lacks take their defaults, which are off.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import (
    SCHEMA_VERSION,
    TIMBRE_INDEX,
    KeyTable,
    Theta,
    ThetaError,
    param,
    upgrade_theta_dict,
)
from engine.expression import EXPRESSION, Expression
from engine.schema import HELD_NAMES, ONSET_NAMES
from engine.sender import check_spectrum

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "EXPRESSION_FORMAT_VERSION",
    "MAX_NAME_LEN",
    "Patch",
    "PatchError",
    "check_name",
    "load_patch",
    "save_patch",
    "morph",
    "save_patch_with_theta",
    "write_atomically",
    "file_mode",
    "table_from_dict",
    "table_to_dict",
    "SPECTRA",
]

FORMAT = "promptsynth-patch"
FORMAT_VERSION = 4
#: The format of a patch whose expression amounts are not the defaults (format 4 and its
#: field ``expression``).
EXPRESSION_FORMAT_VERSION = 5
#: Format versions this code reads: 1 (theta only), 2 (theta, optional key table), 3
#: (the key table), 4 (the key table, its spectra apart) and 5 (4 and the expression).
READ_FORMAT_VERSIONS = (1, 2, 3, 4, 5)
#: A key table's spectra in a file: the name of each and its parameters, harmonic 1 first.
SPECTRA: dict[str, tuple[str, ...]] = {"onset_db": ONSET_NAMES, "held_db": HELD_NAMES}
_SPECTRUM_PARAMS = frozenset(ONSET_NAMES) | frozenset(HELD_NAMES)
MAX_NAME_LEN = 64
MAX_PROMPT_LEN = 1000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+()-]*$")
_SOURCE_KEYS = {
    "checkpoint": str,
    "encoder": str,
    "temperature": (int, float),
    "seed": (int, type(None)),
    # A patch made from recordings (`patch from-audio`): their paths, and the mean
    # spectral distance of the patch's renders to them.
    "audio": list,
    "fit_distance": (int, float),
}
_MAX_SOURCE_AUDIO = 24


class PatchError(ValueError):
    """A patch file, name or field that is not accepted."""


def check_name(name: object) -> str:
    """Validate a patch name: 1..64 characters of letters, digits, space and ``_.+()-``,
    not starting with a dot or a separator, never a path."""
    if not isinstance(name, str):
        raise PatchError(f"patch name must be a string, got {type(name).__name__}")
    n = name.strip()
    if not n:
        raise PatchError("patch name must not be empty")
    if len(n) > MAX_NAME_LEN:
        raise PatchError(f"patch name must be at most {MAX_NAME_LEN} characters, got {len(n)}")
    if "/" in n or "\\" in n or ".." in n or "\x00" in n:
        raise PatchError(f"patch name must not contain '/', '\\' or '..': {name!r}")
    if not _NAME_RE.match(n):
        raise PatchError(
            f"patch name {name!r} may use letters, digits, space and _ . + ( ) - "
            "and must start with a letter or digit"
        )
    return n


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Patch:
    """A named patch: ``table`` is the sound (a :class:`engine.KeyTable`); ``prompt`` and
    ``source`` say where it came from (checkpoint id, encoder, temperature, seed);
    ``expression``: what pressure, CC 74 and the mod wheel do (``engine.expression``)."""

    name: str
    table: KeyTable
    prompt: str | None = None
    source: Mapping[str, object] = field(default_factory=dict)
    created: str = field(default_factory=_utc_now)
    expression: Expression = field(default_factory=Expression)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        if not isinstance(self.table, KeyTable):
            raise PatchError(
                f"table must be a KeyTable (KeyTable.flat(values) for one timbre), got "
                f"{type(self.table).__name__}"
            )
        if not isinstance(self.expression, Expression):
            raise PatchError(f"expression must be an engine.expression.Expression, got {type(self.expression).__name__}")

    def to_dict(self) -> dict:
        d = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "schema_version": SCHEMA_VERSION,
            "keytable": table_to_dict(self.table),
            "created": self.created,
        }
        if self.prompt is not None:
            d["prompt"] = self.prompt
        if self.source:
            d["source"] = dict(self.source)
        if not self.expression.is_default:
            d["format_version"] = EXPRESSION_FORMAT_VERSION
            d["expression"] = {
                a.name: _level(v) for a, v in zip(EXPRESSION, self.expression.values) if v != a.default
            }
        return d

    @classmethod
    def from_dict(cls, d: object, origin: str = "<patch>") -> Patch:
        """Validate a parsed patch file (any format this code reads); errors name
        ``origin`` and the field."""

        def fail(msg: str) -> PatchError:
            return PatchError(f"{origin}: {msg}")

        if not isinstance(d, dict):
            raise fail(f"a patch file must hold a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise fail(f'field "format" must be "{FORMAT}", got {d.get("format")!r}')
        fv = d.get("format_version")
        if fv not in READ_FORMAT_VERSIONS or isinstance(fv, bool) or not isinstance(fv, int):
            raise fail(f'field "format_version" must be 1, 2, 3, 4 or 5, got {fv!r}')
        known = {"format", "format_version", "name", "schema_version", "prompt", "source", "created"}
        known |= {"keytable"} if fv >= 3 else {"theta", "keytable"} if fv == 2 else {"theta"}
        if fv == EXPRESSION_FORMAT_VERSION:
            known.add("expression")
        extra = sorted(set(d) - known)
        if extra:
            raise fail(f"unknown field(s) {', '.join(extra)}; accepted: {', '.join(sorted(known))}")
        try:
            name = check_name(d.get("name"))
        except PatchError as exc:
            raise fail(f'field "name": {exc}') from None
        if fv >= 3:
            sv = d.get("schema_version", SCHEMA_VERSION)
            if isinstance(sv, bool) or not isinstance(sv, int) or sv > SCHEMA_VERSION:
                raise fail(
                    f'field "schema_version" is {sv!r}: newer than this promptsynth (theta schema '
                    f"{SCHEMA_VERSION}); update promptsynth to read it"
                )
            if "keytable" not in d:
                raise fail('field "keytable" is missing')
            table = table_from_dict(d["keytable"], fail, spectra=fv >= 4)
        else:
            table = _table_of_old_file(d, fail)
        prompt = d.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_LEN):
            raise fail(f'field "prompt" must be a string of at most {MAX_PROMPT_LEN} characters')
        source = d.get("source", {})
        if not isinstance(source, dict):
            raise fail('field "source" must be an object')
        for k, v in source.items():
            if k not in _SOURCE_KEYS:
                raise fail(f'field "source.{k}" is unknown; accepted: {", ".join(_SOURCE_KEYS)}')
            if isinstance(v, bool) or not isinstance(v, _SOURCE_KEYS[k]) or (isinstance(v, float) and not math.isfinite(v)):
                raise fail(f'field "source.{k}" has the wrong type: {v!r}')
            if k == "audio" and not (
                len(v) <= _MAX_SOURCE_AUDIO and all(isinstance(a, str) and len(a) <= 4096 for a in v)
            ):
                raise fail(f'field "source.audio" must be a list of at most {_MAX_SOURCE_AUDIO} paths')
        created = d.get("created", "")
        if not isinstance(created, str):
            raise fail('field "created" must be an ISO 8601 string')
        try:
            expression = Expression.from_dict(d.get("expression", {}))
        except (TypeError, ValueError) as exc:
            raise fail(f'field "expression": {exc}') from None
        return cls(name=name, table=table, prompt=prompt, source=source, created=created, expression=expression)


def _table_of_old_file(d: dict, fail) -> KeyTable:
    """What a format-1 or format-2 file played: its key table, or its theta's timbre on
    every key (values a schema-1 theta lacks take their defaults)."""
    theta_d = d.get("theta")
    if not isinstance(theta_d, dict):
        raise fail('field "theta" must be an object of parameter name -> number')
    try:
        theta = Theta.from_dict(upgrade_theta_dict(theta_d, d.get("schema_version")))
    except ThetaError as exc:
        raise fail(f'field "theta": {exc}') from None
    if "keytable" in d:
        # render --dump-json writes its key table as format 4 does.
        kt = d["keytable"]
        return table_from_dict(kt, fail, spectra=isinstance(kt, dict) and "spectra" in kt)
    return KeyTable.flat(theta)


def _level(x: float) -> float | int:
    """A level in dB for a file: 6 significant digits, a whole number without ``.0``."""
    v = float(f"{x:.6g}")
    return int(v) if v.is_integer() else v


def table_to_dict(table: KeyTable) -> dict:
    """A key table as format 4 writes it: ``keys``, ``velocities``, ``values`` (every
    timbre value but the spectra, a ``[key][velocity]`` list each, as format 3) and
    ``spectra``: each spectrum that is not the default (a sine) as one list of 32 levels
    in dB where it is the same at every anchor, else as a ``[key][velocity]`` list of
    them."""
    d = table.to_dict()
    d["values"] = {n: v for n, v in d["values"].items() if n not in _SPECTRUM_PARAMS}
    spectra = {}
    for key, names in SPECTRA.items():
        levels = table.values[:, :, [TIMBRE_INDEX[n] for n in names]]  # [keys, velocities, 32]
        if np.all(levels == [param(n).default for n in names]):
            continue
        if np.all(levels == levels[:1, :1]):
            spectra[key] = [_level(x) for x in levels[0, 0].tolist()]
        else:
            spectra[key] = [[[_level(x) for x in anchor] for anchor in row] for row in levels.tolist()]
    if spectra:
        d["spectra"] = spectra
    return d


def table_from_dict(d: object, fail, spectra: bool = True) -> KeyTable:
    """Validate a file's ``keytable`` (``spectra``: format 4's, whose spectra lie apart in
    its field ``spectra``; else format 3's, every value in ``values``). Errors (from
    ``fail(message)``) name the field, parameter or spectrum, key, velocity and harmonic."""
    if not spectra or not isinstance(d, dict):
        try:
            return KeyTable.from_dict(d)
        except ThetaError as exc:
            raise fail(f'field "keytable": {exc}') from None
    values = d.get("values")
    if isinstance(values, dict):
        inside = sorted(set(values) & _SPECTRUM_PARAMS, key=lambda n: TIMBRE_INDEX[n])
        if inside:
            raise fail(
                f'field "keytable.values" holds {inside[0]}: in format 4 the spectra lie in '
                '"keytable.spectra" ("onset_db", "held_db": 32 levels in dB each)'
            )
    try:
        table = KeyTable.from_dict({k: v for k, v in d.items() if k != "spectra"})
    except ThetaError as exc:
        raise fail(f'field "keytable": {exc}') from None
    given = d.get("spectra", {})
    if not isinstance(given, dict):
        raise fail(f'field "keytable.spectra" must be an object with {" and/or ".join(SPECTRA)}')
    extra = sorted(set(given) - set(SPECTRA))
    if extra:
        raise fail(f'field "keytable.spectra": unknown spectrum {", ".join(extra)}; accepted: {", ".join(SPECTRA)}')
    full = table.values.copy()
    n_keys, n_vels = len(table.keys), len(table.velocities)
    for key, names in SPECTRA.items():
        if key not in given:
            continue
        cols = [TIMBRE_INDEX[n] for n in names]
        field = f'field "keytable.spectra.{key}"'
        grid = given[key]
        try:
            if isinstance(grid, list) and grid and all(isinstance(row, list) for row in grid):
                if len(grid) != n_keys or not all(
                    isinstance(row, list) and len(row) == n_vels and all(isinstance(a, list) for a in row)
                    for row in grid
                ):
                    raise ValueError(
                        f"{field} must be 32 levels in dB (the same at every anchor) or a "
                        f"[key][velocity] list of them: {n_keys} keys, each a list of {n_vels}"
                    )
                for a, row in enumerate(grid):
                    for b, levels in enumerate(row):
                        where = f"{field} at key {table.keys[a]}, velocity {table.velocities[b]}"
                        full[a, b, cols] = check_spectrum(levels, where)
            else:
                full[:, :, cols] = check_spectrum(grid, field)
        except (TypeError, ValueError) as exc:
            raise fail(str(exc)) from None
    try:
        return KeyTable(table.keys, table.velocities, full)
    except ThetaError as exc:  # check_spectrum's range is the schema's: not reached
        raise fail(f'field "keytable": {exc}') from None


def load_patch(path: str | os.PathLike) -> Patch:
    """Read and validate one patch file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PatchError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > 1_000_000:
        raise PatchError(f"{p}: too large for a patch file ({len(raw)} bytes, at most 1000000)")
    try:
        d = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise PatchError(f"{p}: not a valid JSON patch file: {exc}") from None
    return Patch.from_dict(d, origin=str(p))


def _dumps(d: dict) -> str:
    """Indented JSON with each list of numbers on one line (a key table's row per line)."""
    inline: list[str] = []

    def mark(x: object) -> object:
        if isinstance(x, dict):
            return {k: mark(v) for k, v in x.items()}
        if isinstance(x, list):
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
                inline.append(json.dumps(x, allow_nan=False))
                return f"\x00{len(inline) - 1}\x00"
            return [mark(v) for v in x]
        return x

    text = json.dumps(mark(d), indent=2, allow_nan=False)
    return re.sub(r'"\\u0000(\d+)\\u0000"', lambda m: inline[int(m.group(1))], text)


class _NotANumber:
    """What a file's ``NaN`` or ``Infinity`` reads as: not a number, so the field's own
    check refuses it, naming the field (and parameter, key, velocity, harmonic)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _reject_constant(name: str) -> _NotANumber:
    return _NotANumber(name)


def save_patch(patch: Patch, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``patch`` to ``path`` atomically: temp file, fsync, rename.

    A crash or kill at any moment leaves either the old file whole or the new one whole.
    Without ``overwrite`` an existing file is an error.
    """
    return _write(path, patch.to_dict(), overwrite)


def _write(path: str | os.PathLike, d: dict, overwrite: bool) -> Path:
    p = Path(path)
    if p.exists() and not overwrite:
        raise PatchError(f"{p} exists; pass overwrite=True (CLI: --force) to replace it")
    return write_atomically(p, (_dumps(d) + "\n").encode("utf-8"), overwrite)


def file_mode() -> int:
    """The mode a new file gets under this process's umask (0o666 less the umask), as a
    file made by ``open()`` would: a temporary file is made 0600 and must be given it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, and put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def write_atomically(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path``: a temporary file in the same folder, flushed to disk,
    given the user's file mode (:func:`file_mode`), then renamed over ``path`` (or, without
    ``overwrite``, linked, so that a name that appeared meanwhile is never clobbered). A
    crash or kill at any moment leaves the old file whole or the new one whole."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=p.suffix, dir=p.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, p)
        else:
            # link() fails if the name appeared meanwhile: never clobber without asking.
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise PatchError(f"{p} exists; pass overwrite=True (CLI: --force) to replace it") from None
            os.unlink(tmp)
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p


def save_patch_with_theta(patch: Patch, theta: Theta, path: str | os.PathLike) -> Path:
    """``render --dump-json``: ``patch`` written as a format-2 file whose ``theta`` is the
    seed-style theta of a rendered note (``theta`` by name: timbre, pitch, velocity, rate,
    length), beside its ``keytable``. The one place this code writes a theta; the file
    loads back (:func:`load_patch`) as the patch."""
    d = patch.to_dict()
    d["format_version"] = 2
    d["theta"] = theta.to_dict()
    return _write(path, d, overwrite=True)


def _check_t(t: object) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise PatchError(f"t must be a number in range 0..1, got {t!r}")
    return float(t)


def morph(a: Patch | KeyTable, b: Patch | KeyTable, t: float) -> KeyTable:
    """The patch between ``a`` (t=0) and ``b`` (t=1): :meth:`engine.KeyTable.morph` of
    the two patches' tables."""
    t = _check_t(t)

    def table(x: Patch | KeyTable) -> KeyTable:
        if isinstance(x, Patch):
            return x.table
        if isinstance(x, KeyTable):
            return x
        raise PatchError(f"morph takes a Patch or a KeyTable, got {type(x).__name__}")

    return KeyTable.morph(table(a), table(b), t)
