"""Z-score normalisation of theta (in the schema's learning space) and of embeddings.

Statistics come from the training set and are saved in the checkpoint's meta.json.
A dimension whose std is below 1e-6 (constant in the data, such as sample_rate and
duration_s in NSynth) gets std 1, so it is only centred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from engine import PARAM_NAMES, SCHEMA_VERSION, clamp_array, from_learning, to_learning
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
    """Physical theta ``[..., 10]`` -> learning space (schema) -> z-score, and back.

    All parameters in schema order (``engine.PARAM_NAMES``).
    """

    @classmethod
    def fit(cls, theta: np.ndarray) -> ThetaNormaliser:
        """From physical theta ``[n_samples, 10]`` (validated values, schema order)."""
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim != 2 or theta.shape[1] != len(PARAM_NAMES):
            raise ValueError(
                f"theta must have shape [n_samples, {len(PARAM_NAMES)}], got {theta.shape}"
            )
        base = Normaliser.fit(to_learning(theta))
        return cls(base.mean, base.std)

    def encode(self, theta: np.ndarray) -> np.ndarray:
        """Physical theta ``[..., 10]`` -> the flow's space ``[..., 10]``."""
        return self.transform(to_learning(theta))

    def decode(self, x: np.ndarray) -> np.ndarray:
        """The flow's space ``[..., 10]`` -> physical theta, clamped into range, NaN -> default."""
        with np.errstate(over="ignore", invalid="ignore"):
            return clamp_array(from_learning(self.inverse(x)))

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "names": list(PARAM_NAMES), **super().to_dict()}

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, size: int | None = None, what: str = "theta normaliser"
    ) -> ThetaNormaliser:
        names = d.get("names", list(PARAM_NAMES))
        if list(names) != list(PARAM_NAMES):
            raise CheckpointError(
                f"{what} is for parameters {names}; this schema (version {SCHEMA_VERSION}) has {list(PARAM_NAMES)}"
            )
        base = Normaliser.from_dict(d, size=len(PARAM_NAMES), what=what)
        return cls(base.mean, base.std)
