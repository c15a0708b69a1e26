"""Schema v2's sound (index peak, noise) against the formula of docs/engine.md, evaluated
directly in float64 numpy, sample by sample."""

import numpy as np
import pytest

from engine import (
    CC,
    NOISE_TABLE_SIZE,
    Engine,
    KeyTable,
    Theta,
    midi_to_hz,
    noise_start,
    render_note,
    velocity_to_amp,
)
from engine.voices import NOISE

SR = 16000
BASE = Theta.from_dict({"attack_s": 0.01, "decay_s": 0.1, "sustain": 0.6, "release_s": 0.1,
                        "mod_ratio": 2.0, "mod_index": 1.5})


def held_envelope(theta: Theta, t: np.ndarray, sr: int) -> np.ndarray:
    """The linear ADSR while the key is held, at times ``t``, from the definition."""
    att, dec, sus = theta.attack_s, theta.decay_s, theta.sustain
    env = np.minimum(t / max(att, 1 / sr), np.maximum(1 - (1 - sus) * (t - att) / max(dec, 1 / sr), sus))
    return np.maximum(env, 0.0)


def two_sounding(theta: Theta) -> tuple[Engine, Engine]:
    """Two engines each sounding key 60 of ``theta`` for 0.1 s (48 kHz): one to change
    live, one to compare with."""
    pair = Engine(48000, 4), Engine(48000, 4)
    for e in pair:
        e.set_patch(0, KeyTable.flat(theta))
        e.note_on(0, 60, 100)
        e.render(4800)
    return pair


def formula(theta: Theta, pitch: int, velocity: int, n: int, sr: int = SR) -> np.ndarray:
    """The voice held for n samples (no release), straight from the definition."""
    t = np.arange(n) / sr
    fc = midi_to_hz(pitch)
    env = held_envelope(theta, t, sr)
    index = theta.mod_index + theta.index_peak * np.maximum(0.0, 1 - t / theta.index_decay_s)
    tone = np.sin(2 * np.pi * fc * t + index * np.sin(2 * np.pi * theta.mod_ratio * fc * t))
    nz = NOISE[(noise_start(pitch) + np.arange(n)) % NOISE_TABLE_SIZE].astype(np.float64)
    noise = theta.noise_level * np.maximum(0.0, 1 - t / theta.noise_decay_s) * nz
    return velocity_to_amp(velocity) * env * (tone + noise)


def test_noise_table_is_the_documented_one():
    ref = np.random.default_rng(0x5EED).uniform(-1.0, 1.0, 65536).astype(np.float32)
    assert NOISE_TABLE_SIZE == 65536 and np.array_equal(NOISE, ref)
    assert noise_start(60) == (60 * 7919) % 65536 and noise_start(60.4) == noise_start(60)


def test_v2_defaults_are_the_plain_fm_formula():
    """Index peak and noise off (a v1 patch): the seed's sound, sample by sample."""
    assert BASE.index_peak == 0.0 and BASE.noise_level == 0.0
    y = render_note(KeyTable.flat(BASE), 57, 100, SR, hold_s=0.5, tail_s=0.0)
    ref = formula(BASE, 57, 100, len(y))
    assert np.max(np.abs(y - ref)) < 1e-6


def test_index_peak_decays_as_specified():
    theta = BASE.replace(index_peak=6.0, index_decay_s=0.2)
    y = render_note(KeyTable.flat(theta), 57, 127, SR, hold_s=0.5, tail_s=0.0)
    ref = formula(theta, 57, 127, len(y))
    assert np.max(np.abs(y - ref)) < 1e-6
    # And it does something: early on it differs from the plain sound, after 0.2 s not.
    plain = formula(BASE, 57, 127, len(y))
    k = int(0.2 * SR)
    assert np.max(np.abs(ref[: k // 2] - plain[: k // 2])) > 0.1
    assert np.max(np.abs(y[k + 1 :] - plain[k + 1 :])) < 1e-6


@pytest.mark.parametrize("pitch", [60, next(p for p in range(128) if noise_start(p) > NOISE_TABLE_SIZE - 3000)])
def test_noise_follows_table_start_and_decay(pitch):
    """The second pitch starts near the table's end: its reading wraps around."""
    theta = BASE.replace(noise_level=0.5, noise_decay_s=0.3, index_peak=2.0, index_decay_s=0.05)
    y = render_note(KeyTable.flat(theta), pitch, 90, SR, hold_s=0.5, tail_s=0.0)
    ref = formula(theta, pitch, 90, len(y))
    assert np.max(np.abs(y - ref)) < 1e-6
    # Past its decay the noise is gone.
    k = int(0.3 * SR) + 1
    assert np.max(np.abs(y[k:] - formula(BASE.replace(index_peak=2.0, index_decay_s=0.05), pitch, 90, len(y))[k:])) < 1e-6


def test_noise_and_peak_keep_running_after_release():
    """t_on keeps counting through the release: the release only scales env."""
    theta = BASE.replace(noise_level=0.8, noise_decay_s=1.0, release_s=0.5)
    y = render_note(KeyTable.flat(theta), 60, 100, SR, hold_s=0.2, tail_s=0.3)
    n = len(y)
    full = formula(theta, 60, 100, n)
    hold = int(0.2 * SR)
    # Before the note-off: the formula. After: the same signal divided by env, times the
    # release ramp from the note-off level.
    assert np.max(np.abs(y[:hold] - full[:hold])) < 1e-6
    t = np.arange(n) / SR
    env_held = np.maximum(np.minimum(t / 0.01, np.maximum(1 - 0.4 * (t - 0.01) / 0.1, 0.6)), 0)
    rel = 0.6 * np.maximum(0.0, 1 - (t - 0.2) / 0.5)
    ref = full / np.where(env_held > 0, env_held, 1) * rel
    assert np.max(np.abs(y[hold + 1 :] - ref[hold + 1 :])) < 1e-6


def test_retrigger_restarts_peak_and_noise():
    theta = BASE.replace(sustain=1.0, decay_s=0.0, attack_s=0.0, noise_level=1.0, noise_decay_s=0.05,
                         index_peak=4.0, index_decay_s=0.05)
    e = Engine(48000, 4)
    e.set_patch(0, KeyTable.flat(theta))
    e.note_on(0, 60, 100)
    e.render(4800)
    vb = e.voices
    assert vb.t_on[0] == pytest.approx(0.1)
    e.note_on(0, 60, 100)  # same key: the voice is reused, its clock restarts
    e.render(128)
    assert vb.n == 1 and vb.t_on[0] == pytest.approx(128 / 48000)
    assert vb.noise_first[0] == noise_start(60)


def test_live_set_param_of_v2_values():
    e = Engine(48000, 4)
    e.set_patch(0, KeyTable.flat(BASE))
    e.note_on(0, 60, 100)
    e.render(256)
    vb = e.voices
    assert vb.noise_level[0] == 0.0
    e.set_param(0, "noise_level", 0.5)
    e.set_param(0, "noise_decay_s", 4.0)
    e.set_param(0, "index_peak", 3.0)
    e.set_param(0, "index_decay_s", 2.0)
    y = e.render(4800)
    # The levels glide to their targets (10 ms time constant); the decay times are set.
    assert vb.noise_level[0] == pytest.approx(0.5, rel=1e-3)
    assert vb.index_peak[0] == pytest.approx(3.0, rel=1e-3)
    assert (vb.noise_decay_s[0], vb.index_decay_s[0]) == (4.0, 2.0)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) > 0.1
    with pytest.raises(ValueError, match="noise_level must be in range 0..1"):
        e.set_param(0, "noise_level", 2.0)


def test_mod_wheel_scales_the_index_peak_too():
    theta = BASE.replace(index_peak=4.0, index_decay_s=8.0, mod_index=0.0)
    a = Engine(48000, 2)
    b = Engine(48000, 2)
    for e in (a, b):
        e.set_patch(0, KeyTable.flat(theta))
    b.set_expression(0, wheel_vibrato_cents=0.0)  # the wheel's index scale alone
    b.control_change(0, CC.MOD_WHEEL, 127)
    a.set_patch(0, KeyTable.flat(theta.replace(index_peak=8.0)))
    for e in (a, b):
        e.note_on(0, 60, 100)
    assert np.allclose(a.render(2048), b.render(2048), atol=1e-4)


def test_long_note_keeps_its_noise_position():
    """Many chunks at 48 kHz (the table is read by time since note-on): still the formula."""
    theta = BASE.replace(noise_level=0.3, noise_decay_s=8.0, sustain=1.0)
    y = render_note(KeyTable.flat(theta), 100, 100, 48000, hold_s=3.0, tail_s=0.0)
    ref = formula(theta, 100, 100, len(y), sr=48000)
    assert np.max(np.abs(y - ref)) < 1e-6


def test_turning_the_noise_up_live_does_not_click():
    """A sounding pure tone gets noise_level 1.0: the noise fades in over the glide, it
    does not start at full level on the next sample (a click on stage)."""
    theta = BASE.replace(attack_s=0.0, sustain=1.0, mod_index=0.0, noise_level=0.0, noise_decay_s=8.0)
    a, b = two_sounding(theta)
    b.set_param(0, "noise_level", 1.0)
    diff = np.abs(b.render(512)[:, 0] - a.render(512)[:, 0])  # the noise alone
    assert diff[-64:].max() > 0.05  # it did come in
    assert diff[:16].max() < 0.1 * diff[-64:].max()  # but gradually
