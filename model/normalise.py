"""Z-score normalisation of theta (in the schema's learning space) and of embeddings.

Statistics come from the training set and are saved in the checkpoint's meta.json.
A dimension whose std is below 1e-6 (constant in the data, such as sample_rate and
duration_s in NSynth) gets std 1, so it is only centred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from engine import PARAM_NAMES, SCHEMA_VERSION, clamp_array, learning_transforms, param
from model.errors import CheckpointError

__all__ = ["MIN_STD", "Normaliser", "ThetaNormaliser"]

MIN_STD = 1e-6


class Normaliser:
    """``(x - mean) / std`` per feature, shapes ``[..., n_features]``, float64 stats."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(
                f"mean and std must be 1-d of one length, got {mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
            raise ValueError("mean must be finite and std finite and > 0")
        self.mean, self.std = mean, std

    @property
    def size(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, data: np.ndarray) -> Normaliser:
        """Statistics of ``data [n_samples, n_features]``; std < MIN_STD becomes 1."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 1:
            raise ValueError(f"data must have shape [n_samples, n_features], got {data.shape}")
        if not np.isfinite(data).all():
            raise ValueError("data holds NaN or infinite values")
        std = data.std(axis=0)
        return cls(data.mean(axis=0), np.where(std < MIN_STD, 1.0, std))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.std

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, size: int | None = None, what: str = "normaliser"
    ) -> Normaliser:
        """From ``to_dict``'s output; CheckpointError names what is wrong."""
        try:
            norm = cls(np.array(d["mean"], dtype=np.float64), np.array(d["std"], dtype=np.float64))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"{what} must be {{'mean': [...], 'std': [...]}} of finite numbers, std > 0: {exc}"
            ) from exc
        if size is not None and norm.size != size:
            raise CheckpointError(f"{what} has {norm.size} features, expected {size}")
        return norm

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class ThetaNormaliser(Normaliser):
    """Physical values of some theta parameters ``[..., len(names)]`` -> learning space
    (schema) -> z-score, and back.

    ``names`` are the parameters the flow models, in schema order: all of them
    (``engine.PARAM_NAMES``, as checkpoints of theta schema 1 did) or the timbre values
    alone (``engine.TIMBRE_NAMES``: the key-conditioned models, which are told the pitch
    and velocity). :meth:`full` fills in the others with their defaults.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, names: Sequence[str] = PARAM_NAMES) -> None:
        super().__init__(mean, std)
        names = tuple(names)
        unknown = [n for n in names if n not in PARAM_NAMES]
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; known: {list(PARAM_NAMES)}")
        if len(names) != self.size:
            raise ValueError(f"{len(names)} names for {self.size} features")
        self.names = names
        self._params = [param(n) for n in names]
        self._to_learning, self._from_learning = learning_transforms(names)
        self._cols = np.array([PARAM_NAMES.index(n) for n in names])

    @classmethod
    def fit(cls, theta: np.ndarray, names: Sequence[str] = PARAM_NAMES) -> ThetaNormaliser:
        """From physical values ``[n_samples, len(names)]`` (validated, in ``names`` order)."""
        names = tuple(names)
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim != 2 or theta.shape[1] != len(names):
            raise ValueError(f"theta must have shape [n_samples, {len(names)}], got {theta.shape}")
        base = Normaliser.fit(learning_transforms(names)[0](theta))
        return cls(base.mean, base.std, names)

    def encode(self, theta: np.ndarray) -> np.ndarray:
        """Physical values ``[..., len(names)]`` -> the flow's space."""
        return self.transform(self._to_learning(theta))

    def decode(self, x: np.ndarray) -> np.ndarray:
        """The flow's space -> physical values ``[..., len(names)]``, clamped into range,
        NaN -> default."""
        with np.errstate(over="ignore", invalid="ignore"):  # wild flow outputs: clamped below
            u = self.inverse(x)
            v = self._from_learning(u)
        lo = np.array([p.minimum for p in self._params])
        hi = np.array([p.maximum for p in self._params])
        default = np.array([p.default for p in self._params])
        return np.clip(np.where(np.isnan(v), default, v), lo, hi)

    def full(self, values: np.ndarray) -> np.ndarray:
        """Values ``[..., len(names)]`` -> all parameters ``[..., len(PARAM_NAMES)]``, the
        others at their defaults (clamped into range)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.broadcast_to(clamp_array(np.full(len(PARAM_NAMES), np.nan)), v.shape[:-1] + (len(PARAM_NAMES),)).copy()
        out[..., self._cols] = v
        return clamp_array(out)

    def pick(self, theta: np.ndarray) -> np.ndarray:
        """All parameters ``[..., len(PARAM_NAMES)]`` -> this normaliser's columns."""
        return np.asarray(theta, dtype=np.float64)[..., self._cols]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "names": list(self.names), **super().to_dict()}

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, size: int | None = None, what: str = "theta normaliser"
    ) -> ThetaNormaliser:
        """Names may be any parameters of this schema, in schema order (a checkpoint of
        theta schema 1 names the 10 of version 1, which version 2 kept)."""
        names = d.get("names", list(PARAM_NAMES))
        if (
            not isinstance(names, list)
            or not names
            or any(n not in PARAM_NAMES for n in names)
            or [PARAM_NAMES.index(n) for n in names] != sorted(PARAM_NAMES.index(n) for n in names)
            or len(set(names)) != len(names)
        ):
            raise CheckpointError(
                f"{what} is for parameters {names}; this schema (version {SCHEMA_VERSION}) has "
                f"{list(PARAM_NAMES)} (a {what} must name some of them, in that order)"
            )
        base = Normaliser.from_dict(d, size=len(names), what=what)
        return cls(base.mean, base.std, names)
