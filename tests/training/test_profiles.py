"""training.profiles: harmonic profiles measured from engine renders of known spectra and
from a real NSynth note."""

from pathlib import Path

import numpy as np
import pytest

from engine import KeyTable, render_note
from engine.schema import DB_FLOOR, HELD_NAMES, ONSET_NAMES, param
from training.from_audio import read_note
from training.profiles import PROFILE_NAMES, measured_timbre, measured_timbres, refine_f0

AUDIO = Path(__file__).resolve().parents[1] / "data" / "nsynth" / "audio"
HELD = [0.0, -6.0, -12.0, -3.0, -20.0, -30.0, -15.0, -40.0]
ONSET = [-10.0, 0.0, -5.0, -8.0, -12.0, -20.0, -25.0, -30.0]
_PLAIN = {"mod_index": 0.0, "attack_s": 0.005, "decay_s": 0.5, "sustain": 0.8, "release_s": 0.3}


def _patch(**extra: float) -> KeyTable:
    vals = dict(_PLAIN)
    vals.update(zip(HELD_NAMES, HELD + [DB_FLOOR] * (len(HELD_NAMES) - len(HELD))))
    vals.update(zip(ONSET_NAMES, ONSET + [DB_FLOOR] * (len(ONSET_NAMES) - len(ONSET))))
    vals.update(extra)
    return KeyTable.flat(vals)


@pytest.mark.parametrize("pitch", [36, 60, 84])
def test_held_and_onset_spectra_come_back(pitch):
    y = render_note(_patch(onset_s=0.2), pitch, 100)
    m = measured_timbre(y, pitch)
    heard = [k for k in range(len(HELD)) if (k + 1) * 440 * 2 ** ((pitch - 69) / 12) < 0.45 * 16000]
    held = np.array([m[HELD_NAMES[k]] for k in heard])
    assert np.max(np.abs(held - np.array(HELD)[heard])) < 1.0
    onset = np.array([m[ONSET_NAMES[k]] for k in heard[:4]])
    assert np.max(np.abs(onset - np.array(ONSET)[heard[:4]])) < 2.5
    assert 0.1 <= m["onset_s"] <= 0.4
    assert m["darken_db"] == 0.0  # a steady spectrum is not darkened
    # Harmonics the engine left out (above its band limit) and silent ones read silent.
    for k in range(len(HELD), len(HELD_NAMES)):
        assert m[HELD_NAMES[k]] == DB_FLOOR


def test_every_value_in_range():
    y = render_note(_patch(), 60, 100)
    m = measured_timbre(y, 60)
    assert list(m) == list(PROFILE_NAMES)
    for name, v in m.items():
        p = param(name)
        assert p.minimum <= v <= p.maximum, (name, v)
    assert max(m[n] for n in HELD_NAMES) == 0.0 and max(m[n] for n in ONSET_NAMES) == 0.0


def test_darkening_is_found():
    y = render_note(
        _patch(onset_s=0.01, darken_db=12.0, darken_s=1.0, sustain=1.0, decay_s=4.0), 48, 100
    )
    m = measured_timbre(y, 48)
    assert 6.0 <= m["darken_db"] <= 18.0
    assert 0.5 <= m["darken_s"] <= 2.0


def test_f0_refined_off_the_key():
    y = render_note(_patch(), 60.3, 100)  # 30 cents sharp
    f0 = refine_f0(y, 60)
    cents = 1200 * np.log2(f0 / (440 * 2 ** ((60.3 - 69) / 12)))
    assert abs(cents) < 3.0


def test_real_note_plausible():
    y = read_note(AUDIO / "brass_acoustic_006-060-100.wav")
    m = measured_timbre(y, 60)
    held = np.array([m[n] for n in HELD_NAMES])
    # A trumpet-like brass note: many strong harmonics, falling off towards the top.
    assert np.count_nonzero(held[:10] > -30.0) >= 6
    assert held[:8].mean() > held[16:].mean() + 10.0
    y = read_note(AUDIO / "guitar_acoustic_010-060-100.wav")
    m = measured_timbre(y, 60)
    assert m["darken_db"] > 0.0  # a plucked string darkens as it rings


def test_batch_and_errors():
    y = render_note(_patch(), 60, 100)
    out = measured_timbres([y, y], [60, 60])
    assert out.shape == (2, len(PROFILE_NAMES))
    assert out[0, 0] == measured_timbre(y, 60)[PROFILE_NAMES[0]]
    with pytest.raises(ValueError, match="pitch must be in range 0..127"):
        measured_timbre(y, 200)
    with pytest.raises(ValueError, match="silent"):
        measured_timbre(np.zeros(16000), 60)
    with pytest.raises(ValueError, match="one channel"):
        measured_timbre(np.zeros((2, 16000)), 60)
