"""Refit a dataset's labels with the differentiable render (theta schema v2 to v5).

The grid-and-local-search fit (:mod:`training.fit`) finds each note's modulator ratio
(the discrete value) and the v1 timbre; this stage keeps the ratio and fits the
continuous values, v2's included, by gradient descent on the spectral loss
(:mod:`training.torchsynth`), batched. With the third operator (``--free v3``) each
note's operator ratio and layout come first from a grid (:func:`op3_grid`: every layout
x ratio of ``OP3_RATIOS`` at two indices, or off, whichever renders nearest), then its
index and peak are fitted with the rest. With the noise band (``--free v2+band``, or
``v4`` with the operator too) each note's band centre, width and level come first from
a grid as well (:func:`band_grid`), then its width and level are fitted with the rest.
With the carrier's spectra (``--free v5``: v4 and schema 5's values; ``v2+spectra``
without the operator's and band's grids) each note's onset and held spectra, onset_s,
darken_db and darken_s start from what ``training.profiles.measured_timbre`` measures in
its recording (:func:`measured_start`: kept where it renders nearer than the label, with
the label's FM indices or with them at 0), its env_curve from a grid, then all of them
are fitted with the rest (a harmonic measured at ``DB_FLOOR`` stays silent: its
gradient is 0). Every label is then rendered by the numpy engine itself and scored by
the full distance (:func:`training.spectral.spectral_distance`): the number recorded is
the engine's, not the torch render's."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from engine import (
    RATIO_GRID,
    SCHEMA_VERSION,
    TIMBRE_INDEX,
    TIMBRE_NAMES,
    TIMBRE_SPACE,
    Theta,
    render_notes,
)
from engine.schema import HELD_NAMES, ONSET_NAMES
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S, load_audio
from training.spectral import spectral_distance
from training.torchsynth import NoteBatch, SpectralTargets, fit_batch, render, spectral_loss

__all__ = [
    "FREE_SETS", "OP3_RATIOS", "BAND_CENTRES", "op3_grid", "band_grid", "measured_start", "refit_records",
    "engine_distances", "relabelled", "MEASURED", "refit_shard", "refit_sharded", "refit_dataset",
]

_V1 = ("attack_s", "decay_s", "sustain", "release_s", "mod_index")
#: Named sets of fitted values, for the comparison of what each v2 addition brings.
_V2 = _V1 + ("index_peak", "index_decay_s", "noise_level", "noise_decay_s")
_OP3 = ("op3_index", "op3_peak")
_BAND = ("band_level", "band_width")
#: What a recording's measurement gives (``training.profiles.measured_timbre``).
MEASURED = (*ONSET_NAMES, *HELD_NAMES, "onset_s", "darken_db", "darken_s")
_V5 = MEASURED + ("env_curve",)
FREE_SETS: dict[str, tuple[str, ...]] = {
    "v1": _V1,
    "v1+index-envelope": _V1 + ("index_peak", "index_decay_s"),
    "v1+noise": _V1 + ("noise_level", "noise_decay_s"),
    "v2": _V2,
    "v3": _V2 + _OP3,
    "v4": _V2 + _OP3 + _BAND,
    "v2+band": _V2 + _BAND,
    "v5": _V2 + _OP3 + _BAND + _V5,
    "v2+spectra": _V2 + _V5,
}
#: The modulators' indices a measured start also tries at 0.
_FM_INDICES = ("mod_index", "index_peak", "op3_index", "op3_peak")
#: The envelope curves the grid tries before the fit (the label's own is the first).
ENV_CURVES = (0.5, 1.0)
#: The third operator's ratios the grid tries (``engine.RATIO_GRID`` up to 8).
OP3_RATIOS = tuple(r for r in RATIO_GRID if r <= 8.0)
#: Its starting indices in the grid.
OP3_GRID_INDICES = (0.5, 2.0)
#: The noise band's centres the grid tries (multiples of the pitch), and its starting
#: widths and levels.
BAND_CENTRES = (0.0, 1.0, 2.0, 3.0, 5.0)
BAND_GRID_WIDTHS = (0.25, 1.0)
BAND_GRID_LEVELS = (0.1, 0.4)
#: FFT sizes of the loss while fitting (the two that cost least per resolution gained;
#: the recorded distance uses all four).
FIT_FFT_SIZES = (512, 2048)


def _timbre(rec: dict) -> np.ndarray:
    return Theta.from_dict(rec["theta"]).timbre()


def engine_distances(records: Sequence[dict], timbres: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Distance of each note to the numpy engine's render of its timbre at its pitch and
    velocity (the evaluation's distance)."""
    pitch = np.array([r["pitch"] for r in records], dtype=np.float64)
    velocity = np.array([r["velocity"] for r in records], dtype=np.float64)
    renders = render_notes(timbres, pitch, velocity, SAMPLE_RATE, HOLD_S, TAIL_S)
    return np.atleast_1d(spectral_distance(np.atleast_2d(audio), renders))


def _grid(y: np.ndarray, pitch, velocity, start: np.ndarray, choices) -> np.ndarray:
    """Per row of ``start [batch, n_timbre]``, the first of ``choices`` (each ``{timbre
    name: value}`` set over the start) whose torch render comes nearest the note ``y
    [batch, n]`` by the spectral loss; a row whose start is nearer keeps it."""
    start = np.asarray(start, dtype=np.float64)
    targets = SpectralTargets(y, FIT_FFT_SIZES)

    def loss(t: np.ndarray) -> np.ndarray:
        return _losses(targets, pitch, velocity, [t])[0]

    best = start.copy()
    best_d = loss(start)
    for choice in choices:
        t = start.copy()
        for name, value in choice.items():
            t[:, TIMBRE_INDEX[name]] = value
        d = loss(t)
        better = d < best_d
        best[better] = t[better]
        best_d = np.where(better, d, best_d)
    return best


def op3_grid(y: np.ndarray, pitch, velocity, start: np.ndarray) -> np.ndarray:
    """Each note's third operator from a grid: ``start [batch, n_timbre]`` with, per row,
    the layout x ratio (``OP3_RATIOS``) x index (``OP3_GRID_INDICES``, peak 0) whose torch
    render comes nearest the note ``y [batch, n]`` by the spectral loss; a row whose start
    (its operator as it is) is nearer keeps it."""
    return _grid(y, pitch, velocity, start, (
        {"op3_layout": layout, "op3_ratio": ratio3, "op3_index": index, "op3_peak": 0.0}
        for layout in (0.0, 1.0, 2.0) for ratio3 in OP3_RATIOS for index in OP3_GRID_INDICES
    ))


def band_grid(y: np.ndarray, pitch, velocity, start: np.ndarray) -> np.ndarray:
    """Each note's noise band from a grid: centre (``BAND_CENTRES``) x width x level,
    nearest by the spectral loss, as :func:`op3_grid`; a row whose start is nearer keeps
    it."""
    return _grid(y, pitch, velocity, start, (
        {"band_centre": c, "band_width": w, "band_level": lev}
        for c in BAND_CENTRES for w in BAND_GRID_WIDTHS for lev in BAND_GRID_LEVELS
    ))


def measured_start(
    y: np.ndarray,
    pitch,
    velocity,
    start: np.ndarray,
    measure: Callable[[np.ndarray, float, int], dict[str, float]],
) -> np.ndarray:
    """Each row of ``start [batch, n_timbre]`` with the spectra ``measure(y[i], pitch[i],
    SAMPLE_RATE)`` finds in its note (the ``MEASURED`` values; clipped into the schema's
    ranges), alone or with the modulators' indices at 0, whichever the torch render brings
    nearest the note ``y [batch, n]`` by the spectral loss (the row as it is where neither
    is nearer); then each row's env_curve from ``ENV_CURVES``, likewise."""
    start = np.asarray(start, dtype=np.float64)
    pitch = np.broadcast_to(np.asarray(pitch, dtype=np.float64), (len(start),))
    measured = start.copy()
    lo, hi = TIMBRE_SPACE.minimum, TIMBRE_SPACE.maximum
    for i, (row, p) in enumerate(zip(np.asarray(y), pitch)):
        values = measure(np.asarray(row, dtype=np.float32), float(p), SAMPLE_RATE)
        missing = [n for n in MEASURED if n not in values]
        if missing:
            raise ValueError(f"the measurement of note {i} (pitch {p:g}) lacks {missing}")
        for name in MEASURED:
            v = float(values[name])
            if not np.isfinite(v):
                raise ValueError(f"the measurement of note {i} (pitch {p:g}) gave {name} = {v}")
            c = TIMBRE_INDEX[name]
            measured[i, c] = min(max(v, lo[c]), hi[c])
    # The spectra measured hold the note's brightness, which the label's FM index holds
    # too: also tried with the modulators off, the spectra alone making the timbre.
    plain = measured.copy()
    plain[:, [TIMBRE_INDEX[n] for n in _FM_INDICES]] = 0.0
    losses = _losses(SpectralTargets(y, FIT_FFT_SIZES), pitch, velocity, [start, measured, plain])
    pick = np.argmin(np.stack(losses), axis=0)
    best = np.choose(pick[:, None], [start, measured, plain])
    return _grid(y, pitch, velocity, best, ({"env_curve": c} for c in ENV_CURVES))


def _losses(targets: SpectralTargets, pitch, velocity, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The spectral loss of each candidate timbre array's torch render to the notes."""
    c = {n: TIMBRE_INDEX[n] for n in ("mod_ratio", "op3_ratio", "op3_layout", "band_centre")}
    out = []
    for t in candidates:
        nb = NoteBatch(pitch, velocity, t[:, c["mod_ratio"]], SAMPLE_RATE, HOLD_S, TAIL_S, op3_ratio=t[:, c["op3_ratio"]],
                       op3_layout=t[:, c["op3_layout"]], band_centre=t[:, c["band_centre"]])
        with torch.no_grad():
            out.append(spectral_loss(targets, render(nb, torch.from_numpy(t))).double().numpy())
    return out


def refit_records(
    records: Sequence[dict],
    free: Sequence[str],
    steps: int = 40,
    lr: float = 0.08,
    batch: int = 16,
    progress: Callable[[str], None] | None = None,
    measure: Callable[[np.ndarray, float, int], dict[str, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``free`` values of every record's label; returns (timbres [n, n_timbre],
    engine distances after, engine distances of the start labels). ``progress(line)``
    hears of each batch (the CLI prints it). Where ``free`` holds the spectra, each note's
    start is :func:`measured_start`'s with ``measure`` (default
    ``training.profiles.measured_timbre``)."""
    spectra = any(name in free for name in MEASURED)
    if spectra and measure is None:
        from training.profiles import measured_timbre as measure
    n = len(records)
    timbres = np.stack([_timbre(r) for r in records])
    after = np.empty(n)
    before = np.empty(n)
    t0 = time.time()
    for s in range(0, n, batch):
        recs = records[s : s + batch]
        y = np.stack([load_audio(r["audio_path"]) for r in recs])
        start = timbres[s : s + batch]
        if "op3_index" in free or "op3_peak" in free:
            start = op3_grid(y, [r["pitch"] for r in recs], [r["velocity"] for r in recs], start)
        if "band_level" in free:
            start = band_grid(y, [r["pitch"] for r in recs], [r["velocity"] for r in recs], start)
        if spectra:
            start = measured_start(y, [r["pitch"] for r in recs], [r["velocity"] for r in recs], start, measure)
        res = fit_batch(
            y,
            [r["pitch"] for r in recs],
            [r["velocity"] for r in recs],
            start,
            free=tuple(free),
            steps=steps,
            lr=lr,
            fft_sizes=FIT_FFT_SIZES,
        )
        before[s : s + len(recs)] = engine_distances(recs, timbres[s : s + batch], y)
        d = engine_distances(recs, res.timbre, y)
        # Kept only where the engine agrees it is better (the fit used fewer FFT sizes).
        keep = d < before[s : s + len(recs)]
        timbres[s : s + batch][keep] = res.timbre[keep]
        after[s : s + len(recs)] = np.where(keep, d, before[s : s + len(recs)])
        if progress is not None:
            done = s + len(recs)
            progress(
                f"  refit {done}/{n}: mean distance {before[:done].mean():.4f} -> "
                f"{after[:done].mean():.4f} ({time.time() - t0:.0f} s)"
            )
    return timbres, after, before


def relabelled(records: Sequence[dict], timbres: np.ndarray, distances: np.ndarray) -> list[dict]:
    """Copies of ``records`` with the new timbre in ``theta`` (this schema's version)."""
    out = []
    for rec, t, d in zip(records, timbres, distances):
        r = dict(rec)
        theta = dict(Theta.from_dict(rec["theta"]).to_dict())
        theta.update({name: float(v) for name, v in zip(TIMBRE_NAMES, t)})
        r["theta"] = theta
        r["schema_version"] = SCHEMA_VERSION
        r["distance_v1"] = rec.get("distance_v1", rec.get("distance"))
        r["distance"] = float(d)
        out.append(r)
    return out



#: What a shard's worker needs of a record (the rest stays with the driver).
_SHARD_FIELDS = ("note_id", "theta", "pitch", "velocity", "audio_path")


def refit_shard(records: Sequence[dict], free: Sequence[str], steps: int, lr: float) -> dict:
    """A worker's task: :func:`refit_records` of ``records`` as one batch; JSON lists of
    the new timbres and the engine distances after and before (floats round-trip JSON
    exactly, so a shard's file gives back the very labels)."""
    timbres, after, before = refit_records(records, free, steps=steps, lr=lr, batch=max(1, len(records)))
    return {"timbre": timbres.tolist(), "after": after.tolist(), "before": before.tolist()}


def refit_sharded(
    records: Sequence[dict],
    free: Sequence[str],
    store: str | os.PathLike,
    executor=None,
    steps: int = 40,
    lr: float = 0.08,
    batch: int = 16,
    progress: bool = True,
    on_result: Callable | None = None,
):
    """:func:`refit_records` on an executor (:class:`training.executor.Executor`;
    default local processes), one shard per batch of ``batch`` notes, each shard's
    result kept in the folder ``store`` (a rerun redoes none that is there). The batches
    are :func:`refit_records`' own, so the labels are the same whichever executor runs
    them. Returns (timbres, after, before) as :func:`refit_records` does, and the
    :class:`training.executor.ShardRun`."""
    from training.executor import Shard, digest, run_shards

    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    free = tuple(free)
    shards = []
    for s in range(0, len(records), batch):
        recs = [{k: r[k] for k in _SHARD_FIELDS} for r in records[s : s + batch]]
        shards.append(Shard((recs, free, steps, lr), len(recs), digest("refit", free, steps, lr, recs)))
    run = run_shards(refit_shard, shards, store, "refit", executor, progress=progress, on_result=on_result)
    if not records:
        return np.zeros((0, len(TIMBRE_NAMES))), np.zeros(0), np.zeros(0), run
    timbres = np.concatenate([np.asarray(r["timbre"], dtype=np.float64) for r in run.results])
    after = np.concatenate([np.asarray(r["after"], dtype=np.float64) for r in run.results])
    before = np.concatenate([np.asarray(r["before"], dtype=np.float64) for r in run.results])
    return timbres, after, before, run


def refit_dataset(
    data: str | os.PathLike,
    out: str | os.PathLike,
    free: str = "v2",
    steps: int = 40,
    datasets: Sequence[str] | None = None,
    executor=None,
    progress: bool = True,
    on_result: Callable | None = None,
    batch: int = 16,
) -> dict:
    """`promptsynth dataset refit`: refit the labels of the notes of ``datasets`` (the
    manifest's ``dataset`` field; default all) in ``data/manifest.jsonl`` with the values
    of ``FREE_SETS[free]``, and write ``out/manifest.jsonl`` (every other record as it
    was) and ``out/refit.json`` (mean distances before and after, per dataset); returns
    that summary. A shard is one batch of ``batch`` notes; each shard's labels are kept
    in ``out/shards/`` as they come: the same command again goes on where a stopped run
    stopped."""
    from training.manifest import read_manifest, write_manifest

    if free not in FREE_SETS:
        raise ValueError(f"--free must be one of {', '.join(FREE_SETS)}, got {free!r}")
    if steps < 0:
        raise ValueError(f"--steps must be >= 0, got {steps}")
    manifest = Path(data) / "manifest.jsonl"
    all_records = read_manifest(manifest)
    present = sorted({r["dataset"] for r in all_records})
    chosen = present if datasets is None else list(datasets)
    unknown = sorted(set(chosen) - set(present))
    if unknown or not chosen:
        raise ValueError(
            f"--datasets {','.join(chosen)!r}: {manifest} has no notes of {', '.join(unknown) or 'none named'}; "
            f"its datasets: {', '.join(present)}"
        )
    refit_these = set(chosen)
    records = [r for r in all_records if r["dataset"] in refit_these]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timbres, after, before, run = refit_sharded(
        records, FREE_SETS[free], out / "shards", executor, steps=steps, batch=batch, progress=progress,
        on_result=on_result,
    )
    refitted = iter(relabelled(records, timbres, after))
    write_manifest(
        out / "manifest.jsonl",
        [next(refitted) if r["dataset"] in refit_these else r for r in all_records],
    )
    summary = {
        "notes": len(records),
        "datasets": chosen,
        "kept_as_they_were": len(all_records) - len(records),
        "free": list(FREE_SETS[free]),
        "steps": steps,
    }
    for ds in sorted({r["dataset"] for r in records}):
        idx = [i for i, r in enumerate(records) if r["dataset"] == ds]
        summary[ds] = {
            "distance_before": round(float(before[idx].mean()), 4),
            "distance_after": round(float(after[idx].mean()), 4),
        }
    summary["all"] = {
        "distance_before": round(float(before.mean()), 4),
        "distance_after": round(float(after.mean()), 4),
    }
    (out / "refit.json").write_text(json.dumps(summary, indent=1) + "\n")
    # Not in refit.json: the file says what the labels are, not how this run went.
    summary["shards"] = {"ran": len(run.ran), "reused": len(run.reused), "seconds": round(run.seconds, 1),
                         "busy_seconds": round(run.busy, 1)}
    return summary
