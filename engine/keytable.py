"""A timbre that varies over the keyboard and with velocity: anchors, interpolated.

A ``KeyTable`` holds timbre values (physical units, schema order) at a few key anchors
and velocity layers. At construction it expands to every MIDI key, interpolating linearly
between key anchors in the schema's learning space (log for times, ratio, index, noise)
and holding the end anchors' values beyond them. ``lookup(pitch, velocity)`` then takes
the key's row and interpolates between velocity layers, also in learning space, holding
the first/last layer outside them. A value that is a choice (``STEPPED``: the third
operator's layout) is not interpolated: it is the nearer anchor's or layer's. The engine
calls it at each note-on.

>>> t = KeyTable([0, 127], [64], [[[0.01]], [[1.0]]], names=["attack_s"])
>>> round(float(t.lookup(0, 100)[TIMBRE_INDEX["attack_s"]]), 4)
0.01
>>> round(float(t.lookup(127, 1)[TIMBRE_INDEX["attack_s"]]), 4)
1.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.schema import (
    PARAMS,
    STEPPED,
    TIMBRE_INDEX,
    TIMBRE_NAMES,
    TIMBRE_SPACE,
    Theta,
    ThetaError,
    param,
)

__all__ = ["KeyTable", "KEY_ANCHORS", "VELOCITY_LAYERS", "N_KEYS"]

#: Every MIDI key gets a row.
N_KEYS = 128
#: Suggested key anchors (every 6 semitones, and the top key).
KEY_ANCHORS: tuple[int, ...] = tuple(range(0, 127, 6)) + (127,)
#: Suggested velocity layers.
VELOCITY_LAYERS: tuple[int, ...] = (32, 64, 96, 127)

_TP = tuple(p for p in PARAMS if p.timbre)
_N = len(_TP)
_MIN = TIMBRE_SPACE.minimum
_MAX = TIMBRE_SPACE.maximum
_DEFAULT = TIMBRE_SPACE.default
#: Physical timbre ``[..., n_timbre]`` <-> learning space (the schema's transforms; back
#: from learning space clipped into range, which only rounding needs).
_to_learning = TIMBRE_SPACE.to_learning
_from_learning = TIMBRE_SPACE.from_learning
#: Columns of the values that are a choice (``STEPPED``): read at the nearer anchor or layer.
_STEP = [TIMBRE_INDEX[name] for name in STEPPED]


def _anchor_weights(anchors: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower anchor index and weight of the upper one for each point; constant outside."""
    if len(anchors) == 1:
        return np.zeros(len(points), dtype=np.intp), np.zeros(len(points))
    p = np.clip(points.astype(np.float64), anchors[0], anchors[-1])
    j = np.clip(np.searchsorted(anchors, p, side="right") - 1, 0, len(anchors) - 2)
    w = (p - anchors[j]) / (anchors[j + 1] - anchors[j])
    # A point on the upper anchor takes that anchor with weight 0, so that it reads the
    # anchor's exact value rather than a round trip through learning space.
    top = w >= 1.0
    j[top] += 1
    w[top] = 0.0
    return j, w


def _check_anchors(what: str, values: object, lo: int, hi: int) -> np.ndarray:
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        arr = np.asarray([], dtype=object)
    ok = arr.ndim == 1 and arr.size >= 1 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.tolist()
    )
    if not ok:
        raise ThetaError(f"{what} must be a non-empty list of integers in range {lo}..{hi}, got {values!r}")
    arr = arr.astype(np.int64)
    if arr.min() < lo or arr.max() > hi:
        raise ThetaError(f"{what} must be in range {lo}..{hi}, got {arr.tolist()}")
    if np.any(np.diff(arr) <= 0):
        raise ThetaError(f"{what} must be strictly ascending, got {arr.tolist()}")
    return arr


class KeyTable:
    """Timbre per key anchor and velocity layer, expanded to all 128 keys.

    Args:
        keys: ascending MIDI key anchors in 0..127, e.g. ``KEY_ANCHORS``.
        velocities: ascending velocity layers in 1..127, e.g. ``VELOCITY_LAYERS``.
        values: ``[len(keys), len(velocities), n]`` physical values; ``n`` is
            ``len(names)``, by default all timbre parameters in schema order.
        names: the parameters ``values`` holds (others take their defaults).
        clamp: put out-of-range values in range and NaN at the default (model output);
            without it such a value is an error naming parameter, key and velocity.

    Immutable once built; share it freely between threads.
    """

    __slots__ = ("keys", "velocities", "values", "_phys", "_learn", "_vj", "_vw", "_center")

    def __init__(
        self,
        keys: Sequence[int],
        velocities: Sequence[int],
        values: object,
        *,
        names: Sequence[str] | None = None,
        clamp: bool = False,
    ) -> None:
        k = _check_anchors("keys", keys, 0, 127)
        v = _check_anchors("velocities", velocities, 1, 127)
        names = TIMBRE_NAMES if names is None else tuple(names)
        for name in names:
            if not param(name).timbre:
                raise ThetaError(f"{name} is not a timbre parameter; timbre parameters: {', '.join(TIMBRE_NAMES)}")
        if len(set(names)) != len(names):
            raise ThetaError(f"parameter names repeat: {', '.join(names)}")
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ThetaError(f"key table values must be numbers: {exc}") from None
        shape = (len(k), len(v), len(names))
        if arr.shape != shape:
            raise ThetaError(f"key table values must have shape {shape} [keys, velocities, parameters], got {arr.shape}")
        full = np.broadcast_to(_DEFAULT, (len(k), len(v), _N)).copy()
        cols = [TIMBRE_INDEX[nm] for nm in names]
        full[:, :, cols] = arr
        if clamp:
            full = np.clip(np.where(np.isnan(full), _DEFAULT, full), _MIN, _MAX)
        else:
            bad = ~(np.isfinite(full) & (full >= _MIN) & (full <= _MAX))
            if bad.any():
                a, b, c = (int(x) for x in np.argwhere(bad)[0])
                p = _TP[c]
                raise ThetaError(
                    f"{p.name} at key {int(k[a])}, velocity {int(v[b])} must be a finite number in "
                    f"range {p.minimum:g}..{p.maximum:g}, got {full[a, b, c]:g}"
                )
        full.flags.writeable = False
        self.keys = tuple(int(x) for x in k)
        self.velocities = tuple(int(x) for x in v)
        self.values = full
        # Expand once: every key's row, in learning space (for velocity interpolation)
        # and physical (exact at anchors; read directly when a velocity hits a layer).
        kj, kw = _anchor_weights(k, np.arange(N_KEYS))
        learn_anchor = _to_learning(full)
        kj1 = np.minimum(kj + 1, len(k) - 1)
        learn = learn_anchor[kj] * (1.0 - kw)[:, None, None] + learn_anchor[kj1] * kw[:, None, None]
        learn[:, :, _STEP] = learn_anchor[np.where(kw >= 0.5, kj1, kj)][:, :, _STEP]
        # Exact values wherever no interpolation is needed: on an anchor, or between two
        # equal values (no round trip through learning space).
        phys = np.where((kw[:, None, None] == 0.0) | (full[kj] == full[kj1]), full[kj], _from_learning(learn))
        phys.flags.writeable = False
        learn.flags.writeable = False
        self._phys = phys  # [128, V, n]
        self._learn = learn  # [128, V, n]
        # Velocity weights for every MIDI velocity 0..127 (0 behaves as 1).
        vj, vw = _anchor_weights(v, np.maximum(np.arange(128), 1))
        self._vj = vj.tolist()
        self._vw = vw.tolist()
        self._center = None

    # -- construction ------------------------------------------------------------------

    def parts(self) -> tuple:
        """Everything a table is made of, expanded: ``(keys, velocities, values [K, V, n],
        phys [128, V, n], learn [128, V, n], vj [128], vw [128])``. :meth:`from_parts`
        rebuilds the table from them without checking or expanding again (the live
        engine's render process does, for a table that crossed shared memory)."""
        return (self.keys, self.velocities, self.values, self._phys, self._learn,
                np.asarray(self._vj, dtype=np.int64), np.asarray(self._vw))

    @classmethod
    def from_parts(cls, keys, velocities, values, phys, learn, vj, vw) -> KeyTable:
        """A table from :meth:`parts` of one that was built (and checked) already."""
        t = cls.__new__(cls)
        t.keys = tuple(int(x) for x in keys)
        t.velocities = tuple(int(x) for x in velocities)
        for name, arr in (("values", values), ("_phys", phys), ("_learn", learn)):
            a = np.array(arr, dtype=np.float64)
            a.flags.writeable = False
            object.__setattr__(t, name, a)
        t._vj = [int(x) for x in vj]
        t._vw = [float(x) for x in vw]
        t._center = None
        return t


    @classmethod
    def flat(cls, timbre: Mapping[str, float] | Sequence[float] | np.ndarray | Theta = ()) -> KeyTable:
        """The same timbre on every key and velocity (one anchor, one layer): a patch of
        one sound.

        Args:
            timbre: timbre values by name (those left out take their defaults; none: the
                default patch), or ``[n_timbre]`` physical values in schema order, or a
                seed-style :class:`Theta` (its timbre values; old files, old checkpoints).

        >>> KeyTable.flat({"mod_index": 3.0}).center()["mod_index"]
        3.0
        """
        if isinstance(timbre, Theta):
            t = timbre.timbre()
        elif isinstance(timbre, Mapping) or (isinstance(timbre, (tuple, list)) and len(timbre) == 0):
            d = dict(timbre)
            t = _DEFAULT.copy()
            for name, value in d.items():
                p = param(name)
                if not p.timbre:
                    raise ThetaError(f"{name} is not a timbre parameter; timbre parameters: {', '.join(TIMBRE_NAMES)}")
                t[TIMBRE_INDEX[name]] = p.check(value)
        else:
            t = np.asarray(timbre, dtype=np.float64)
            if t.shape != (_N,):
                raise ThetaError(f"timbre must have shape ({_N},) in order {', '.join(TIMBRE_NAMES)}, got {t.shape}")
        return cls((60,), (100,), t[None, None, :])

    @property
    def is_flat(self) -> bool:
        """True when every key and velocity give the same timbre."""
        return bool(np.all(self.values == self.values[:1, :1]))

    def with_param(self, name: str, value: float) -> KeyTable:
        """This table with parameter ``name`` set to ``value`` on every key and velocity."""
        p = param(name)
        if not p.timbre:
            raise ThetaError(f"{name} is not a timbre parameter; timbre parameters: {', '.join(TIMBRE_NAMES)}")
        vals = self.values.copy()
        vals[:, :, TIMBRE_INDEX[name]] = p.check(value)
        return KeyTable(self.keys, self.velocities, vals)

    # -- reading -----------------------------------------------------------------------

    def lookup(self, pitch: int, velocity: int) -> np.ndarray:
        """Timbre ``[n_timbre]`` (physical, schema order) of a note; read-only.

        Args:
            pitch: MIDI key 0..127.
            velocity: MIDI velocity 0..127 (0 is treated as 1).
        """
        j = self._vj[velocity]
        w = self._vw[velocity]
        if w == 0.0:
            return self._phys[pitch, j]
        row = self._learn[pitch]
        lo = row[j]
        hi = row[j + 1]
        mixed = lo + (hi - lo) * w
        mixed[_STEP] = (hi if w >= 0.5 else lo)[_STEP]
        # Equal layers give their exact value (no round trip through learning space).
        phys = self._phys[pitch]
        return np.where(lo == hi, phys[j], _from_learning(mixed))

    def center(self) -> dict[str, float]:
        """The timbre at key 60, velocity 100, by name in schema order: what a reply or a
        listing shows of a patch."""
        if self._center is None:
            self._center = dict(zip(TIMBRE_NAMES, self.lookup(60, 100).tolist()))
        return dict(self._center)

    # -- files -------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Compact, readable form: anchors, and per parameter a ``[key][velocity]`` list
        rounded to 6 significant digits."""
        return {
            "keys": list(self.keys),
            "velocities": list(self.velocities),
            "values": {
                name: [[float(f"{x:.6g}") for x in row] for row in self.values[:, :, i].tolist()]
                for i, name in enumerate(TIMBRE_NAMES)
            },
        }

    @classmethod
    def from_dict(cls, d: object) -> KeyTable:
        """Validate and build from ``to_dict``'s form; a parameter left out takes its
        default everywhere. Errors name the field, parameter, key and velocity."""
        if not isinstance(d, Mapping):
            raise ThetaError(f"key table must be an object with keys, velocities, values; got {type(d).__name__}")
        extra = sorted(set(d) - {"keys", "velocities", "values"})
        if extra:
            raise ThetaError(f"key table: unknown field(s) {', '.join(extra)}; accepted: keys, velocities, values")
        for f in ("keys", "velocities", "values"):
            if f not in d:
                raise ThetaError(f"key table: field {f!r} is missing")
        keys = _check_anchors("keys", d["keys"], 0, 127)
        vels = _check_anchors("velocities", d["velocities"], 1, 127)
        vals = d["values"]
        if not isinstance(vals, Mapping):
            raise ThetaError("key table: values must be an object of parameter name -> [key][velocity] list")
        names = []
        cols = []
        for name, grid in vals.items():
            p = param(name)
            if not p.timbre:
                raise ThetaError(f"key table: {name} is not a timbre parameter")
            ok = isinstance(grid, list) and len(grid) == len(keys) and all(
                isinstance(row, list) and len(row) == len(vels) for row in grid
            )
            if not ok:
                raise ThetaError(
                    f"key table: {name} must be a list of {len(keys)} keys, each a list of {len(vels)} numbers"
                )
            for a, row in enumerate(grid):
                for b, x in enumerate(row):
                    if isinstance(x, bool) or not isinstance(x, (int, float)):
                        raise ThetaError(
                            f"{name} at key {int(keys[a])}, velocity {int(vels[b])} must be a number, got {x!r}"
                        )
            names.append(name)
            cols.append(grid)
        values = np.array(cols, dtype=np.float64).reshape(len(names), len(keys), len(vels))
        return cls(keys.tolist(), vels.tolist(), np.moveaxis(values, 0, -1), names=names)

    # -- misc --------------------------------------------------------------------------

    def learning_values(self) -> np.ndarray:
        """The anchors' values in learning space, ``[keys, velocities, n_timbre]``."""
        return _to_learning(self.values)

    @classmethod
    def from_learning_values(cls, keys: Sequence[int], velocities: Sequence[int], learn: np.ndarray) -> KeyTable:
        """From learning-space anchor values (e.g. a morph), clamped into range."""
        return cls(keys, velocities, _from_learning(np.asarray(learn, dtype=np.float64)), clamp=True)

    @staticmethod
    def morph(a: KeyTable, b: KeyTable, t: float) -> KeyTable:
        """The table between ``a`` (t=0) and ``b`` (t=1), interpolated in the schema's
        learning space (log for times, ratio and index: halfway between 10 ms and 1 s is
        100 ms). A choice (``STEPPED``: the third operator's layout) is ``a``'s below
        t = 0.5 and ``b``'s from there.

        Tables with the same anchors morph anchor by anchor. Otherwise both are first
        read at the union of their key anchors and velocity layers: a table read at
        more anchors is the same table (it is linear between its own anchors in learning
        space), so every key still gets the timbre between the two tables' on that key.
        """
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise ThetaError(f"t must be a number in range 0..1, got {t!r}")
        if (a.keys, a.velocities) == (b.keys, b.velocities):
            keys, vels = a.keys, a.velocities
            la, lb = a.learning_values(), b.learning_values()
        else:
            keys = tuple(sorted(set(a.keys) | set(b.keys)))
            vels = tuple(sorted(set(a.velocities) | set(b.velocities)))
            la, lb = (
                _to_learning(np.array([[x.lookup(k, v) for v in vels] for k in keys]))
                for x in (a, b)
            )
        mixed = la + (lb - la) * t
        mixed[..., _STEP] = (lb if t >= 0.5 else la)[..., _STEP]
        return KeyTable.from_learning_values(list(keys), list(vels), mixed)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, KeyTable)
            and other.keys == self.keys
            and other.velocities == self.velocities
            and np.array_equal(other.values, self.values)
        )

    def __hash__(self) -> int:
        return hash((self.keys, self.velocities, self.values.tobytes()))

    def __repr__(self) -> str:
        return f"KeyTable(keys={list(self.keys)}, velocities={list(self.velocities)}, flat={self.is_flat})"
