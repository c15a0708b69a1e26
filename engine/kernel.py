"""The voices' compiled kernel: one loop over the sounding voices and a chunk's frames
(``_render_chunk``), the carrier tables' builder (``_build_tables``) and the voice
searches of the allocator (``find_note``, ``steal_victim``), compiled by numba and cached
on disk. The formulas are :mod:`engine.voices`' (and ``docs/engine.md``'s); the rows they
read are :mod:`engine.voice_layout`'s.

Rendering is one call of ``_render_chunk``, compiled by numba (cached on disk after its
first compile): per voice, a few scalar lines of set-up, then plain loops over the
chunk's frames that the compiler turns into SIMD code, in float64. A numpy version of the
same formulas, one whole-array operation at a time, spent most of a block in the
interpreter: 105-150 us a block at 64 voices, back to back, where the kernel takes 30-45 us
(``benchmarks/bench_engine.py``). A voice that does not use the index peak, the noise, the
third operator or the noise band (or whose decay is over) skips that work.

The envelope is piecewise linear, so within a block it is ``min(p, max(q, floor))`` of
three straight lines per voice: attack (p) and decay (q) with the sustain floor while the
key is held; after release p is out of reach, q is the release ramp and the floor is 0.
With ``env_curve`` (schema 5), q mixes in a line linear in dB, computed as a running
product from its exact value at the chunk's start (or at the attack's end within it).
A voice on a harmonic carrier reads its tables where the sine is taken
(``_harmonic_read``), one loop per case of onset and darkening (``_read_tables``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from engine import spectrum
from engine.schema import param
from engine.spectrum import TABLE_SIZE
from engine.voice_layout import (
    _LAYOUT_DIGEST,
    _S,
    LAYOUT_CARRIER2,
    LAYOUT_PARALLEL,
    LAYOUT_STACK,
    MAX_CHUNK,
    NOISE_TABLE_SIZE,
    SMOOTH_S,
    TWO_PI,
)

_INV_TWO_PI = 1.0 / TWO_PI
_LP_N = float(NOISE_TABLE_SIZE)
_LP_LAST = NOISE_TABLE_SIZE + 64 * MAX_CHUNK - 1  # the last entry with a right neighbour
_SQRT2 = math.sqrt(2.0)
_TABLE_SCALE = TABLE_SIZE / TWO_PI
_TABLE_MASK = TABLE_SIZE - 1  # a power of 2: the wrap is a mask
_BAND_LIMIT = spectrum.BAND_LIMIT
_DB_FLOOR = param("held_h1").minimum
_DB_TO_LN = math.log(10.0) / 20.0  # 10 ** (dB / 20) = exp(dB * _DB_TO_LN)
_SEMITONE_LN = math.log(2.0) / 12.0  # 2 ** (s / 12) = exp(s * _SEMITONE_LN)
# Floating-point liberties that let the compiler use SIMD (no NaN or infinity
# assumptions: a non-finite sample still reaches the limiter's check).
_FASTMATH = {"contract", "arcp", "nsz", "afn", "reassoc"}


@numba.njit(inline="always", fastmath=_FASTMATH)
def _glide(x0: float, target: float, alpha: float) -> float:
    """One chunk's step of a value gliding to its target (the one-pole glide), landing on
    the target once within 1e-9 of it (so that a settled voice skips the glide's work)."""
    x1 = x0 + (target - x0) * alpha
    return target if abs(x1 - target) < 1e-9 else x1


@numba.njit(inline="always", fastmath=_FASTMATH)
def _sin(x: float) -> float:
    """sin(x) to within 1e-9 for any phase the engine makes, in a form the compiler
    vectorises (libm's sin is one call per sample): reduce to [-pi, pi], fold into
    [0, pi/2], then the Taylor series to x^13."""
    r = x - math.floor(x * _INV_TWO_PI + 0.5) * TWO_PI
    a = abs(r)
    a = min(a, math.pi - a)
    a2 = a * a
    s = a * (
        1.0
        + a2
        * (
            -1.0 / 6.0
            + a2
            * (
                1.0 / 120.0
                + a2
                * (
                    -1.0 / 5040.0
                    + a2 * (1.0 / 362880.0 + a2 * (-1.0 / 39916800.0 + a2 * (1.0 / 6227020800.0)))
                )
            )
        )
    )
    return math.copysign(s, r)


def _render_chunk(st, n, m, sr, alpha, noise, noise_lp, tables, mix, scratch, out, col, per_voice,
                  send, busmix, bus, bus_col, fed):
    """Render m frames of the n sounding voices and move them on by m frames.

    ``st``: the state array [field, voice] (float64), read and updated in place.
    Mixed (``per_voice`` of shape [0, 0]): each voice, times its gain gliding to its
    target, is summed in ``mix`` [2, >= m] (float64), then added into
    ``out[col:col + m]`` [frames, 2] float32. Otherwise each voice's signal times its
    amplitude is written to ``per_voice[v, col:col + m]`` [n, frames] float32.
    ``scratch``: [7, >= m] float64 for the stages of one voice. ``noise`` and
    ``noise_lp``: the white noise table (extended by MAX_CHUNK) and the band's
    (``NOISE_LP`` extended by 64 * MAX_CHUNK). ``tables``: the voices' carrier tables
    ``[slot, buffer, 3, TABLE_SIZE + 1]`` (``VoiceBank.tables``).
    Send buses (``engine.effects``; ``bus`` of shape [0, 2, 0]: none): ``send`` [2,
    N_BUSES, 16] float64, each channel's send level now and its target (gliding as the
    gains do); a voice of a channel with a send adds its mixed signal times the level
    into ``busmix`` [2 * N_BUSES, >= m] (float64), which is added into
    ``bus[b, :, bus_col + col:bus_col + col + m]`` [N_BUSES, 2, frames] float32, and
    ``fed[b]`` is set to 1.
    Returns whether some released voice has finished (to be freed).
    """
    dt = m / sr
    inv_m = 1.0 / m
    floor_t = 1.0 / sr
    mixed = per_voice.shape[0] == 0
    any_done = False
    if mixed:
        mix[:, :m] = 0.0
    n_bus = bus.shape[0]
    if n_bus:
        busmix[:, :m] = 0.0
    for v in range(n):
        # Envelope lines: attack p, decay or release q, sustain floor f.
        att_s = st[_S.attack_s, v]
        att = max(att_s, floor_t)
        dec = max(st[_S.decay_s, v], floor_t)
        sus0 = st[_S.sustain, v]
        sus1 = sus0 + (st[_S.sustain_tgt, v] - sus0) * alpha
        st[_S.sustain, v] = sus1
        tau = st[_S.tau, v]
        rdur = rlev = 1.0
        if st[_S.released, v] > 0.0:
            rdur = max(st[_S.rel_dur, v], floor_t)
            rlev = st[_S.rel_level, v]
            p0, p1 = 2.0, 0.0
            q0 = rlev * (1.0 - st[_S.rel_t, v] / rdur)
            q1 = -rlev / (rdur * sr)
            f0, f1 = 0.0, 0.0
        else:
            p0, p1 = tau / att, floor_t / att
            if tau >= att_s + dec:
                q0, q1 = -1.0, 0.0
            else:
                drop = 1.0 - sus0
                q0 = 1.0 - drop * (tau - att_s) / dec
                q1 = -drop / (dec * sr)
            f0, f1 = sus0, (sus1 - sus0) * inv_m
        # Index (gliding), the modulator's ratio (gliding) and the phases.
        scale = st[_S.mod_scale, v]
        inc_c = st[_S.inc_c, v]
        vd0 = st[_S.vib, v]
        vd_tgt = st[_S.vib_tgt, v]
        if vd0 != 0.0 or vd_tgt != 0.0:
            # Vibrato: the chunk's pitch at the LFO's mid-chunk value (a step in
            # frequency, never in phase, each chunk), its depth gliding.
            vd1 = vd0 + (vd_tgt - vd0) * alpha
            st[_S.vib, v] = vd_tgt if abs(vd1 - vd_tgt) < 1e-9 else vd1
            vph = st[_S.vib_phase, v]
            vinc = st[_S.vib_inc, v]
            inc_c *= math.exp(0.5 * (vd0 + vd1) * _SEMITONE_LN * _sin(vph + 0.5 * vinc * m))
            st[_S.vib_phase, v] = (vph + vinc * m) % TWO_PI
        ratio = st[_S.mod_ratio, v] + (st[_S.mod_ratio_tgt, v] - st[_S.mod_ratio, v]) * alpha
        st[_S.mod_ratio, v] = ratio
        inc_m = inc_c * ratio
        idx0 = st[_S.mod_index, v]
        idx1 = idx0 + (st[_S.mod_index_tgt, v] - idx0) * alpha
        st[_S.mod_index, v] = idx1
        i0, i1 = idx0 * scale, (idx1 - idx0) * scale * inv_m
        xi0 = st[_S.x_index, v]
        xi_tgt = st[_S.x_index_tgt, v]
        if xi0 != 0.0 or xi_tgt != 0.0:
            # Expression's index (pressure, CC 74, a note's timbre), gliding, unscaled.
            xi1 = _glide(xi0, xi_tgt, alpha)
            st[_S.x_index, v] = xi1
            i0 += xi0
            i1 += (xi1 - xi0) * inv_m
        pm0, pc0 = st[_S.phase_m, v], st[_S.phase_c, v]
        t_on = st[_S.t_on, v]
        t_end = t_on + dt
        # Index peak: from peak at note-on down to 0 at index_decay_s, clipped at 0.
        pk0 = st[_S.index_peak, v]
        pk1 = pk0 + (st[_S.index_peak_tgt, v] - pk0) * alpha
        st[_S.index_peak, v] = pk1
        inv_pd = 1.0 / st[_S.index_decay_s, v]
        e0 = pk0 * scale * (1.0 - t_on * inv_pd)
        e1 = (pk1 * scale * (1.0 - t_end * inv_pd) - e0) * inv_m
        use_peak = (pk0 > 0.0 or pk1 > 0.0) and t_on < st[_S.index_decay_s, v]
        # Noise gain, the same shape over noise_decay_s.
        nl0 = st[_S.noise_level, v]
        nl1 = nl0 + (st[_S.noise_level_tgt, v] - nl0) * alpha
        st[_S.noise_level, v] = nl1
        inv_nd = 1.0 / st[_S.noise_decay_s, v]
        g0 = nl0 * (1.0 - t_on * inv_nd)
        g1 = (nl1 * (1.0 - t_end * inv_nd) - g0) * inv_m
        use_noise = (nl0 > 0.0 or nl1 > 0.0) and t_on < st[_S.noise_decay_s, v]
        npos = (int(np.rint(t_on * sr)) + int(st[_S.noise_first, v])) % NOISE_TABLE_SIZE
        # The third operator, where this voice uses it.
        x3 = st[_S.op3_index, v]
        x3_tgt = st[_S.op3_index_tgt, v]
        k30 = st[_S.op3_peak, v]
        k3_tgt = st[_S.op3_peak_tgt, v]
        use_op3 = (
            x3 != 0.0
            or x3_tgt != 0.0
            or ((k30 > 0.0 or k3_tgt > 0.0) and t_on < st[_S.index_decay_s, v])
        )
        lay = st[_S.op3_layout, v]
        ph30 = st[_S.phase_3, v]
        inc_3 = 0.0
        a0 = a1 = b0 = b1 = 0.0
        if use_op3:
            op3_ratio = (
                st[_S.op3_ratio, v] + (st[_S.op3_ratio_tgt, v] - st[_S.op3_ratio, v]) * alpha
            )
            st[_S.op3_ratio, v] = op3_ratio
            inc_3 = inc_c * op3_ratio
            scale3 = 1.0 if lay == LAYOUT_CARRIER2 else scale
            k31 = k30 + (k3_tgt - k30) * alpha
            st[_S.op3_peak, v] = k31
            b0 = k30 * scale3 * (1.0 - t_on * inv_pd)
            b1 = (k31 * scale3 * (1.0 - t_end * inv_pd) - b0) * inv_m
            x31 = x3 + (x3_tgt - x3) * alpha
            a0, a1 = x3 * scale3, (x31 - x3) * scale3 * inv_m
            # Where the glide has arrived, the target (turned down to 0, the operator
            # is then off and skipped again).
            st[_S.op3_index, v] = x3_tgt if abs(x31 - x3_tgt) < 1e-6 else x31
        # The noise band, where this voice uses it: its level glides within the chunk,
        # its width and centre per chunk (as the ratios do).
        bl0 = st[_S.band_level, v]
        bl_tgt = st[_S.band_level_tgt, v]
        use_band = bl0 > 0.0 or bl_tgt > 0.0
        bpos0 = st[_S.band_pos, v]
        pb0 = st[_S.phase_b, v]
        c0 = c1 = rate_b = inc_b = 0.0
        if use_band:
            bl1 = bl0 + (bl_tgt - bl0) * alpha
            st[_S.band_level, v] = bl_tgt if abs(bl1 - bl_tgt) < 1e-6 else bl1
            bw = st[_S.band_width, v] + (st[_S.band_width_tgt, v] - st[_S.band_width, v]) * alpha
            st[_S.band_width, v] = bw
            bc = st[_S.band_centre, v] + (st[_S.band_centre_tgt, v] - st[_S.band_centre, v]) * alpha
            st[_S.band_centre, v] = bc
            rate_b = 8.0 * bw * inc_c * _INV_TWO_PI  # table entries a sample
            inc_b = inc_c * bc
            c0, c1 = bl0 * _SQRT2, (bl1 - bl0) * _SQRT2 * inv_m
        # Output gain: towards its target, a straight line within the chunk.
        gl0 = st[_S.gain_l, v]
        gr0 = st[_S.gain_r, v]
        gl1 = (st[_S.gain_l_tgt, v] - gl0) * alpha
        gr1 = (st[_S.gain_r_tgt, v] - gr0) * alpha
        st[_S.gain_l, v] = gl0 + gl1
        st[_S.gain_r, v] = gr0 + gr1
        gl1 *= inv_m
        gr1 *= inv_m
        # Each stage is a plain loop over the chunk's frames on 1-D rows, which the
        # compiler turns into SIMD code.
        index = scratch[0]
        y = scratch[1]
        for k in range(m):
            index[k] = i0 + i1 * k
        if use_peak:
            for k in range(m):
                index[k] += max(e0 + e1 * k, 0.0)
        # The carrier's phase (every layout), then the sine or the voice's tables there.
        arg = scratch[4]
        second = scratch[5]
        _carrier_phase(scratch, m, use_op3, lay, pc0, inc_c, pm0, inc_m, ph30, inc_3, a0, a1, b0, b1)
        if st[_S.harmonic, v] != 0.0:
            _harmonic_read(st, v, m, sr, tables, scratch, t_on)
        else:
            for k in range(m):
                y[k] = _sin(arg[k])
        if use_op3 and lay == LAYOUT_CARRIER2:
            for k in range(m):
                y[k] += second[k]
        if use_noise:
            for k in range(m):
                y[k] += max(g0 + g1 * k, 0.0) * noise[npos + k]
        if use_band:
            # The table reads (a gather, one sample at a time), then the carrier and the
            # sum in a loop the compiler vectorises.
            lp = scratch[2]
            for k in range(m):
                p = bpos0 + rate_b * k
                j = min(int(p), _LP_LAST)
                lp[k] = noise_lp[j] + (noise_lp[j + 1] - noise_lp[j]) * (p - j)
            for k in range(m):
                y[k] += (c0 + c1 * k) * _sin(pb0 + inc_b * k + 0.5 * math.pi) * lp[k]
        curve = st[_S.env_curve, v]
        if curve > 0.0 and q0 != -1.0:
            # A decay or release linear in dB (96 dB over its time), mixed with the line.
            env = scratch[6]
            # g: the dB line, 1 until the attack ends (the attack line p is below it).
            ka = 0
            if st[_S.released, v] > 0.0:
                g, r = rlev * 10.0 ** (-4.8 * st[_S.rel_t, v] / rdur), 10.0 ** (-4.8 / (rdur * sr))
            else:
                if tau < att_s:
                    ka = min(m, int(math.ceil((att_s - tau) * sr)))
                g, r = (
                    10.0 ** (-4.8 * (tau + ka * floor_t - att_s) / dec),
                    10.0 ** (-4.8 / (dec * sr)),
                )
            for k in range(ka):
                env[k] = 1.0
            for k in range(ka, m):
                env[k] = g
                g *= r
            for k in range(m):
                env[k] = max(
                    min(
                        max(q0 + q1 * k + curve * (env[k] - q0 - q1 * k), f0 + f1 * k), p0 + p1 * k
                    ),
                    0.0,
                )
            for k in range(m):
                y[k] *= env[k]
            st[_S.level, v] = env[m - 1]
        else:
            for k in range(m):
                y[k] *= max(min(max(q0 + q1 * k, f0 + f1 * k), p0 + p1 * k), 0.0)
            k = m - 1
            st[_S.level, v] = max(min(max(q0 + q1 * k, f0 + f1 * k), p0 + p1 * k), 0.0)
        xb0 = st[_S.x_boost, v]
        xb_tgt = st[_S.x_boost_tgt, v]
        if xb0 != 0.0 or xb_tgt != 0.0:
            # Expression's gain (pressure), gliding within the chunk.
            xb1 = _glide(xb0, xb_tgt, alpha)
            st[_S.x_boost, v] = xb1
            xg1 = (xb1 - xb0) * inv_m
            for k in range(m):
                y[k] *= 1.0 + xb0 + xg1 * k
        sends = False
        c = 0
        if mixed and n_bus:
            c = int(st[_S.chan, v])
            for b in range(n_bus):
                if send[0, b, c] != 0.0 or send[1, b, c] != 0.0:
                    sends = True
        if sends:
            # The voice's stereo signal once, into the mix and each bus it sends to.
            yl = scratch[2]
            yr = scratch[3]
            mix_l = mix[0]
            mix_r = mix[1]
            for k in range(m):
                yl[k] = y[k] * (gl0 + gl1 * k)
                yr[k] = y[k] * (gr0 + gr1 * k)
                mix_l[k] += yl[k]
                mix_r[k] += yr[k]
            for b in range(n_bus):
                s0 = send[0, b, c]
                s1 = _glide(s0, send[1, b, c], alpha)
                if s0 == 0.0 and s1 == 0.0:
                    continue
                ds = (s1 - s0) * inv_m
                bl = busmix[2 * b]
                br = busmix[2 * b + 1]
                for k in range(m):
                    w = s0 + ds * k
                    bl[k] += yl[k] * w
                    br[k] += yr[k] * w
                fed[b] = 1.0
        elif mixed:
            mix_l = mix[0]
            mix_r = mix[1]
            for k in range(m):
                mix_l[k] += y[k] * (gl0 + gl1 * k)
                mix_r[k] += y[k] * (gr0 + gr1 * k)
        else:
            amp = st[_S.amp, v]
            row = per_voice[v]
            for k in range(m):
                row[col + k] = y[k] * amp
        # On by m frames: phases (wrapped), clocks.
        st[_S.phase_c, v] = (pc0 + inc_c * m) % TWO_PI
        st[_S.phase_m, v] = (pm0 + inc_m * m) % TWO_PI
        if use_op3:
            st[_S.phase_3, v] = (ph30 + inc_3 * m) % TWO_PI
        if use_band:
            st[_S.band_pos, v] = (bpos0 + rate_b * m) % _LP_N
            st[_S.phase_b, v] = (pb0 + inc_b * m) % TWO_PI
        st[_S.tau, v] = tau + dt
        st[_S.rel_t, v] += dt
        st[_S.t_on, v] = t_end
        if st[_S.released, v] > 0.0 and st[_S.rel_t, v] >= st[_S.rel_dur, v]:
            any_done = True
    if mixed:
        for k in range(m):
            out[col + k, 0] += mix[0, k]
            out[col + k, 1] += mix[1, k]
    if n_bus:
        at = bus_col + col
        for b in range(n_bus):
            if fed[b] != 0.0:
                for j in range(2):
                    row = busmix[2 * b + j]
                    dst = bus[b, j]
                    for k in range(m):
                        dst[at + k] += row[k]
            for c in range(send.shape[2]):  # the sends glide on, per chunk
                send[0, b, c] = _glide(send[0, b, c], send[1, b, c], alpha)
    return any_done


@numba.njit(inline="always", fastmath=_FASTMATH)
def _read_tables(tbl, arg, out, m, w0, w1, use_on, d0, d1, use_dark):
    """``out[k]`` = the carrier tables ``tbl`` [3, TABLE_SIZE + 1] read at phase
    ``arg[k]`` (radians) with linear interpolation, mixed as ``engine.spectrum`` says:
    onset weight ``max(w0 + w1 k, 0)``, dark weight ``min(d0 + d1 k, 1)``. One loop per
    case, so that none tests a case per sample."""
    held = tbl[1]
    dark = tbl[2]
    on = tbl[0]
    if use_dark and use_on:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            h = held[j] + (held[j + 1] - held[j]) * f
            h += (dark[j] + (dark[j + 1] - dark[j]) * f - h) * min(d0 + d1 * k, 1.0)
            out[k] = h + (on[j] + (on[j + 1] - on[j]) * f - h) * max(w0 + w1 * k, 0.0)
    elif use_dark:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            h = held[j] + (held[j + 1] - held[j]) * f
            out[k] = h + (dark[j] + (dark[j + 1] - dark[j]) * f - h) * min(d0 + d1 * k, 1.0)
    elif use_on:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            h = held[j] + (held[j + 1] - held[j]) * f
            out[k] = h + (on[j] + (on[j + 1] - on[j]) * f - h) * max(w0 + w1 * k, 0.0)
    else:
        for k in range(m):
            x = arg[k] * _TABLE_SCALE
            xf = math.floor(x)
            f = x - xf
            j = int(xf) & _TABLE_MASK
            out[k] = held[j] + (held[j + 1] - held[j]) * f


@numba.njit(inline="always", fastmath=_FASTMATH)
def _carrier_phase(scratch, m, use_op3, lay, pc0, inc_c, pm0, inc_m, ph30, inc_3, a0, a1, b0, b1):
    """The carrier's phase into ``scratch[4]`` for the chunk's frames, the modulator (and
    the third operator, by its layout) bending it; in layout 2, the second carrier (a
    sine, bent by the same modulator) into ``scratch[5]``. ``scratch[0]``: the index."""
    index = scratch[0]
    arg = scratch[4]
    if not use_op3:
        for k in range(m):
            arg[k] = pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k)
        return
    i3 = scratch[2]
    s3 = scratch[3]
    for k in range(m):
        i3[k] = a0 + a1 * k + max(b0 + b1 * k, 0.0)
        s3[k] = i3[k] * _sin(ph30 + inc_3 * k)
    if lay == LAYOUT_STACK:
        for k in range(m):
            arg[k] = pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k + s3[k])
    elif lay == LAYOUT_PARALLEL:
        for k in range(m):
            arg[k] = pc0 + inc_c * k + index[k] * _sin(pm0 + inc_m * k) + s3[k]
    else:
        second = scratch[5]
        for k in range(m):
            mod = index[k] * _sin(pm0 + inc_m * k)
            arg[k] = pc0 + inc_c * k + mod
            second[k] = i3[k] * (1.0 / 16.0) * _sin(ph30 + inc_3 * k + mod)


@numba.njit(inline="always", fastmath=_FASTMATH)
def _harmonic_read(st, v, m, sr, tables, scratch, t_on):
    """Voice ``v``'s harmonic carrier into ``scratch[1]``: its tables read at the phase in
    ``scratch[4]``, onset and darkening mixed in; a live change's crossfade reads both
    buffers."""
    y = scratch[1]
    arg = scratch[4]
    onset_s = st[_S.onset_s, v]
    use_on = st[_S.onset_on, v] != 0.0 and t_on < onset_s
    w0, w1 = 1.0 - t_on / onset_s, -1.0 / (onset_s * sr)
    darken_s = st[_S.darken_s, v]
    use_dark = st[_S.dark_on, v] != 0.0
    d0, d1 = t_on / darken_s, 1.0 / (darken_s * sr)
    slot = int(st[_S.tslot, v])
    buf = int(st[_S.spec_buf, v])
    _read_tables(tables[slot, buf], arg, y, m, w0, w1, use_on, d0, d1, use_dark)
    fade0 = st[_S.spec_fade, v]
    if fade0 > 0.0:
        old = scratch[6]
        _read_tables(tables[slot, 1 - buf], arg, old, m, w0, w1, use_on, d0, d1, use_dark)
        fade1 = max(fade0 - m / (SMOOTH_S * sr), 0.0)
        step = (fade1 - fade0) / m
        for k in range(m):
            y[k] += (old[k] - y[k]) * (fade0 + step * k)
        st[_S.spec_fade, v] = fade1


def _build_tables(st, tables, vs, basis, swap):
    """Build voices ``vs``' carrier tables from their spectra rows at their increments
    (``engine.spectrum``): into the buffer they read (``swap`` 0: a fresh note; ``swap``
    2: a fresh note that plays the sine carrier instead, its ``harmonic`` row 0, where
    both spectra are harmonic 1 alone), or into the other one, crossfaded to from the
    next chunk (``swap`` 1: a live change)."""
    nh = basis.shape[0]
    amp = np.empty((3, nh))
    size = basis.shape[1] - 1
    half = size // 2
    quarter = size // 4
    parts = np.empty((2, quarter + 1), dtype=np.float32)
    for v in vs:
        if swap == 2:
            sine = st[_S.held_h1, v] > _DB_FLOOR and st[_S.onset_h1, v] > _DB_FLOOR
            for h in range(1, nh):
                if st[_S.held_h1 + h, v] > _DB_FLOOR or st[_S.onset_h1 + h, v] > _DB_FLOOR:
                    sine = False
                    break
            st[_S.harmonic, v] = 0.0 if sine else 1.0
            if sine:
                continue
        slot = int(st[_S.tslot, v])
        buf = int(st[_S.spec_buf, v])
        if swap == 1:
            buf = 1 - buf
            st[_S.spec_buf, v] = buf
            st[_S.spec_fade, v] = 1.0
        st[_S.spec_dirty, v] = 0.0
        limit = TWO_PI * _BAND_LIMIT / st[_S.inc_c, v]  # harmonics k below it sound
        darken = st[_S.darken_db, v]
        differs = False
        for h in range(nh):
            if st[_S.held_h1 + h, v] != st[_S.onset_h1 + h, v]:
                differs = True
                break
        for which in range(2):
            if which == 0 and not differs:
                continue
            row = _S.onset_h1 if which == 0 else _S.held_h1
            power = 0.0
            for h in range(nh):
                db = st[row + h, v]
                a = math.exp(db * _DB_TO_LN) if db > _DB_FLOOR else 0.0
                amp[which, h] = a
                power += a * a
            scale = 1.0 / math.sqrt(power) if power > 0.0 else 0.0
            for h in range(nh):
                amp[which, h] = amp[which, h] * scale if h + 1 < limit else 0.0
        if darken > 0.0:
            for h in range(nh):
                a = amp[1, h]
                amp[2, h] = a * math.exp(-darken * math.log2(h + 1.0) * _DB_TO_LN) if a != 0.0 else 0.0
        st[_S.onset_on, v] = 1.0 if differs else 0.0
        st[_S.dark_on, v] = 1.0 if darken > 0.0 else 0.0
        for which in range(3):
            if (which == 0 and not differs) or (which == 2 and darken <= 0.0):
                continue
            # A sum of sines has quarter-wave symmetry: with E and O the even and odd
            # harmonics' sums at n in [0, N/4], T[n] = E + O, T[N/2 + n] = E - O,
            # T[N/2 - n] = O - E and T[N - n] = -(E + O). A quarter of the work.
            even = parts[0]
            odd = parts[1]
            even[:] = 0.0
            odd[:] = 0.0
            for h in range(nh):
                a = np.float32(amp[which, h])
                if a != 0.0:
                    b = basis[h]
                    acc = odd if h % 2 == 0 else even  # h + 1 is the harmonic
                    for j in range(quarter + 1):
                        acc[j] += a * b[j]
            t = tables[slot, buf, which]
            for j in range(quarter + 1):
                e = even[j]
                o = odd[j]
                t[j] = e + o
                t[half + j] = e - o
                t[half - j] = o - e
                t[size - j] = -(e + o)
            t[0] = 0.0
            t[half] = 0.0
            t[size] = 0.0


def _compiled(fn):
    """``fn`` compiled on its first call, cached on disk (``engine/__pycache__``, else the
    user's cache folder). Where numba finds nowhere to cache, it compiles at every start
    (about 3 s) instead of failing the import."""
    # numba's disk cache knows only this file's time stamp, not the rows the kernels
    # read as constants, which the schema's rows decide: the layout's digest in the name
    # gives another layout another cache entry.
    fn.__qualname__ = f"{fn.__name__}_{_LAYOUT_DIGEST}"
    try:
        return numba.njit(cache=True, fastmath=_FASTMATH)(fn)
    except RuntimeError:
        return numba.njit(fastmath=_FASTMATH)(fn)


_render_chunk = _compiled(_render_chunk)
_build_tables = _compiled(_build_tables)


def express(st, n, ch, one, press, timbre, wheel, amounts, sr, fresh):
    """Set the expression targets (``engine.expression``'s formulas) of voice ``one``
    (``one`` >= 0), or of every voice of channel ``ch`` that is not fading (``one`` < 0),
    from the channel's ``press`` and ``timbre`` (0..1) plus each voice's own, the mod
    ``wheel`` (0..1) and the channel's ``amounts`` [6]. ``fresh``: the values start at
    their targets (a note-on), else they glide there. With no pressure, timbre or wheel
    every target is exactly 0: the voice skips the expression's work."""
    lo, hi = (one, one + 1) if one >= 0 else (0, n)
    inc = TWO_PI * amounts[4] / sr
    depth = amounts[3] * 0.01 * wheel
    scale = 1.0 + amounts[5] * wheel
    for u in range(lo, hi):
        if one < 0 and (st[_S.chan, u] != ch or st[_S.fading, u] != 0.0):
            continue
        p = min(1.0, press + st[_S.n_press, u])
        t = min(1.0, timbre + st[_S.n_timbre, u])
        boost = math.exp(amounts[0] * p * _DB_TO_LN) - 1.0
        xi = amounts[1] * p + amounts[2] * t
        st[_S.x_boost_tgt, u] = boost
        st[_S.x_index_tgt, u] = xi
        st[_S.vib_tgt, u] = depth
        st[_S.vib_inc, u] = inc
        st[_S.mod_scale, u] = scale
        if fresh:
            st[_S.x_boost, u] = boost
            st[_S.x_index, u] = xi
            st[_S.vib, u] = depth
            st[_S.vib_phase, u] = 0.0


def find_note(st, n, key):
    """The first of the n voices whose ``note_key`` is ``key``, or -1."""
    for v in range(n):
        if st[_S.note_key, v] == key:
            return v
    return -1


def steal_victim(st, n, max_voices):
    """The voice a new note steals, or -1 when fewer than ``max_voices`` notes sound (not
    fading): the quietest released voice that is not fading, else the oldest note (the
    first of equal ones)."""
    live = 0
    quiet, quiet_level = -1, math.inf
    old, old_age = -1, math.inf
    for v in range(n):
        if st[_S.fading, v] != 0.0:
            continue
        live += 1
        if st[_S.released, v] > 0.0:
            if st[_S.level, v] < quiet_level:
                quiet, quiet_level = v, st[_S.level, v]
        elif st[_S.age, v] < old_age:
            old, old_age = v, st[_S.age, v]
    if live < max_voices:
        return -1
    return quiet if quiet >= 0 else old


express = _compiled(express)
find_note = _compiled(find_note)
steal_victim = _compiled(steal_victim)
