"""The engine's voice in torch: a differentiable render for fitting timbres to real notes.

One definition of the sound, two implementations: :func:`render` computes, sample for
sample, what ``engine.render_notes`` renders (``docs/engine.md``; the test suite checks
that they agree), but as a torch graph, so that the continuous timbre values can be fitted
by gradient descent on a multi-resolution spectral loss. The FM phases depend only on the
pitch and the (discrete, grid-searched) ratios, so :class:`NoteBatch` computes them once;
each optimisation step then costs one sine (two or three with a third operator), the
noise band's table reads where a note has one, and the spectrograms. A note with harmonic
spectra (schema 5; ``engine.spectrum``) builds its three carrier tables once a step
(``[batch, 3, TABLE_SIZE + 1]``, linear in the harmonics' amplitudes) and reads them at
the carrier's phase with the engine's wrap and linear interpolation, so gradients reach
the levels in dB through the tables and the phase through the interpolation weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from engine import TIMBRE_NAMES, TIMBRE_SPACE
from engine import op3_layout as _layout
from engine import spectrum as _spectrum
from engine.schema import DB_FLOOR, HELD_NAMES, ONSET_NAMES
from engine.voices import MAX_CHUNK, NOISE, NOISE_LP, NOISE_TABLE_SIZE, noise_start
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S
from training.spectral import FFT_SIZES, distance_to, reference, stft_magnitudes

__all__ = [
    "NoteBatch", "render", "spectral_loss", "SpectralTargets", "fit_batch", "FitBatchResult", "projected_step",
]

_T = {name: i for i, name in enumerate(TIMBRE_NAMES)}
# The engine's table of bounds and transforms (engine.schema.TIMBRE_SPACE), as tensors;
# tests/training/test_torchsynth.py holds these transforms to the engine's.
_LO = torch.from_numpy(TIMBRE_SPACE.minimum.copy())
_HI = torch.from_numpy(TIMBRE_SPACE.maximum.copy())
_OFFSET = torch.from_numpy(TIMBRE_SPACE.offset.copy())
_LOG = torch.from_numpy(TIMBRE_SPACE.log.copy())
_DEFAULT3 = float(TIMBRE_SPACE.default[_T["op3_ratio"]])
_DEFAULT_LAYOUT = float(TIMBRE_SPACE.default[_T["op3_layout"]])
_DEFAULT_CENTRE = float(TIMBRE_SPACE.default[_T["band_centre"]])
_NOISE_LP = torch.from_numpy(NOISE_LP.copy())
_BASIS = torch.from_numpy(_spectrum.BASIS.copy())
_ONSET_COLS = torch.from_numpy(_spectrum.ONSET_COLS.copy())
_HELD_COLS = torch.from_numpy(_spectrum.HELD_COLS.copy())
_LOG2K = torch.log2(torch.arange(1, _spectrum.N_HARMONICS + 1, dtype=torch.float64))
_K = torch.arange(1, _spectrum.N_HARMONICS + 1, dtype=torch.float64)
#: How far a fit's unit step moves a value, where its learning-space unit is far from a
#: step's worth (Adam moves each value by about its rate a step): levels in dB, 10 dB.
_STEP_SCALE = torch.ones(len(TIMBRE_NAMES), dtype=torch.float64)
for _name in (*ONSET_NAMES, *HELD_NAMES, "darken_db"):
    _STEP_SCALE[_T[_name]] = 10.0
#: Values a fit holds fixed (chosen from a grid outside it).
_DISCRETE = ("mod_ratio", "op3_ratio", "op3_layout", "band_centre")


def to_learning(t: torch.Tensor) -> torch.Tensor:
    """Physical timbre ``[..., n_timbre]`` -> learning space (the schema's transforms)."""
    off = _OFFSET.to(t.dtype)
    return torch.where(_LOG, torch.log(t.clamp_min(0) + off), t)


def from_learning(u: torch.Tensor) -> torch.Tensor:
    """Learning space -> physical timbre, clamped into the schema's ranges.

    The clamp passes gradients through as if it were not there: a fit keeps its values
    in range itself (:func:`projected_step`), so what the clamp catches is rounding, as
    ``exp(log(0.01)) - 0.01`` a hair below 0 in float32, where a plain clamp's gradient of
    0 would keep a level at its lower bound (a noise band at 0) from ever being turned up."""
    off = _OFFSET.to(u.dtype)
    t = torch.where(_LOG, torch.exp(u) - off, u)
    clamped = torch.minimum(torch.maximum(t, _LO.to(u.dtype)), _HI.to(u.dtype))
    return t + (clamped - t).detach()


class NoteBatch:
    """The fixed part of a batch of renders: pitch, velocity, ratios, the phases and noise.
    The timbre values it holds are named as in the schema (and the engine's voice fields).

    Args:
        pitch, velocity: [batch] MIDI values.
        mod_ratio: [batch] modulator ratios (fixed during a fit).
        op3_ratio, op3_layout: [batch] the third operator's ratios and layouts (fixed
            during a fit; None: the schema defaults, the operator then only sounds with an
            op3_index or op3_peak).
        band_centre: [batch] the noise band's centres (fixed during a fit; None: the
            default).
        sample_rate, hold_s, tail_s: as ``engine.render_notes``.
        dtype: float32 for fitting, float64 to compare with the engine.
    """

    def __init__(
        self,
        pitch,
        velocity,
        mod_ratio,
        sample_rate: int = SAMPLE_RATE,
        hold_s: float = HOLD_S,
        tail_s: float = TAIL_S,
        dtype: torch.dtype = torch.float32,
        op3_ratio=None,
        op3_layout=None,
        band_centre=None,
    ) -> None:
        pitch = np.atleast_1d(np.asarray(pitch, dtype=np.float64))
        b = pitch.shape[0]
        velocity = np.broadcast_to(np.asarray(velocity, dtype=np.float64), (b,))
        ratio = np.broadcast_to(np.asarray(mod_ratio, dtype=np.float64), (b,))
        ratio3 = np.broadcast_to(np.asarray(_DEFAULT3 if op3_ratio is None else op3_ratio, dtype=np.float64), (b,))
        layout = np.broadcast_to(
            _layout(np.asarray(_DEFAULT_LAYOUT if op3_layout is None else op3_layout, dtype=np.float64)), (b,)
        )
        self.sample_rate = int(sample_rate)
        self.hold = int(round(hold_s * sample_rate))
        self.n = self.hold + int(round(tail_s * sample_rate))
        self.dtype = dtype
        k = np.arange(self.n, dtype=np.float64)
        inc_c = 2.0 * math.pi * 440.0 * 2.0 ** ((pitch - 69.0) / 12.0) / sample_rate
        # Phases wrapped in float64 as the engine keeps them, then as the render's dtype.
        phase_c = np.mod(inc_c[:, None] * k, 2.0 * math.pi)
        phase_m = np.mod((inc_c * ratio)[:, None] * k, 2.0 * math.pi)
        self.phase_c = torch.from_numpy(phase_c).to(dtype)
        self.phase_m = torch.from_numpy(phase_m).to(dtype)
        self.sin_m = torch.from_numpy(np.sin(phase_m)).to(dtype)
        self._op3_ratio = ratio3
        self.op3_layout = np.array(layout)
        self._lay = [torch.from_numpy(self.op3_layout == v)[:, None] for v in (0.0, 1.0, 2.0)]
        self.amp = torch.from_numpy((velocity / 127.0) ** 1.5).to(dtype)[:, None]
        starts = np.array([noise_start(p) for p in pitch])
        idx = (starts[:, None] + np.arange(self.n)) % NOISE_TABLE_SIZE
        self.noise = torch.from_numpy(NOISE[idx]).to(dtype)
        self.t = torch.from_numpy(k / sample_rate).to(dtype)[None, :]
        self.ratio = torch.from_numpy(np.array(ratio))
        self.batch = b
        # The noise band's centres and where its table read starts (as the engine's).
        self._band_centre = np.broadcast_to(
            np.asarray(_DEFAULT_CENTRE if band_centre is None else band_centre, dtype=np.float64), (b,)
        )
        self._inc_c = inc_c
        self.inc_c = torch.from_numpy(inc_c)[:, None]
        self.band_start = torch.from_numpy(starts.astype(np.float64))[:, None]
        self.k = torch.from_numpy(k)[None, :]
        # Each held frame's chunk start (the engine renders 512 frames at a time from
        # note-on and decides per chunk whether the envelope's decay is still under way).
        self.t_chunk = torch.from_numpy((k[: self.hold] // MAX_CHUNK) * MAX_CHUNK / sample_rate).to(dtype)[None, :]

    # The third operator's phase and the band's carrier, made on first use: a batch pays
    # only for what its notes sound (a schema-2 refit for neither, the operator's grid for
    # no band).
    @cached_property
    def _phase_3(self) -> np.ndarray:
        return np.mod((self._inc_c * self._op3_ratio)[:, None] * self.k.numpy(), 2.0 * math.pi)

    @cached_property
    def phase_3(self) -> torch.Tensor:
        """The third operator's phase [batch, n], wrapped in float64, in the render's dtype."""
        return torch.from_numpy(self._phase_3).to(self.dtype)

    @cached_property
    def sin_3(self) -> torch.Tensor:
        return torch.from_numpy(np.sin(self._phase_3)).to(self.dtype)

    @cached_property
    def cos_b(self) -> torch.Tensor:
        """The noise band's carrier cos(band_centre * phase_c) [batch, n]."""
        ph = np.mod((self._inc_c * self._band_centre)[:, None] * self.k.numpy(), 2.0 * math.pi)
        return torch.from_numpy(np.cos(ph)).to(self.dtype)


def _envelope(nb: NoteBatch, attack, decay, sustain, release, curve) -> torch.Tensor:
    """The engine's ADSR, [batch, n]: attack and decay lines over the sustain floor while
    held; from the note-off, a line from the last held level to 0. ``curve`` (env_curve)
    mixes into the decay and release lines ones linear in dB (96 dB over their times,
    1 until the attack ends), as the engine does: the held mix only in the 512-frame
    chunks that start before the decay ends (the engine's chunks; past that the sustain
    floor is all there is), the release's for the whole tail."""
    sr = nb.sample_rate
    t = nb.t[:, : nb.hold]
    att = attack.clamp_min(1.0 / sr)
    dec = decay.clamp_min(1.0 / sr)
    p = t / att
    q = 1.0 - (1.0 - sustain) * (t - attack) / dec
    shaped = curve.requires_grad or bool((curve != 0).any())
    if shaped:
        g = torch.pow(10.0, -4.8 * (t - attack).clamp_min(0.0) / dec)
        in_decay = nb.t_chunk < attack + dec
        # At a curve of 0 the mix is q exactly, and its gradient in the curve is not 0.
        q = torch.where(in_decay, q + curve * (g - q), q)
    held = torch.minimum(p, torch.maximum(q, sustain)).clamp_min(0.0)
    level = held[:, -1:]
    r = nb.t[:, : nb.n - nb.hold]
    rdur = release.clamp_min(1.0 / sr)
    rel = level * (1.0 - r / rdur)
    if shaped:
        g = level * torch.pow(10.0, -4.8 * r / rdur)
        rel = rel + curve * (g - rel)
    return torch.cat([held, rel.clamp_min(0.0)], dim=1)


def _amplitudes(db: torch.Tensor) -> torch.Tensor:
    """Levels ``[batch, N_HARMONICS]`` in dB -> amplitudes at the power of a unit sine
    (``engine.spectrum.amplitudes``; a level at or below ``DB_FLOOR`` is 0, and so is its
    gradient)."""
    a = torch.where(db > DB_FLOOR, torch.pow(10.0, db / 20.0), torch.zeros_like(db))
    power = a.pow(2).sum(dim=-1, keepdim=True)
    safe = torch.where(power > 0, power, torch.ones_like(power)).sqrt()
    return torch.where(power > 0, a / safe, torch.zeros_like(a))


def _tables(nb: NoteBatch, tb: torch.Tensor) -> torch.Tensor:
    """The onset, held and dark tables of timbres ``tb [batch, n_timbre]`` at the batch's
    pitches, ``[batch, 3, TABLE_SIZE + 1]``, built as the engine's voices build them:
    normalised to unit power, then band-limited; the dark one is the held one darkened."""
    keep = (_K[None, :] < (2.0 * math.pi * _spectrum.BAND_LIMIT) / nb.inc_c).to(tb.dtype)
    on = _amplitudes(tb[:, _ONSET_COLS]) * keep
    held = _amplitudes(tb[:, _HELD_COLS]) * keep
    darken = tb[:, _T["darken_db"] : _T["darken_db"] + 1]
    dark = held * torch.pow(10.0, -darken * _LOG2K.to(tb.dtype) / 20.0)
    return torch.stack([on, held, dark], dim=1) @ _BASIS.to(tb.dtype)


def _carrier(nb: NoteBatch, tb: torch.Tensor, arg: torch.Tensor) -> torch.Tensor:
    """The harmonic carrier read at phase ``arg [batch, n]`` (radians): the three tables
    read with the engine's wrap and linear interpolation, mixed by ``engine.spectrum``'s
    weights (w_on from 1 to 0 over onset_s, d from 0 to 1 over darken_s). Where the onset
    spectrum is the held one, or darken_db is 0, the tables it mixes are equal, so the
    mix changes nothing, as the engine's skipping it, and still has a gradient."""
    size = _spectrum.TABLE_SIZE
    tables = _tables(nb, tb)
    x = arg * (size / (2.0 * math.pi))
    x = x - torch.floor(x.detach() / size) * size
    j = x.detach().floor().clamp(0, size - 1)
    f = (x - j)[:, None, :]
    idx = j.long()[:, None, :].expand(-1, 3, -1)
    lo = torch.gather(tables, 2, idx)
    read = lo + (torch.gather(tables, 2, idx + 1) - lo) * f
    t = nb.t
    d = (t / tb[:, _T["darken_s"] : _T["darken_s"] + 1]).clamp_max(1.0)
    w = (1.0 - t / tb[:, _T["onset_s"] : _T["onset_s"] + 1]).clamp_min(0.0)
    h = read[:, 1] + (read[:, 2] - read[:, 1]) * d
    return h + (read[:, 0] - h) * w


def render(nb: NoteBatch, timbre: torch.Tensor) -> torch.Tensor:
    """Mono renders ``[batch, n]`` of ``timbre [batch, n_timbre]`` (physical units, schema
    order) for the notes of ``nb``. ``timbre[:, mod_ratio]``, ``op3_ratio``,
    ``op3_layout`` and ``band_centre`` are ignored: those are the batch's."""
    tb = timbre.to(nb.dtype)

    def col(name):
        return tb[:, _T[name] : _T[name] + 1]

    env = _envelope(nb, col("attack_s"), col("decay_s"), col("sustain"), col("release_s"), col("env_curve"))
    decay = (1.0 - nb.t / col("index_decay_s")).clamp_min(0.0)
    index = col("mod_index") + col("index_peak") * decay
    i3 = col("op3_index") + col("op3_peak") * decay
    # Which notes read harmonic tables (the engine's choice, from the values as they are);
    # the others keep the sine, bit for bit the render before schema 5.
    tables = torch.from_numpy(~_spectrum.is_sine(tb.detach().cpu().numpy()))[:, None]
    harmonic = bool(tables.any())
    second = None
    if not i3.requires_grad and not bool((i3 != 0).any()):
        arg = nb.phase_c + index * nb.sin_m
    else:
        # The third operator by layout (docs/engine.md): 0 beside the modulator, 1 into it,
        # 2 a second carrier (always a sine) at a 16th of its index.
        par, stk, car2 = nb._lay
        s3 = i3 * nb.sin_3
        mod = index * torch.where(stk, torch.sin(nb.phase_m + s3), nb.sin_m)
        arg = nb.phase_c + mod + torch.where(par, s3, torch.zeros_like(s3))
        if bool(car2.any()):
            second = torch.where(car2, (i3 / 16.0) * torch.sin(nb.phase_3 + mod), torch.zeros_like(arg))
    tone = torch.sin(arg)
    if harmonic:
        tone = torch.where(tables, _carrier(nb, tb, arg), tone)
    if second is not None:
        tone = tone + second
    gain = col("noise_level") * (1.0 - nb.t / col("noise_decay_s")).clamp_min(0.0)
    out = tone + gain * nb.noise
    band = col("band_level")
    if band.requires_grad or bool((band != 0).any()):
        # The noise band: the low-passed table read between entries at 8 * width * f_c
        # entries a second (positions in float64, as the engine's), ring-modulated.
        rate = 8.0 * timbre[:, _T["band_width"] : _T["band_width"] + 1].double() * nb.inc_c / (2.0 * math.pi)
        pos = torch.remainder(nb.band_start + nb.k * rate, float(NOISE_TABLE_SIZE))
        j = pos.detach().floor().clamp_max(NOISE_TABLE_SIZE - 1)
        frac = (pos - j).to(nb.dtype)
        j = j.long()
        lo = _NOISE_LP[j].to(nb.dtype)
        lp = lo + (_NOISE_LP[j + 1].to(nb.dtype) - lo) * frac
        out = out + (band * math.sqrt(2.0)) * nb.cos_b * lp
    return nb.amp * env * out


def _specs(x: torch.Tensor, fft_sizes) -> list[torch.Tensor]:
    """|STFT| of loudness-normalised rows (as ``training.spectral.spectrograms``, in torch
    so that gradients flow)."""
    rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-8)
    return stft_magnitudes(x / rms, fft_sizes)


class SpectralTargets:
    """Spectrograms of a batch of real notes ``y [batch, n]``, computed once."""

    def __init__(self, y: np.ndarray | torch.Tensor, fft_sizes=FFT_SIZES) -> None:
        y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        self.fft_sizes = tuple(fft_sizes)
        self.refs = [reference(mag) for mag in _specs(y, self.fft_sizes)]


def spectral_loss(targets: SpectralTargets, x: torch.Tensor) -> torch.Tensor:
    """Per-row distance ``[batch]``: ``training.spectral``'s distance, differentiable."""
    total = 0.0
    for ref, mag in zip(targets.refs, _specs(x, targets.fft_sizes)):
        total = total + distance_to(*ref, mag)
    return total / len(targets.fft_sizes)


def projected_step(opt: torch.optim.Optimizer, loss: torch.Tensor, u: torch.Tensor, lo, hi) -> None:
    """One optimiser step on ``loss``, then ``u`` (learning-space values) projected back
    into ``[lo, hi]``, so that no value sits past its bound, where the clamp in
    :func:`from_learning` would give it no gradient."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        u.copy_(torch.maximum(torch.minimum(u, hi), lo))


@dataclass
class FitBatchResult:
    """Best timbres [batch, n_timbre] found, their distances and the starts' distances."""

    timbre: np.ndarray
    distance: np.ndarray
    start_distance: np.ndarray


def fit_batch(
    y: np.ndarray,
    pitch,
    velocity,
    start: np.ndarray,
    free: list[str] | tuple[str, ...],
    steps: int = 80,
    lr: float = 0.05,
    sample_rate: int = SAMPLE_RATE,
    hold_s: float = HOLD_S,
    tail_s: float = TAIL_S,
    fft_sizes: tuple[int, ...] = FFT_SIZES,
) -> FitBatchResult:
    """Fit the ``free`` timbre values of a batch of notes ``y [batch, n]`` by Adam on the
    spectral loss, in learning space, from ``start [batch, n_timbre]`` (physical units).
    The ratios, the layout and the band's centre stay as in ``start`` (grid-search them
    outside). Each note
    keeps the best timbre seen, so the result is never worse than its start."""
    unknown = [n for n in free if n not in _T or n in _DISCRETE]
    if unknown:
        raise ValueError(f"cannot fit {unknown}; fit any of {[n for n in TIMBRE_NAMES if n not in _DISCRETE]}")
    start = np.asarray(start, dtype=np.float64)
    nb = NoteBatch(pitch, velocity, start[:, _T["mod_ratio"]], sample_rate, hold_s, tail_s,
                   op3_ratio=start[:, _T["op3_ratio"]], op3_layout=start[:, _T["op3_layout"]],
                   band_centre=start[:, _T["band_centre"]])
    targets = SpectralTargets(y, fft_sizes)
    mask = torch.zeros(len(TIMBRE_NAMES), dtype=torch.bool)
    for name in free:
        mask[_T[name]] = True
    u0 = to_learning(torch.from_numpy(start))
    # The free values in steps' units (learning space / _STEP_SCALE), so that one rate
    # suits a sustain (0..1) and a level in dB (-80..0) alike.
    unit = _STEP_SCALE[mask].float()
    u_free = (u0[:, mask].float() / unit).clone().requires_grad_(True)
    # Steps are projected back into range in learning space, so no value ever sits past
    # its bound, where the clamp in from_learning would give it no gradient (a noise level
    # pushed below 0 would stay at 0 for good).
    u_lo = to_learning(_LO[None])[:, mask].float() / unit
    u_hi = to_learning(_HI[None])[:, mask].float() / unit
    opt = torch.optim.Adam([u_free], lr=lr)
    best_t = torch.from_numpy(start).clone()
    best_d = None
    start_d = None
    for step in range(steps + 1):
        u = u0.float().clone()
        u[:, mask] = u_free * unit
        timbre = from_learning(u)
        d = spectral_loss(targets, render(nb, timbre))
        with torch.no_grad():
            if best_d is None:
                best_d = d.detach().double().clone()
                start_d = best_d.clone()
            else:
                better = d.detach().double() < best_d
                best_d = torch.where(better, d.detach().double(), best_d)
                best_t[better] = timbre.detach().double()[better]
        if step == steps:
            break
        projected_step(opt, d.sum(), u_free, u_lo, u_hi)
    return FitBatchResult(best_t.numpy(), best_d.numpy(), start_d.numpy())
