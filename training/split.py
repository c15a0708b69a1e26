"""Train/validation split by instrument, never by note.

Within each (family, dataset) group, a fraction of the instruments (at least one where
the group has two or more) goes to validation with all its notes; the model never trains
on them, so validation measures instruments it has not heard.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

__all__ = ["split_by_instrument"]


def split_by_instrument(
    records: Sequence[dict], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[int], list[int], list[str]]:
    """Indices of training and validation records, and the sorted validation instruments.

    ``records`` need ``instrument``, ``family`` and ``dataset`` fields.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in range 0..1 (1 excluded), got {val_fraction}")
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in records:
        groups[(r["family"], r["dataset"])].add(r["instrument"])
    rng = random.Random(seed)
    val: set[str] = set()
    for key in sorted(groups):
        insts = sorted(groups[key])
        if len(insts) < 2 or val_fraction == 0.0:
            continue
        rng.shuffle(insts)
        val.update(insts[: max(1, round(val_fraction * len(insts)))])
    train_idx = [i for i, r in enumerate(records) if r["instrument"] not in val]
    val_idx = [i for i, r in enumerate(records) if r["instrument"] in val]
    return train_idx, val_idx, sorted(val)
