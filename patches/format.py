"""The patch file: versioned JSON, strictly validated, saved atomically.

A patch file looks like::

    {
      "format": "promptsynth-patch",
      "format_version": 1,
      "name": "soft-flute",
      "schema_version": 1,
      "theta": {"attack_s": 0.08, "decay_s": 0.4, "sustain": 0.8, ...},
      "prompt": "a soft flute",
      "source": {"checkpoint": "...", "encoder": "minilm", "temperature": 0.0, "seed": null},
      "created": "2026-11-27T06:30:00Z"
    }
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

from engine import SCHEMA_VERSION, Theta, ThetaError, upgrade_theta_dict

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_NAME_LEN",
    "Patch",
    "PatchError",
    "check_name",
    "load_patch",
    "save_patch",
    "morph",
]

FORMAT = "promptsynth-patch"
FORMAT_VERSION = 1
MAX_NAME_LEN = 64
MAX_PROMPT_LEN = 1000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+()-]*$")
_SOURCE_KEYS = {"checkpoint": str, "encoder": str, "temperature": (int, float), "seed": (int, type(None))}


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
    """A named timbre. ``theta`` holds physical values; ``prompt`` and ``source`` say
    where it came from (checkpoint id, encoder, temperature, seed)."""

    name: str
    theta: Theta
    prompt: str | None = None
    source: Mapping[str, object] = field(default_factory=dict)
    created: str = field(default_factory=_utc_now)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name))
        if not isinstance(self.theta, Theta):
            raise PatchError(f"theta must be a Theta, got {type(self.theta).__name__}")

    def to_dict(self) -> dict:
        d = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "schema_version": SCHEMA_VERSION,
            "theta": self.theta.to_dict(),
            "created": self.created,
        }
        if self.prompt is not None:
            d["prompt"] = self.prompt
        if self.source:
            d["source"] = dict(self.source)
        return d

    @classmethod
    def from_dict(cls, d: object, origin: str = "<patch>") -> Patch:
        """Validate a parsed patch file; errors name ``origin`` and the field."""

        def fail(msg: str) -> PatchError:
            return PatchError(f"{origin}: {msg}")

        if not isinstance(d, dict):
            raise fail(f"a patch file must hold a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise fail(f'field "format" must be "{FORMAT}", got {d.get("format")!r}')
        fv = d.get("format_version")
        if fv != FORMAT_VERSION or isinstance(fv, bool):
            raise fail(f'field "format_version" must be {FORMAT_VERSION}, got {fv!r}')
        known = {"format", "format_version", "name", "schema_version", "theta", "prompt", "source", "created"}
        extra = sorted(set(d) - known)
        if extra:
            raise fail(f"unknown field(s) {', '.join(extra)}; accepted: {', '.join(sorted(known))}")
        try:
            name = check_name(d.get("name"))
        except PatchError as exc:
            raise fail(f'field "name": {exc}') from None
        theta_d = d.get("theta")
        if not isinstance(theta_d, dict):
            raise fail('field "theta" must be an object of parameter name -> number')
        try:
            theta = Theta.from_dict(upgrade_theta_dict(theta_d, d.get("schema_version")))
        except ThetaError as exc:
            raise fail(f'field "theta": {exc}') from None
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
        created = d.get("created", "")
        if not isinstance(created, str):
            raise fail('field "created" must be an ISO 8601 string')
        return cls(name=name, theta=theta, prompt=prompt, source=source, created=created)


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


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a patch may hold")


def save_patch(patch: Patch, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``patch`` to ``path`` atomically: temp file, fsync, rename.

    A crash or kill at any moment leaves either the old file whole or the new one whole.
    Without ``overwrite`` an existing file is an error.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise PatchError(f"{p} exists; pass overwrite=True (CLI: --force) to replace it")
    data = (json.dumps(patch.to_dict(), indent=2, allow_nan=False) + "\n").encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=p.parent)
    try:
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


def morph(a: Patch | Theta, b: Patch | Theta, t: float) -> Theta:
    """The timbre between ``a`` (t=0) and ``b`` (t=1), interpolated in the schema's
    learning space (log for times, ratio and index), so halfway between 10 ms and 1 s is 100 ms."""
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0.0 <= t <= 1.0:
        raise PatchError(f"t must be a number in range 0..1, got {t!r}")
    ta = a.theta if isinstance(a, Patch) else a
    tb = b.theta if isinstance(b, Patch) else b
    la, lb = ta.to_learning(), tb.to_learning()
    return Theta.from_learning(la + (lb - la) * float(t))
