"""The harmonic carrier (schema 5, engine/spectrum.py): the spectra a voice plays, their
band limit, their motion, their live changes, and the decay linear in dB."""

import math

import numpy as np
import pytest

from engine import Engine, KeyTable
from engine.render import render_note
from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES
from engine.spectrum import BAND_LIMIT, amplitudes, band_mask, is_sine, tables
from engine.voices import VoiceBank, midi_to_hz

SR = 48000


def _spectrum(db, names=HELD_NAMES) -> dict:
    return {n: float(v) for n, v in zip(names, db)}


def _both(db) -> dict:
    return {**_spectrum(db, ONSET_NAMES), **_spectrum(db, HELD_NAMES)}


def _flat(**kw) -> dict:
    """A held tone: no FM, no envelope motion."""
    base = dict(attack_s=0.0, decay_s=0.0, sustain=1.0, release_s=0.05, mod_index=0.0)
    base.update(kw)
    return base


def _levels_db(y: np.ndarray, f0: float, n: int, sr: int = SR) -> np.ndarray:
    """Levels in dB of harmonics 1..n of ``y``: Hann-windowed correlation with each
    harmonic's exact frequency."""
    t = np.arange(len(y)) / sr
    w = np.hanning(len(y))
    k = np.arange(1, n + 1)[:, None]
    return 20 * np.log10(np.abs(np.exp(-2j * np.pi * k * f0 * t) @ (y * w)) + 1e-12)


def _above_db(y: np.ndarray, hz: float, sr: int = SR) -> float:
    """Energy of ``y`` above ``hz`` against its whole energy, dB (Hann window)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    return float(10 * np.log10(spec[np.fft.rfftfreq(len(y), 1.0 / sr) > hz].sum() / spec.sum()))


def test_a_held_note_plays_its_spectrum():
    db = -3.0 * np.arange(N_HARMONICS)  # -3 dB a harmonic
    db[1::2] -= 20.0  # even harmonics 20 dB lower (a clarinet-like shape)
    db = np.maximum(db, DB_FLOOR)
    y = render_note(KeyTable.flat(_flat(**_both(db))), 48, 100, SR, 0.6, 0.05)[
        SR // 10 : SR // 10 + 16384
    ]
    got = _levels_db(y, midi_to_hz(48), 12)
    want = db[:12]
    assert np.abs((got - got[0]) - (want - want[0])).max() < 0.5


def test_the_default_spectra_are_the_plain_sine_carrier():
    assert is_sine(KeyTable.flat().lookup(60, 100))
    assert not is_sine(KeyTable.flat(_spectrum([0.0, -10.0])).lookup(60, 100))
    vb = VoiceBank(2, SR)
    i = vb.add()
    vb.start(i, KeyTable.flat().lookup(60, 100), 60, 1.0, 2 * math.pi * 261.6 / SR)
    assert vb.harmonic[i] == 0.0
    j = vb.add()
    vb.start(
        j, KeyTable.flat(_spectrum([0.0, -10.0])).lookup(60, 100), 60, 1.0, 2 * math.pi * 261.6 / SR
    )
    assert vb.harmonic[j] == 1.0
    # A spectrum of one harmonic at any level is the sine at a sine's power.
    np.testing.assert_allclose(amplitudes(np.r_[-30.0, np.full(N_HARMONICS - 1, DB_FLOOR)])[0], 1.0)


def test_the_voices_tables_are_the_modules():
    t = KeyTable.flat(
        {
            **_spectrum(np.linspace(0, -40, N_HARMONICS)),
            **_spectrum([-6.0, 0.0], ONSET_NAMES),
            "darken_db": 12.0,
        }
    ).lookup(84, 100)
    inc = 2 * math.pi * midi_to_hz(84) / SR
    vb = VoiceBank(3, SR)
    vb.add()
    i = vb.add()
    vb.start(i, t, 84, 1.0, inc)
    np.testing.assert_allclose(vb.tables[int(vb.tslot[i]), 0], tables(t, inc), rtol=0, atol=1e-6)  # float32
    # Note 84 (1047 Hz): 20 harmonics lie below 0.45 x 48 kHz.
    assert band_mask(inc).sum() == 20


@pytest.mark.parametrize("pitch", [96, 108, 120, 127])
def test_no_harmonic_reaches_nyquist_on_the_top_keys(pitch):
    """Every harmonic at full level: what sounds lies at the note's harmonics below the
    band limit, and nothing folds back (no energy between them)."""
    y = render_note(KeyTable.flat(_flat(**_both(np.zeros(N_HARMONICS)))), pitch, 127, SR, 0.5, 0.05)
    y = y[SR // 10 : SR // 10 + 16384]
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1.0 / SR)
    f0 = midi_to_hz(pitch)
    kept = np.arange(1, N_HARMONICS + 1)[np.arange(1, N_HARMONICS + 1) * f0 < BAND_LIMIT * SR]
    near = np.zeros_like(freqs, dtype=bool)
    for k in kept:
        near |= np.abs(freqs - k * f0) < 40.0
    assert 20 * np.log10(spec[~near].max() / spec.max()) < -60.0


def test_the_onset_spectrum_crossfades_into_the_held_one():
    bright = np.zeros(N_HARMONICS)
    dull = np.r_[0.0, np.full(N_HARMONICS - 1, DB_FLOOR)]
    t = KeyTable.flat(_flat(**_spectrum(bright, ONSET_NAMES), **_spectrum(dull), onset_s=0.2))
    y = render_note(t, 48, 100, SR, 0.8, 0.05)
    f0 = midi_to_hz(48)
    early = _levels_db(y[:2048], f0, 4)  # the onset's weight falls from 1 to 0.8 here
    late = _levels_db(y[SR // 2 : SR // 2 + 8192], f0, 4)
    assert early[2] - early[0] > -6.0  # harmonic 3 as loud as the first, near note-on
    assert late[2] - late[0] < -60.0  # gone once the onset has faded (0.2 s)


def test_a_spectrum_darkens_by_darken_db_per_octave():
    t = KeyTable.flat(_flat(**_both(np.zeros(N_HARMONICS)), darken_db=12.0, darken_s=0.1))
    y = render_note(t, 48, 100, SR, 0.6, 0.05)
    lv = _levels_db(y[SR // 5 : SR // 5 + 8192], midi_to_hz(48), 8)
    # Fully dark after 0.1 s: harmonic 2 is 12 dB and harmonic 4 24 dB below harmonic 1.
    assert abs(lv[1] - lv[0] + 12.0) < 0.5 and abs(lv[3] - lv[0] + 24.0) < 0.5


def test_a_live_spectrum_change_glides_without_a_click():
    e = Engine(sample_rate=SR, max_voices=4)
    e.set_patch(0, KeyTable.flat(_flat()), frame=0)
    e.note_on(0, 45, 60, frame=0)  # below the limiter's threshold
    before = e.render(4800)[:, 0]
    for k, db in enumerate(np.linspace(0.0, -12.0, N_HARMONICS)):
        e.set_param(0, HELD_NAMES[k], float(db), frame=e.frame + 37)
        e.set_param(0, ONSET_NAMES[k], float(db), frame=e.frame + 37)
    after = e.render(9600)[:, 0]
    # Both spectra end below 3.6 kHz (32 harmonics of 110 Hz); a switch of waveform at
    # one sample would spread a click's energy far above that.
    assert _above_db(np.r_[before, after][4800 + 37 - 2048 : 4800 + 37 + 2048], 6000.0) < -60.0
    lv = _levels_db(after[-8192:], midi_to_hz(45), 3)
    assert abs(lv[1] - lv[0] - (-12.0 / 31)) < 0.5  # the new spectrum sounds
    assert e.voices.spec_fade[0] == 0.0


def test_a_decay_linear_in_db_falls_96_db_over_decay_s():
    t = KeyTable.flat(
        dict(attack_s=0.0, decay_s=0.4, sustain=0.0, release_s=0.05, mod_index=0.0, env_curve=1.0)
    )
    y = render_note(t, 69, 127, SR, 0.5, 0.05)

    def rms_db(at):
        seg = y[int(at * SR) - 240 : int(at * SR) + 240]
        return 20 * np.log10(np.sqrt(np.mean(seg**2)) * math.sqrt(2))

    assert abs(rms_db(0.1) + 24.0) < 0.5  # 96 dB over 0.4 s, from full level (velocity 127)
    assert abs(rms_db(0.2) + 48.0) < 0.5
    # The linear envelope (env_curve 0) is half way down in amplitude (-6 dB) there.
    lin = render_note(
        KeyTable.flat(dict(attack_s=0.0, decay_s=0.4, sustain=0.0, release_s=0.05, mod_index=0.0)),
        69,
        127,
        SR,
        0.5,
        0.05,
    )
    seg = lin[int(0.2 * SR) - 240 : int(0.2 * SR) + 240]
    assert abs(20 * np.log10(np.sqrt(np.mean(seg**2)) * math.sqrt(2)) + 6.02) < 0.5
