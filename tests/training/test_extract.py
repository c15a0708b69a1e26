"""Spectral distance, heuristics and analysis-by-synthesis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import TIMBRE_NAMES, KeyTable, Theta, render_note
from training.extract import extract_note
from training.fit import fit_timbre
from training.heuristics import heuristic_timbre, seed_timbre
from training.notes import load_audio
from training.nsynth import read_nsynth
from training.spectral import SpectralTarget, log_mel, spectral_distance

NSYNTH = Path(__file__).resolve().parents[1] / "data" / "nsynth"
KNOWN = {
    "attack_s": 0.05,
    "decay_s": 0.4,
    "sustain": 0.5,
    "release_s": 0.3,
    "mod_ratio": 2.0,
    "mod_index": 2.0,
}


@pytest.fixture(scope="module")
def known_note() -> np.ndarray:
    return render_note(KeyTable.flat(Theta.from_dict(KNOWN)), 60, 100)


def test_spectral_distance_basics(known_note):
    y = known_note
    assert spectral_distance(y, y) == pytest.approx(0.0, abs=1e-6)
    assert spectral_distance(y, 0.3 * y) == pytest.approx(0.0, abs=1e-4)  # loudness-normalised
    other = render_note(KeyTable.flat(Theta.from_dict(dict(KNOWN, mod_ratio=5.0, mod_index=6.0))), 60, 100)
    d = SpectralTarget(y).distance(np.stack([y, other]))
    assert d[0] < 1e-6 < 0.2 < d[1]
    assert log_mel(np.stack([y, other])).shape == (2, 64 * 16)


def test_heuristics_return_valid_timbres(known_note):
    for fn in (seed_timbre, heuristic_timbre):
        t = fn(known_note, 60)
        Theta.from_dict(dict(zip(TIMBRE_NAMES, t)))  # within the schema's ranges
    fixed = dict(zip(TIMBRE_NAMES, heuristic_timbre(known_note, 60)))
    assert fixed["sustain"] == pytest.approx(0.5, abs=0.05)
    assert fixed["release_s"] == pytest.approx(0.3, rel=0.3)  # measured from the note-off
    assert (
        dict(zip(TIMBRE_NAMES, seed_timbre(known_note, 60)))["release_s"] < 0.2
    )  # the seed's 3.2 s


def test_fit_recovers_a_known_patch(known_note):
    start = heuristic_timbre(known_note, 60)
    res = fit_timbre(known_note, 60, 100, start)
    got = dict(zip(TIMBRE_NAMES, res.timbre))
    assert res.distance <= res.start_distance
    assert res.distance < 0.15
    assert got["mod_ratio"] == pytest.approx(2.0, rel=0.05)
    assert got["mod_index"] == pytest.approx(2.0, rel=0.35)
    assert got["sustain"] == pytest.approx(0.5, abs=0.1)
    assert got["release_s"] == pytest.approx(0.3, rel=0.5)


def test_fitted_labels_beat_the_seeds_on_real_notes():
    notes = [n for n in read_nsynth(NSYNTH) if n.family in ("flute", "guitar", "mallet")]
    assert len(notes) == 3
    labs = [extract_note(note, local_iters=2) for note in notes]
    for note, lab in zip(notes, labs):
        # The fit starts from both heuristics, so it is never worse than either.
        assert lab["distance"] <= min(lab["distance_seed"], lab["distance_heuristic"]) + 1e-9
        Theta.from_dict(lab["theta"], strict=True)
        assert lab["theta"]["pitch_midi"] == note.pitch
        # And a silent render is worse than the fitted one: the metric does not reward silence.
        y = load_audio(note.audio_path)
        assert spectral_distance(y, np.zeros_like(y)) > lab["distance"], note.note_id
    assert np.mean([lab["distance"] for lab in labs]) < 0.85 * np.mean(
        [lab["distance_seed"] for lab in labs]
    )
