"""Manifest audio paths: relative inside the dataset folder, absolute outside it."""

from __future__ import annotations

import os

from training.manifest import read_manifest, write_manifest


def test_relative_path_outside_the_folder_becomes_absolute(tmp_path, monkeypatch):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "n.flac").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    theta = {
        "pitch_midi": 60.0,
        "velocity": 100.0,
        "sample_rate": 16000.0,
        "duration_s": 4.0,
        "attack_s": 0.01,
        "decay_s": 0.3,
        "sustain": 0.5,
        "release_s": 0.2,
        "mod_ratio": 1.0,
        "mod_index": 1.0,
    }
    rec = {"note_id": "n", "audio_path": "elsewhere/n.flac", "captions": ["a"], "theta": theta}
    write_manifest("data/manifest.jsonl", [rec])
    back = read_manifest(tmp_path / "data" / "manifest.jsonl")
    assert back[0]["audio_path"] == os.fspath(tmp_path / "elsewhere" / "n.flac")
