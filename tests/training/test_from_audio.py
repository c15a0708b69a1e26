"""training.from_audio with the measured spectra (theta schema 5): real NSynth notes
(tests/data/nsynth, CC BY 4.0) and engine renders of known patches."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import TIMBRE_INDEX, KeyTable, render_note
from engine.schema import DB_FLOOR, HELD_NAMES, param
from training.from_audio import detect_pitch, fit_recordings, read_note

AUDIO = Path(__file__).resolve().parents[1] / "data" / "nsynth" / "audio"
_STEPS = 6  # a short refit: these tests judge the measured start, not the descent


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread, as `patch from-audio` fits (a sum split over two threads rounds
    otherwise, and the string note's fourth harmonic lands a hair under -40 dB). These
    tests passed on one thread only because an earlier test left the process on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _values(fit, names):
    t = fit.notes[0].timbre
    return np.array([t[TIMBRE_INDEX[n]] for n in names])


@pytest.mark.parametrize(
    ("note", "factor"),
    [("brass_acoustic_006-060-100.wav", 0.8), ("string_acoustic_014-046-050.flac", 0.97)],
)
def test_spectra_bring_a_real_note_closer(note, factor):
    old = fit_recordings([AUDIO / note], refit_steps=_STEPS, spectra=False)
    new = fit_recordings([AUDIO / note], refit_steps=_STEPS)
    assert new.distance < factor * old.distance, (old.distance, new.distance)
    held = _values(new, HELD_NAMES)
    assert held.max() == pytest.approx(0.0, abs=3.0) and np.count_nonzero(held > -40.0) >= 4
    # Without spectra the carrier stays a sine and the decay linear (the old patch).
    assert list(_values(old, HELD_NAMES)) == [param(n).default for n in HELD_NAMES]
    assert _values(old, ["env_curve"])[0] == 0.0


def test_a_decay_in_db_and_a_spectrum_come_back(tmp_path):
    held = [0.0, -4.0, -10.0, -8.0, -18.0, -24.0] + [DB_FLOOR] * (len(HELD_NAMES) - 6)
    vals = {
        "mod_index": 0.0,
        "attack_s": 0.003,
        "decay_s": 2.5,
        "sustain": 0.0,
        "release_s": 0.4,
        "env_curve": 1.0,
        "onset_s": 0.001,
        **dict(zip(HELD_NAMES, held)),
    }
    vals.update({n.replace("held", "onset"): v for n, v in zip(HELD_NAMES, held)})
    y = render_note(KeyTable.flat(vals), 57, 100)
    path = tmp_path / "pluck.wav"
    sf.write(path, y / np.max(np.abs(y)) * 0.5, 16000)
    fit = fit_recordings([path], pitch=57, refit_steps=_STEPS)
    assert _values(fit, ["env_curve"])[0] > 0.5  # the decay linear in dB was chosen
    got = _values(fit, HELD_NAMES[:6])
    assert np.max(np.abs(got - np.array(held[:6]))) < 3.0, got
    assert fit.distance < 0.3


def test_a_quiet_sub_octave_does_not_lower_the_pitch():
    """A note whose waveform repeats an octave below it (a quiet tone there, none of the
    odd harmonics of that period) is the note it plays: a synthesised flute NSynth files
    as MIDI 64, and a made one."""
    y = read_note(
        Path(__file__).resolve().parents[1]
        / "data"
        / "nsynth-extra"
        / "flute_synthetic_000-064-100.flac"
    )
    assert detect_pitch(y) == 64
    t = np.arange(64000) / 16000
    f = 440.0 * 2 ** ((60 - 69) / 12)
    made = 0.45 * np.sin(2 * np.pi * f / 2 * t) + sum(
        10 ** (-6 * (k - 1) / 20) * np.sin(2 * np.pi * k * f * t) for k in range(1, 6)
    )
    assert detect_pitch(made.astype(np.float32)) == 60
    # A clarinet-like note (odd harmonics, a weak second) keeps its pitch.
    odd = sum(10 ** (-4 * (k - 1) / 20) * np.sin(2 * np.pi * k * f * t) for k in (1, 3, 5, 7))
    assert detect_pitch(odd.astype(np.float32)) == 60
