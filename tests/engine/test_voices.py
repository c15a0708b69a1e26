"""The voice itself: pitch, ADSR timing, FM sidebands (offline, no audio server)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import jv

from engine import KeyTable, Theta, midi_to_hz, render_note, render_notes, velocity_to_amp
from tests.engine.helpers import cents, envelope_from_sine, peak_frequency

SR = 48000
PURE = Theta.from_dict({"attack_s": 0.0, "decay_s": 0.0, "sustain": 1.0, "release_s": 0.01, "mod_index": 0.0})


@pytest.mark.parametrize("pitch", [21, 33, 57, 60, 69, 81, 96, 108])
def test_carrier_pitch_within_one_cent(pitch):
    y = render_note(KeyTable.flat(PURE), pitch, 100, sample_rate=SR, hold_s=1.0, tail_s=0.0)
    f = peak_frequency(y[SR // 10 :], SR)
    assert abs(cents(f, midi_to_hz(pitch))) < 1.0


def test_fractional_pitch():
    y = render_note(KeyTable.flat(PURE), 60.37, 100, sample_rate=SR, hold_s=1.0, tail_s=0.0)
    assert abs(cents(peak_frequency(y, SR), midi_to_hz(60.37))) < 1.0


@pytest.mark.parametrize("attack, decay, sustain, release", [(0.05, 0.2, 0.5, 0.3), (0.2, 0.5, 0.25, 1.0), (0.005, 0.05, 0.8, 0.02)])
def test_adsr_segment_times_within_1ms(attack, decay, sustain, release):
    theta = PURE.replace(attack_s=attack, decay_s=decay, sustain=sustain, release_s=release)
    hold = 1.0
    y = render_note(KeyTable.flat(theta), 69, 127, sample_rate=SR, hold_s=hold, tail_s=release + 0.1)
    idx, env = envelope_from_sine(y, 440.0, SR)
    t = idx / SR

    def crossing(t0, t1, level):
        """Time at which the straight segment seen between t0 and t1 reaches ``level``."""
        m = (t > t0) & (t < t1)
        slope, icpt = np.polyfit(t[m], env[m], 1)
        return (level - icpt) / slope

    # Each segment is a straight line: fit its middle, see where it meets its end level.
    assert abs(crossing(0.2 * attack, 0.8 * attack, 1.0) - attack) < 0.001
    assert abs(crossing(attack + 0.2 * decay, attack + 0.8 * decay, sustain) - (attack + decay)) < 0.001
    assert abs(crossing(hold + 0.2 * release, hold + 0.8 * release, 0.0) - (hold + release)) < 0.001
    # Held at the sustain level until note-off; silent after the release.
    mid = (t > attack + decay + 0.01) & (t < hold)
    assert np.allclose(env[mid], sustain, atol=1e-4)
    assert np.all(np.abs(y[int((hold + release) * SR) + 2 :]) < 1e-6)


def test_amplitude_follows_velocity_curve():
    y100 = render_note(KeyTable.flat(PURE), 69, 100, sample_rate=SR, hold_s=0.5, tail_s=0.0)
    y50 = render_note(KeyTable.flat(PURE), 69, 50, sample_rate=SR, hold_s=0.5, tail_s=0.0)
    assert np.max(np.abs(y100)) == pytest.approx(velocity_to_amp(100), rel=1e-3)
    assert np.max(np.abs(y50)) / np.max(np.abs(y100)) == pytest.approx((50 / 100) ** 1.5, rel=1e-3)


def test_fm_sidebands_at_fc_plus_minus_k_fm():
    ratio, index = 1.5, 1.5
    theta = PURE.replace(mod_ratio=ratio, mod_index=index)
    y = render_note(KeyTable.flat(theta), 57, 127, sample_rate=SR, hold_s=2.0, tail_s=0.0)[SR // 10 :]
    fc = midi_to_hz(57)
    fm = ratio * fc
    n = len(y)
    spec = np.abs(np.fft.rfft(y * np.hanning(n))) / (np.sum(np.hanning(n)) / 2)
    freqs = np.fft.rfftfreq(n, 1 / SR)

    def mag(f):
        i = np.argmin(np.abs(freqs - f))
        return spec[i - 3 : i + 4].max()

    for k in range(0, 4):
        # Components fc + k fm have amplitude |J_k(I)|.
        assert mag(fc + k * fm) == pytest.approx(abs(jv(k, index)), abs=0.01)
    for k in range(1, 4):
        # Below the carrier, fc - k fm has |J_-k(I)| = |J_k(I)|; where it is negative it
        # folds to |fc - k fm| (0.5, 2 and 3.5 fc here: no other line lands there).
        assert mag(abs(fc - k * fm)) == pytest.approx(abs(jv(k, index)), abs=0.01)
    # Nothing between the predicted lines.
    predicted = sorted({abs(fc + k * fm) for k in range(-8, 9)})
    mask = np.ones_like(freqs, dtype=bool)
    for f in predicted:
        mask &= np.abs(freqs - f) > 5
    mask &= freqs < 3000
    assert spec[mask].max() < 0.01


def test_batch_render_matches_single_render():
    thetas = [PURE.replace(mod_index=i, mod_ratio=r) for i, r in [(0.5, 1), (3, 2), (8, 0.5)]]
    batch = render_notes(np.stack([t.timbre() for t in thetas]), [40, 60, 80], [30, 90, 127], SR, 0.3, 0.2)
    for t, p, v, row in zip(thetas, [40, 60, 80], [30, 90, 127], batch):
        # The same arithmetic; numpy's vectorised sin may round differently for arrays of
        # different shapes (numpy 2.4 does, by up to 3e-5 here: -90 dB, far below hearing).
        np.testing.assert_allclose(row, render_note(KeyTable.flat(t), p, v, SR, 0.3, 0.2), rtol=0, atol=1e-4)


def test_the_kernel_renders_where_numba_cannot_cache_it():
    """Where numba finds no place to cache the compiled kernel, the engine compiles it at
    start instead of failing its import. Numba's "no cache locator" error is provoked here
    by naming a locator that does not exist (a read-only install with no writable home
    cannot be made here); the render must equal a cached kernel's."""
    code = (
        "import numpy as np, sys\n"
        "from engine import KeyTable, render_note, voices\n"
        "y = render_note(KeyTable.flat({'mod_index': 2.0}), 60, 100, 48000, 0.05, 0.02)\n"
        "sys.stdout.write(type(voices._render_chunk._cache).__name__ + ' ' + y.tobytes().hex())\n"
    )
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="NoSuchLocator")
    uncached = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert uncached.returncode == 0, uncached.stderr
    kind, samples = uncached.stdout.split()
    assert kind == "NullCache"
    expected = render_note(KeyTable.flat({"mod_index": 2.0}), 60, 100, 48000, 0.05, 0.02)
    assert samples == expected.tobytes().hex() and np.abs(expected).max() > 0.1
