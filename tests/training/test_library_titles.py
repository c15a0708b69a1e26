"""The library build stores each candidate's name as a person reads it, from its notes'
``name`` field: "Clarinet, FluidR3 GM", not "sf-fluidr3_gm-000-071"."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from engine import TIMBRE_NAMES, render_notes
from model import LibraryParams, SoundLibrary
from tests.training.test_train import _HashEncoder  # registers "test-hash"
from training.extract import full_theta
from training.library import build_library
from training.manifest import write_manifest

# (id, dataset, family, name in words, attack, decay, sustain, release, ratio, index)
INSTRUMENTS = [
    ("sf-fluidr3_gm-000-071", "soundfont", "reed", "clarinet", 0.03, 0.3, 0.8, 0.2, 1.0, 1.0),
    ("sf-sf_gmbank-127-004", "soundfont", "keyboard", "electric piano", 0.002, 0.8, 0.2, 0.3, 1.0, 2.0),
    ("sf-sf_gmbank-127-005", "soundfont", "keyboard", "electric piano", 0.002, 1.2, 0.1, 0.3, 3.0, 1.0),
    ("reed_acoustic_037", "nsynth", "reed", "acoustic reed", 0.05, 0.2, 0.9, 0.1, 2.0, 0.5),
]


def test_build_library_stores_readable_names(tmp_path):
    recs = []
    for inst, ds, fam, name, *timbre in INSTRUMENTS:
        theta = full_theta(timbre, 60, 100)
        row = np.array([theta[n] for n in TIMBRE_NAMES])
        path = tmp_path / f"{inst}.wav"
        sf.write(str(path), render_notes(row[None], 60, 100)[0], 16000, subtype="FLOAT")
        recs.append({
            "note_id": f"{inst}-60", "audio_path": str(path), "instrument": inst, "family": fam,
            "dataset": ds, "pitch": 60, "velocity": 100, "source": "acoustic", "name": name,
            "qualities": [], "theta": theta, "captions": [f"a {fam} note"],
        })
    write_manifest(tmp_path / "data" / "manifest.jsonl", recs)
    lib, _ = build_library(tmp_path / "data" / "manifest.jsonl", _HashEncoder(), progress=False,
                           params=LibraryParams())
    by_id = dict(zip(lib.names, lib.titles))
    assert by_id == {
        "sf-fluidr3_gm-000-071": "Clarinet, FluidR3 GM",
        "sf-sf_gmbank-127-004": "Electric piano, sf_GMbank bank 127 program 4",
        "sf-sf_gmbank-127-005": "Electric piano, sf_GMbank bank 127 program 5",
        "reed_acoustic_037": "Acoustic reed 037, NSynth",
    }
    # Stored in the file (these captions name no instrument: nothing to read them from).
    back = SoundLibrary.load(lib.save(tmp_path))
    assert dict(zip(back.names, back.titles)) == by_id
    with np.load(tmp_path / "library.npz") as z:
        assert sorted(z["titles"].tolist()) == sorted(by_id.values())
