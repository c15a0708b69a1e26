"""Synth v3 candidates: which additions to the voice raise the ceiling?

    python benchmarks/synth_candidates.py --data runs/nsynth-data \
        [--candidates v2-grid,v2,index-env,vibrato,bandnoise,op3,feedback] [--steps 40] \
        [--joint] [--op3-layouts parallel,stack,carrier2] [--instruments eval|all]

A screening step before any of them enters the engine: each candidate is a **prototype
in torch only** (this file), the schema-2 voice of ``training.torchsynth`` plus one
addition, whose values start off (the schema-2 sound). The numpy engine does not play
these; a kept candidate must be built into ``engine.voices`` and the torch render, sample
for sample, before it can ship.

Judged on the evaluation's notes (``training.evaluate.EVAL_INSTRUMENTS``: ten NSynth
instruments, one per family, never trained on), labelled in ``--data`` (a
``promptsynth dataset build`` of ``--nsynth ../shared/data/nsynth-test
--per-instrument 20``); with ``--instruments all``, on every labelled NSynth note of
``--data`` (44 instruments, several per family: the ceiling is then a family's, where
with one instrument per family each family's patch is that instrument's own). For each
candidate, every note's label is refitted (Adam on the
multi-resolution spectral loss, all continuous values free, from the grid-fit label;
discrete values from a small per-note grid first), then:

- **fit distance**: the mean spectral distance (``training.spectral``, four FFT sizes)
  of each note to the render of its own refitted label;
- **ceiling**: one patch per family, the median in learning space of its notes' labels
  (discrete values: the family's most common choice, the median over the notes that
  made it), rendered at every judged note's pitch and velocity; family accuracy (nearest
  of the ten by log-mel L1, chance 0.10) and own-family distance, as ``promptsynth
  eval``'s ceiling row;
- with ``--joint``, the **joint ceiling**: the same, with each family's patch fitted to
  all of its notes at once (Adam on their mean loss, from the median patch, its discrete
  values kept), rather than a median of single-note fits.

``v2-grid`` is the shipped labels unchanged (``promptsynth eval``'s ceiling, which the
torch render must reproduce); ``v2`` is the schema-2 voice refitted the same way as the
candidates (the row each candidate is compared with). Prints one table; ``--out`` also
writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import RATIO_GRID, TIMBRE_NAMES, TIMBRE_SPACE  # noqa: E402
from engine.voices import NOISE  # noqa: E402
from training.evaluate import EVAL_INSTRUMENTS, _standard_error  # noqa: E402
from training.manifest import manifest_timbres, read_manifest  # noqa: E402
from training.metric import mel_features, mel_l1  # noqa: E402
from training.notes import load_audio  # noqa: E402
from training.nsynth import NSYNTH_FAMILIES  # noqa: E402
from training.spectral import spectral_distance  # noqa: E402
from training.torchsynth import (  # noqa: E402
    _HI,
    _LO,
    NoteBatch,
    SpectralTargets,
    _envelope,
    from_learning,
    projected_step,
    spectral_loss,
    to_learning,
)

_T = {n: i for i, n in enumerate(TIMBRE_NAMES)}
#: Schema-2 values a refit frees (the ratio is discrete: the grid fit's).
V2_FREE = tuple(n for n in TIMBRE_NAMES[:10] if n != "mod_ratio")
FIT_FFT = (512, 2048)
# Which timbre values a fit moves, and their bounds in learning space.
_MASK = torch.tensor([n in V2_FREE for n in TIMBRE_NAMES])
_U_LO = to_learning(_LO[None])[:, _MASK].float()
_U_HI = to_learning(_HI[None])[:, _MASK].float()

# Each candidate's continuous values: name -> (min, max, off value, log offset or None).
EXTRAS: dict[str, dict[str, tuple[float, float, float, float | None]]] = {
    "v2": {},
    # Index times (1 - a + a * env(t)): brightness that follows loudness (Chowning's brass).
    "index-env": {"index_env": (0.0, 1.0, 0.0, None)},
    # Vibrato: depth in cents at 5.5 Hz, fading in over 0.3 s after a delay.
    "vibrato": {"vib_depth": (0.0, 60.0, 0.0, 1.0), "vib_delay": (0.0, 1.5, 0.2, 0.05)},
    # Band-pass noise: low-passed noise of width w * f0 ring-modulated at c * f0 (c from a
    # grid), following the amplitude envelope (breath, bow), beside the white noise.
    "bandnoise": {"bp_level": (0.0, 2.0, 0.0, 0.01), "bp_width": (0.05, 4.0, 0.5, None)},
    # A third operator at ratio r3 (grid) in one of three layouts (grid); its index decays
    # from idx3 + peak3 to idx3 over index_decay_s, as the index peak does.
    "op3": {"idx3": (0.0, 16.0, 0.0, 1.0), "peak3": (0.0, 16.0, 0.0, 1.0)},
    # Modulator feedback: m = sin(phi_m + fb * m), solved by fixed-point iteration.
    "feedback": {"fb": (0.0, 0.95, 0.0, None)},
}
LAYOUTS = ("parallel", "stack", "carrier2")
BP_CENTRES = (0.0, 1.0, 2.0, 3.0, 5.0)
OP3_RATIOS = tuple(r for r in RATIO_GRID if r <= 8.0)
VIB_RATE = 5.5
FB_ITERS = 8
# Low-passed noise table: bandwidth 1/8 cycle per entry, read at 8 * w * f0 entries/s.
_LP_N = 1 << 16
_spec = np.fft.rfft(np.asarray(NOISE, dtype=np.float64))
_spec[int(_LP_N / 16) :] = 0.0
_LP = np.fft.irfft(_spec, _LP_N)
_LP /= np.sqrt(np.mean(_LP**2)) * math.sqrt(3.0)  # same RMS as the white table
_LP_T = torch.from_numpy(np.concatenate([_LP, _LP[:1]]))


class Batch:
    """Notes and what stays fixed while their labels are fitted."""

    def __init__(self, pitch, velocity, ratio, disc: dict, dtype=torch.float32) -> None:
        self.nb = NoteBatch(pitch, velocity, ratio, dtype=dtype)
        self.dtype = dtype
        self.pitch = np.asarray(pitch, dtype=np.float64)
        n = self.nb.n
        k = np.arange(n, dtype=np.float64)
        self.inc_c = 2.0 * math.pi * 440.0 * 2.0 ** ((self.pitch - 69.0) / 12.0) / self.nb.sample_rate
        self.ratio = np.asarray(ratio, dtype=np.float64)
        self.disc = disc
        self.k = torch.from_numpy(k)
        self.phm = torch.from_numpy(np.mod((self.inc_c * self.ratio)[:, None] * k, 2 * math.pi)).to(dtype)
        if "r3" in disc:
            ph3 = np.mod((self.inc_c * np.asarray(disc["r3"]))[:, None] * k, 2 * math.pi)
            self.sin3 = torch.from_numpy(np.sin(ph3)).to(dtype)
            self.ph3 = torch.from_numpy(ph3).to(dtype)
        if "bp_centre" in disc:
            ph = np.mod((self.inc_c * np.asarray(disc["bp_centre"]))[:, None] * k, 2 * math.pi)
            self.sin_bp = torch.from_numpy(np.sin(ph)).to(dtype)
            self.f0 = torch.from_numpy(440.0 * 2.0 ** ((self.pitch - 69.0) / 12.0))[:, None]


def render(b: Batch, cand: str, timbre: torch.Tensor, ex: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mono renders [batch, n] of the candidate voice (schema-2 voice when extras are off)."""
    nb = b.nb
    tb = timbre.to(b.dtype)

    def col(name):
        return tb[:, _T[name] : _T[name] + 1]

    # The schema-2 envelope: linear in amplitude (env_curve 0), as when it was screened.
    env = _envelope(nb, col("attack_s"), col("decay_s"), col("sustain"), col("release_s"),
                    torch.zeros_like(col("attack_s")))
    decay_line = (1.0 - nb.t / col("index_decay_s")).clamp_min(0.0)
    index = col("mod_index") + col("index_peak") * decay_line
    phase_c, sin_m = nb.phase_c, nb.sin_m
    if cand == "index-env":
        a = ex["index_env"].to(b.dtype)
        index = index * (1.0 - a + a * env)
    elif cand == "vibrato":
        t = b.k[None, :] / nb.sample_rate
        delay = ex["vib_delay"].double()
        ramp = ((t - delay) / 0.3).clamp(0.0, 1.0)
        dev = (ex["vib_depth"].double() * (math.log(2.0) / 1200.0)) * ramp * torch.sin(2 * math.pi * VIB_RATE * t)
        inc = torch.from_numpy(b.inc_c)[:, None] * (1.0 + dev)
        ph = torch.cumsum(inc, dim=1) - inc  # phase at sample k: sum of the increments before it
        phase_c = torch.remainder(ph, 2 * math.pi).to(b.dtype)
        sin_m = torch.sin(torch.remainder(ph * torch.from_numpy(b.ratio)[:, None], 2 * math.pi)).to(b.dtype)
    elif cand == "feedback":
        fb = ex["fb"].to(b.dtype)
        m = torch.sin(b.phm)
        for _ in range(FB_ITERS):
            m = torch.sin(b.phm + fb * m)
        sin_m = m
    if cand == "op3":
        i3 = (ex["idx3"] + ex["peak3"] * decay_line.double()).to(b.dtype)
        lay = b.disc["layout"]
        par = torch.tensor([x == "parallel" for x in lay])[:, None]
        stk = torch.tensor([x == "stack" for x in lay])[:, None]
        tone_par = torch.sin(phase_c + index * sin_m + i3 * b.sin3)
        tone_stk = torch.sin(phase_c + index * torch.sin(b.phm + i3 * b.sin3))
        # A second carrier at r3 modulated by the same modulator, level i3 / 16.
        tone_c2 = torch.sin(phase_c + index * sin_m) + (i3 / 16.0) * torch.sin(b.ph3 + index * sin_m)
        tone = torch.where(par, tone_par, torch.where(stk, tone_stk, tone_c2))
    else:
        tone = torch.sin(phase_c + index * sin_m)
    out = tone + col("noise_level") * (1.0 - nb.t / col("noise_decay_s")).clamp_min(0.0) * nb.noise
    if cand == "bandnoise":
        pos = (b.k[None, :] / nb.sample_rate) * (8.0 * b.f0) * ex["bp_width"].double()
        pos = torch.remainder(pos, float(_LP_N))
        i0 = pos.floor()
        frac = pos - i0
        i0 = i0.long()
        lp = _LP_T[i0] * (1 - frac) + _LP_T[i0 + 1] * frac
        c0 = torch.tensor(b.disc["bp_centre"])[:, None] == 0
        carrier = torch.where(c0, torch.ones_like(b.sin_bp), b.sin_bp * math.sqrt(2.0))
        out = out + ex["bp_level"].to(b.dtype) * lp.to(b.dtype) * carrier
    return nb.amp * env * out


def _ex_to_learn(cand, vals: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    out = {}
    for name, (_lo, _hi, _, off) in EXTRAS[cand].items():
        v = torch.as_tensor(np.asarray(vals[name], dtype=np.float64))
        out[name] = torch.log(v + off) if off is not None else v
    return out


def _ex_from_learn(cand, u: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, (lo, hi, _, off) in EXTRAS[cand].items():
        v = torch.exp(u[name]) - off if off is not None else u[name]
        out[name] = v.clamp(lo, hi)
    return out


def _current(cand, u0, u_free, ue) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The physical timbre and extras of a fit's current learning-space values."""
    u = u0.clone()
    u[:, _MASK] = u_free
    return from_learning(u), _ex_from_learn(cand, ue)


def _off(cand, n) -> dict[str, np.ndarray]:
    return {name: np.full((n, 1), spec[2]) for name, spec in EXTRAS[cand].items()}


def _screen(cand, y, pitch, vel, start) -> tuple[dict, dict]:
    """Per note, the discrete values (and extras' starts) whose render is nearest."""
    n = len(pitch)
    targets = SpectralTargets(y, FIT_FFT)
    t = torch.from_numpy(start)
    ratio = start[:, _T["mod_ratio"]]
    if cand == "op3":
        grid = [(lay, r, i) for lay in LAYOUTS for r in OP3_RATIOS for i in (0.5, 2.0)]
    elif cand == "bandnoise":
        grid = [(c, w, lev) for c in BP_CENTRES for w in (0.25, 1.0) for lev in (0.1, 0.4)]
    elif cand == "vibrato":
        # Its gradient is nil at depth 0 (vibrato up and down sound alike): start from a grid.
        grid = [(depth, delay) for depth in (0.0, 10.0, 25.0) for delay in (0.0, 0.4)]
    else:
        return {}, _off(cand, n)
    best = np.full(n, np.inf)
    choice: list = [None] * n
    for g in grid:
        if cand == "op3":
            disc = {"layout": [g[0]] * n, "r3": [g[1]] * n}
            ex = {"idx3": np.full((n, 1), g[2]), "peak3": np.zeros((n, 1))}
        elif cand == "vibrato":
            disc = {}
            ex = {"vib_depth": np.full((n, 1), g[0]), "vib_delay": np.full((n, 1), g[1])}
        else:
            disc = {"bp_centre": [g[0]] * n}
            ex = {"bp_level": np.full((n, 1), g[2]), "bp_width": np.full((n, 1), g[1])}
        b = Batch(pitch, vel, ratio, disc)
        with torch.no_grad():
            d = spectral_loss(targets, render(b, cand, t, {k: torch.from_numpy(v) for k, v in ex.items()})).numpy()
        for i in np.flatnonzero(d < best):
            best[i] = d[i]
            choice[i] = (g, {k: v[i] for k, v in ex.items()})
    if cand == "op3":
        disc = {"layout": [c[0][0] for c in choice], "r3": [c[0][1] for c in choice]}
    elif cand == "vibrato":
        disc = {}
    else:
        disc = {"bp_centre": [c[0][0] for c in choice]}
    ex = {k: np.stack([c[1][k] for c in choice]) for k in EXTRAS[cand]}
    return disc, ex


def fit(cand, y, pitch, vel, start, steps, lr=0.05):
    """Refit a batch: (timbres [n, 10], extras {name: [n, 1]}, discrete {name: [n]},
    spectral distance [n] by all four FFT sizes)."""
    if cand == "v2-grid":
        b = Batch(pitch, vel, start[:, _T["mod_ratio"]], {})
        with torch.no_grad():
            x = render(b, "v2", torch.from_numpy(start), {}).numpy()
        return start, {}, {}, spectral_distance(y, x)
    disc, ex0 = _screen(cand, y, pitch, vel, start)
    b = Batch(pitch, vel, start[:, _T["mod_ratio"]], disc)
    targets = SpectralTargets(y, FIT_FFT)
    u0 = to_learning(torch.from_numpy(start)).float()
    u_free = u0[:, _MASK].clone().requires_grad_(True)
    ue = {k: v.clone().float().requires_grad_(True) for k, v in _ex_to_learn(cand, ex0).items()}
    opt = torch.optim.Adam([u_free, *ue.values()], lr=lr)
    best_d = np.full(len(pitch), np.inf)
    best_t = start.copy()
    best_e = {k: np.asarray(v, dtype=np.float64).copy() for k, v in ex0.items()}
    for step in range(steps + 1):
        timbre, exv = _current(cand, u0, u_free, ue)
        d = spectral_loss(targets, render(b, cand, timbre, exv))
        with torch.no_grad():
            dd = d.detach().double().numpy()
            better = dd < best_d
            best_d = np.where(better, dd, best_d)
            best_t[better] = timbre.detach().double().numpy()[better]
            for k, v in exv.items():
                best_e[k][better] = v.detach().double().numpy()[better]
        if step == steps:
            break
        projected_step(opt, d.sum(), u_free, _U_LO, _U_HI)
    with torch.no_grad():
        x = render(
            Batch(pitch, vel, start[:, _T["mod_ratio"]], disc, dtype=torch.float64), cand,
            torch.from_numpy(best_t), {k: torch.from_numpy(v) for k, v in best_e.items()},
        ).numpy()
    return best_t, best_e, disc, spectral_distance(y, x)


def _family_patch(cand, timbres, extras, disc, idx):
    """The family's patch: discrete values by majority, continuous by learning-space median."""
    idx = np.asarray(idx)
    d_out = {}
    if disc:
        keys = list(disc)
        combos = [tuple(disc[k][i] for k in keys) for i in idx]
        mode = Counter(combos).most_common(1)[0][0]
        idx = np.array([i for i, c in zip(idx, combos) if c == mode])
        d_out = dict(zip(keys, mode))
    u = to_learning(torch.from_numpy(timbres[idx])).numpy()
    t = from_learning(torch.from_numpy(np.median(u, axis=0)[None])).numpy()[0]
    e = {}
    if extras:
        ue = _ex_to_learn(cand, {k: v[idx] for k, v in extras.items()})
        e = {k: v.median(dim=0).values[None] for k, v in ue.items()}
        e = {k: v.numpy() for k, v in _ex_from_learn(cand, e).items()}
    return t, e, d_out


def _by_family(records) -> dict[str, list[int]]:
    by_f = defaultdict(list)
    for i, r in enumerate(records):
        by_f[r["family"]].append(i)
    return by_f


def joint_patches(cand, records, audio, patches, steps, lr=0.05):
    """Per family, one patch fitted to all of the family's notes at once (Adam on the mean
    spectral loss, from the family's median patch; its discrete values kept)."""
    out = {}
    for fam, idx in _by_family(records).items():
        t0, e0, d0 = patches[fam]
        n = len(idx)
        pitch = [records[i]["pitch"] for i in idx]
        vel = [records[i]["velocity"] for i in idx]
        b = Batch(pitch, vel, [t0[_T["mod_ratio"]]] * n, {k: [v] * n for k, v in d0.items()})
        targets = SpectralTargets(audio[idx], FIT_FFT)
        u0 = to_learning(torch.from_numpy(t0[None])).float()
        u_free = u0[:, _MASK].clone().requires_grad_(True)
        ue = {k: v.clone().float().requires_grad_(True) for k, v in _ex_to_learn(cand, e0).items()}
        opt = torch.optim.Adam([u_free, *ue.values()], lr=lr)
        best = (np.inf, t0, e0)
        for step in range(steps + 1):
            timbre, exv = _current(cand, u0, u_free, ue)
            loss = spectral_loss(
                targets, render(b, cand, timbre.expand(n, -1), {k: v.expand(n, -1) for k, v in exv.items()})
            ).mean()
            if float(loss.detach()) < best[0]:
                best = (
                    float(loss.detach()),
                    timbre.detach().double().numpy()[0],
                    {k: v.detach().double().numpy() for k, v in exv.items()},
                )
            if step == steps:
                break
            projected_step(opt, loss, u_free, _U_LO, _U_HI)
        out[fam] = (best[1], best[2], d0)
    return out


def ceiling(cand, records, audio_feats, timbres, extras, disc, families, patches=None):
    """(accuracy, own distance, patches, accuracy's standard error over the instruments) of
    one patch per family: ``patches`` as given, or the families' medians."""
    by_f = _by_family(records)
    if patches is None:
        patches = {f: _family_patch(cand, timbres, extras, disc, by_f[f]) for f in families}
    n = len(families)
    t = np.stack([patches[f][0] for f in families])
    ex = {k: torch.from_numpy(np.stack([patches[f][1][k][0] for f in families])) for k in (extras or {})}
    dk = {k: [patches[f][2][k] for f in families] for k in (disc or {})}
    hits, own = [], []
    per_inst: dict[str, list[bool]] = defaultdict(list)
    for i, r in enumerate(records):
        b = Batch([r["pitch"]] * n, [r["velocity"]] * n, t[:, _T["mod_ratio"]], dk, dtype=torch.float64)
        with torch.no_grad():
            x = render(b, "v2" if cand == "v2-grid" else cand, torch.from_numpy(t), ex).numpy()
        d = mel_l1(mel_features(x), audio_feats[i])
        hits.append(families[int(np.argmin(d))] == r["family"])
        per_inst[r["instrument"]].append(hits[-1])
        own.append(float(d[families.index(r["family"])]))
    return float(np.mean(hits)), float(np.mean(own)), patches, _standard_error(per_inst)


def _extra_kernels():
    """Each candidate's extra work per block, compiled in the form of the engine's voice
    kernel (``engine.kernel._render_chunk``): per voice, plain loops over the frames on
    1-D float64 rows, its polynomial sine. Built on first use (numba compiles them)."""
    import numba

    from engine.kernel import _FASTMATH, _sin

    jit = numba.njit(fastmath=_FASTMATH)

    @jit
    def index_env(index, env, a):  # index *= 1 - a + a * envelope
        for v in range(index.shape[0]):
            row, e, av = index[v], env[v], a[v]
            for k in range(row.shape[0]):
                row[k] *= 1.0 - av + av * e[k]

    @jit
    def tone(y, pc, pm, inc_c, inc_m, index):  # the kernel's two-operator tone loop
        for v in range(y.shape[0]):
            row = y[v]
            for k in range(row.shape[0]):
                row[k] = _sin(pc[v] + inc_c[v] * k + index[v, k] * _sin(pm[v] + inc_m[v] * k))

    @jit
    def vibrato(y, pc, pm, inc_c, inc_m, q, index):  # the same, both phase lines bent
        for v in range(y.shape[0]):
            row, qv = y[v], q[v]
            for k in range(row.shape[0]):
                bend = qv * k * k
                row[k] = _sin(pc[v] + inc_c[v] * k + bend + index[v, k] * _sin(pm[v] + inc_m[v] * k + 2.0 * bend))

    @jit
    def bandnoise(y, lp, pos, rate, pc, inc_c, centre, level):  # low-passed table, read, ring-modulated
        for v in range(y.shape[0]):
            row = y[v]
            for k in range(row.shape[0]):
                x = pos[v] + rate[v] * k
                i = int(x)
                f = x - i
                n = lp[i] + f * (lp[i + 1] - lp[i])
                row[k] += level[v] * n * _sin(centre[v] * (pc[v] + inc_c[v] * k))

    @jit
    def feedback(y, scratch, pm, inc_m, fb, iters):  # m = sin(phi + fb * m), fixed-point steps
        for v in range(y.shape[0]):
            row, phi = y[v], scratch[v]
            for k in range(row.shape[0]):
                phi[k] = pm[v] + inc_m[v] * k
                row[k] = _sin(phi[k])
            for _ in range(iters):  # each step a plain loop over the frames, as the kernel's
                for k in range(row.shape[0]):
                    row[k] = _sin(phi[k] + fb[v] * row[k])

    return index_env, tone, vibrato, bandnoise, feedback


def rt_cost(voices: int = 64, frames: int = 128, reps: int = 2000) -> dict[str, float]:
    """Median microseconds per block, back to back, at ``voices`` x ``frames``: the
    engine's whole block (``VoiceBank.render``, the compiled kernel) with schema 2's
    values and with the third operator on (built), and beside them each unbuilt
    candidate's extra work, compiled in the kernel's form (:func:`_extra_kernels`). An
    estimate of what each would add: paced blocks cost more (cold caches), and the
    target is 267 us paced at 64 voices."""
    from engine.voices import VoiceBank

    rng = np.random.default_rng(0)
    t = TIMBRE_SPACE.default.copy()
    t[:10] = (0.01, 0.3, 0.7, 0.3, 2.0, 1.5, 2.0, 8.0, 0.1, 8.0)  # schema 2's values, the third operator off
    t3 = t.copy()
    t3[[TIMBRE_NAMES.index(n) for n in ("op3_ratio", "op3_index", "op3_peak")]] = (3.0, 1.0, 2.0)
    banks = {}
    for name, row in (("v2 block (engine)", t), ("v3 block, third operator on (engine)", t3)):
        vb = VoiceBank(voices, 48000)
        for _ in range(voices):
            vb.add()
        vb.set_timbre(slice(None), np.tile(row, (voices, 1)), fresh=True)
        vb.held[:] = 1.0
        vb.mod_scale[:] = 1.0
        vb.amp[:] = 0.5
        vb.inc_c[:] = 2 * np.pi * rng.uniform(100, 1000, voices) / 48000
        banks[name] = vb
    out = np.zeros((frames, 2), np.float32)

    def rows(lo=0.0, hi=1.0):
        return rng.uniform(lo, hi, (voices, frames))

    def per_voice(lo=0.0, hi=1.0):
        return rng.uniform(lo, hi, voices)

    index_env, tone, vibrato, bandnoise, feedback = _extra_kernels()
    y, env, index, scratch = rows(-1, 1), rows(), rows(0, 4), rows()
    pc, pm, inc_c, inc_m = per_voice(0, 6), per_voice(0, 6), per_voice(0.01, 0.1), per_voice(0.01, 0.2)
    lp = _LP.astype(np.float64)
    pos = rng.uniform(0, _LP_N - 4096, voices)
    per_voice_a, q, rate = per_voice(), per_voice(0, 1e-6), per_voice(0.5, 8.0)
    centre, level, fb = per_voice(1, 5), per_voice(0, 0.2), per_voice(0, 0.95)
    work = {
        "index follows envelope (extra)": lambda: index_env(index, env, per_voice_a),
        "tone loop (engine's, for the vibrato's difference)": lambda: tone(y, pc, pm, inc_c, inc_m, index),
        "tone loop with vibrato (its phase lines bent)": lambda: vibrato(y, pc, pm, inc_c, inc_m, q, index),
        "band-pass noise (extra)": lambda: bandnoise(y, lp, pos, rate, pc, inc_c, centre, level),
        f"feedback, {FB_ITERS} steps (extra)": lambda: feedback(y, scratch, pm, inc_m, fb, FB_ITERS),
    }
    res = {}
    for name, fn in [(n, (lambda vb=vb: vb.render(out))) for n, vb in banks.items()] + list(work.items()):
        for _ in range(50):
            fn()
        ts = np.empty(reps)
        for i in range(reps):
            t0 = time.perf_counter()
            fn()
            ts[i] = time.perf_counter() - t0
        res[name] = round(float(np.median(ts)) * 1e6, 1)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a dataset build with the evaluation's NSynth notes")
    ap.add_argument("--candidates", default="v2-grid,v2,index-env,vibrato,bandnoise,op3,feedback")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the table here (JSON)")
    ap.add_argument("--joint", action="store_true",
                    help="also judge one patch per family fitted jointly to all its notes "
                    "(from the median patch, its discrete values kept)")
    ap.add_argument("--op3-layouts", default=",".join(LAYOUTS),
                    help=f"the layouts op3's grid may choose among (of {', '.join(LAYOUTS)})")
    ap.add_argument("--instruments", choices=("eval", "all"), default="eval",
                    help="judge the evaluation's ten instruments (one per family) or every labelled "
                    "NSynth instrument of --data (several per family: a family's ceiling, not an instrument's)")
    ap.add_argument("--rt-cost", action="store_true",
                    help="only time the engine's block and each candidate's extra work, "
                    "compiled in the kernel's form (64 voices, 128 frames)")
    args = ap.parse_args(argv)
    layouts = tuple(x for x in args.op3_layouts.split(",") if x)
    if not layouts or set(layouts) - set(LAYOUTS):
        raise SystemExit(f"--op3-layouts: choose among {', '.join(LAYOUTS)}, got {args.op3_layouts!r}")
    globals()["LAYOUTS"] = layouts  # read by _screen's grid and the renders
    torch.set_num_threads(args.threads)
    if args.rt_cost:
        res = rt_cost()
        print("| work at 64 voices x 128 frames | median us per block |")
        print("|---|---|")
        for name, us in res.items():
            print(f"| {name} | {us:.1f} |")
        return 0
    records = [
        r for r in read_manifest(Path(args.data) / "manifest.jsonl")
        if r["dataset"] == "nsynth" and r["family"] in NSYNTH_FAMILIES
        and (args.instruments == "all" or r["instrument"] in EVAL_INSTRUMENTS)
    ]
    if not records:
        raise SystemExit(f"{args.data} has no labelled NSynth notes of the instruments asked for ({args.instruments})")
    families = [f for f in NSYNTH_FAMILIES if f in {r["family"] for r in records}]
    audio = np.stack([load_audio(r["audio_path"]) for r in records])
    feats = mel_features(audio)
    start = manifest_timbres(records)
    pitch = np.array([r["pitch"] for r in records], dtype=np.float64)
    vel = np.array([r["velocity"] for r in records], dtype=np.float64)
    print(f"{len(records)} notes of {len(set(r['instrument'] for r in records))} instruments, "
          f"{len(families)} families", flush=True)
    rows = []
    for cand in args.candidates.split(","):
        if cand not in EXTRAS and cand != "v2-grid":
            raise SystemExit(f"unknown candidate {cand!r}; known: v2-grid, {', '.join(EXTRAS)}")
        t0 = time.time()
        timbres = np.empty_like(start)
        extras = {k: np.empty((len(records), 1)) for k in EXTRAS.get(cand, {})}
        disc: dict[str, list] = defaultdict(list)
        dist = np.empty(len(records))
        for s in range(0, len(records), args.batch):
            sl = slice(s, s + args.batch)
            t, e, d, dd = fit(cand, audio[sl], pitch[sl], vel[sl], start[sl], args.steps)
            timbres[sl] = t
            for k, v in e.items():
                extras[k][sl] = v
            for k, v in d.items():
                disc[k] += list(v)
            dist[sl] = dd
        fit_s = time.time() - t0
        acc, own, patches, se = ceiling(cand, records, feats, timbres, extras, dict(disc), families)
        row = {
            "candidate": cand,
            "fit_distance": round(float(dist.mean()), 4),
            "ceiling_accuracy": round(acc, 4),
            "ceiling_accuracy_se": round(se, 4),
            "ceiling_own_distance": round(own, 4),
            "fit_s": round(fit_s, 1),
            "family_patches": {
                f: {
                    **{n: round(float(v), 4) for n, v in zip(TIMBRE_NAMES, p[0])},
                    **{k: round(float(v[0, 0]), 4) for k, v in p[1].items()},
                    **{k: v for k, v in p[2].items()},
                }
                for f, p in patches.items()
            },
        }
        if args.joint:
            t1 = time.time()
            jp = joint_patches("v2" if cand == "v2-grid" else cand, records, audio, patches, args.steps)
            jacc, jown, *_ = ceiling(cand, records, feats, timbres, extras, dict(disc), families, jp)
            row["joint_ceiling_accuracy"] = round(jacc, 4)
            row["joint_ceiling_own_distance"] = round(jown, 4)
            print(f"{cand:10s} joint family fit: ceiling accuracy {jacc:.3f}  own distance {jown:.4f}  "
                  f"({time.time() - t1:.0f} s)", flush=True)
        if extras:
            row["extras_median_per_note"] = {k: round(float(np.median(v)), 4) for k, v in extras.items()}
        if disc:
            row["discrete_counts"] = {k: dict(Counter(map(str, v)).most_common(6)) for k, v in disc.items()}
        rows.append(row)
        print(f"{cand:10s} fit distance {row['fit_distance']:.4f}  ceiling accuracy {acc:.3f} ± {se:.3f}  "
              f"own distance {own:.4f}  ({fit_s:.0f} s)", flush=True)
    base = next((r for r in rows if r["candidate"] == "v2"), None)
    print()
    joint = "| joint ceiling accuracy | joint own distance " if args.joint else ""
    print(f"| candidate | fit distance | vs v2 | ceiling accuracy | own distance {joint}| fit s |")
    print("|---|---|---|---|---|" + ("---|---|" if args.joint else "") + "---|")
    for r in rows:
        rel = f"{(r['fit_distance'] / base['fit_distance'] - 1) * 100:+.1f}%" if base else "-"
        j = (f"{r['joint_ceiling_accuracy']:.3f} | {r['joint_ceiling_own_distance']:.4f} | "
             if args.joint else "")
        print(f"| {r['candidate']} | {r['fit_distance']:.4f} | {rel} | "
              f"{r['ceiling_accuracy']:.3f} ± {r['ceiling_accuracy_se']:.3f} | "
              f"{r['ceiling_own_distance']:.4f} | {j}{r['fit_s']:.0f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"notes": len(records), "steps": args.steps, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
