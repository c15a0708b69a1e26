"""The evaluation's metric: the log-mel L1 distance of a render to a real note, and how
one patch per family is judged on notes (:func:`family_hits`).

``promptsynth eval`` (:mod:`training.evaluate`, :mod:`training.left_out`) judges with it,
the sound library (:mod:`training.library`) chooses with it; it imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.spectral import log_mel

__all__ = ["family_hits", "mel_features", "mel_l1"]


def mel_features(audio: np.ndarray) -> np.ndarray:
    """Log-mel features of ``audio [batch, n_samples]`` (RMS-normalised, 64 mels, 16
    time slices; :func:`training.spectral.log_mel`), ``[batch, 1024]`` float32."""
    return log_mel(np.atleast_2d(audio)).astype(np.float32)


def mel_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The log-mel L1 distance between feature rows (mean absolute difference), broadcast."""
    return np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean(axis=-1)


def family_hits(
    distance: np.ndarray, chosen: Sequence[int], note_family: np.ndarray, families: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """How ``promptsynth eval`` judges one patch per family on notes: ``distance
    [n_candidates, n_notes]``, ``chosen`` the candidate of each of ``families``. Returns
    whether each note's nearest chosen patch is its own family's ``[n_notes]`` and its
    distance to that patch ``[n_notes]``."""
    d = distance[np.asarray(chosen)]
    own = np.array([list(families).index(f) for f in note_family])
    cols = np.arange(d.shape[1])
    return d.argmin(axis=0) == own, d[own, cols]
