"""Reader, captions, manifest, split and SoundFont renderer."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from training.captions import PARAPHRASES, QUALITY_TEMPLATES, captions_for
from training.manifest import manifest_thetas, read_manifest, write_manifest
from training.notes import NOTE_SAMPLES, Note, load_audio
from training.nsynth import NSYNTH_FAMILIES, read_nsynth
from training.split import split_by_instrument

NSYNTH = Path(__file__).resolve().parents[1] / "data" / "nsynth"


def test_reader_reads_wav_and_flac():
    notes = read_nsynth(NSYNTH)
    assert len(notes) == 8
    exts = sorted(Path(n.audio_path).suffix for n in notes)
    assert exts.count(".wav") == 2 and exts.count(".flac") == 6
    for n in notes:
        y = load_audio(n.audio_path)
        assert y.shape == (NOTE_SAMPLES,) and y.dtype == np.float32
        assert np.abs(y).max() > 0.01
        assert n.family in NSYNTH_FAMILIES and n.dataset == "nsynth"


def test_reader_filters_and_balances():
    assert {n.family for n in read_nsynth(NSYNTH, families=["guitar", "flute"])} == {
        "guitar",
        "flute",
    }
    assert {n.source for n in read_nsynth(NSYNTH, sources=["electronic"])} == {"electronic"}
    assert len(read_nsynth(NSYNTH, per_combo=1)) == 8  # one note per instrument already
    with pytest.raises(ValueError, match="unknown NSynth family"):
        read_nsynth(NSYNTH, families=["kazoo"])
    with pytest.raises(FileNotFoundError, match="examples.json"):
        read_nsynth(NSYNTH / "audio")


def _note(**kw) -> Note:
    base = dict(
        note_id="x",
        audio_path="x.wav",
        pitch=60,
        velocity=75,
        instrument="i",
        family="guitar",
        source="acoustic",
        name="acoustic guitar",
        dataset="nsynth",
    )
    base.update(kw)
    return Note(**base)


def test_captions():
    caps = captions_for(_note(pitch=40, velocity=25, qualities=["bright", "long_release"]))
    assert caps[0] == "a guitar note"
    assert "an acoustic guitar note" in caps
    assert "a low guitar note" in caps and "a soft guitar note" in caps
    assert "a bright guitar note" in caps and "a guitar note with a long release" in caps
    gm = captions_for(
        _note(dataset="gm", name="nylon string guitar", family="guitar", pitch=72, velocity=100)
    )
    assert (
        "a nylon string guitar" in gm and "a high guitar note" in gm and "a loud guitar note" in gm
    )
    assert len(gm) == len(set(gm))


def test_paraphrases_are_never_captions():
    every = set()
    for fam, src, pitch, vel in itertools.product(
        NSYNTH_FAMILIES, ("acoustic", "electronic"), (30, 60, 90), (25, 75, 127)
    ):
        every.update(
            captions_for(
                _note(
                    family=fam,
                    source=src,
                    pitch=pitch,
                    velocity=vel,
                    qualities=list(QUALITY_TEMPLATES),
                )
            )
        )
    from training.gm import GM_PROGRAMS

    for name, fam, src in GM_PROGRAMS:
        every.update(captions_for(_note(family=fam, source=src, name=name, dataset="gm")))
    assert set(PARAPHRASES) == set(NSYNTH_FAMILIES)
    for prompts in PARAPHRASES.values():
        assert not set(prompts) & every


def _record(i: int, inst: str, family: str, dataset: str = "nsynth", audio: str = "a.wav") -> dict:
    theta = {
        "pitch_midi": 60.0,
        "velocity": 100.0,
        "sample_rate": 16000.0,
        "duration_s": 4.0,
        "attack_s": 0.01 * (i + 1),
        "decay_s": 0.3,
        "sustain": 0.5,
        "release_s": 0.2,
        "mod_ratio": 1.0 + i % 3,
        "mod_index": 1.5,
    }
    return {
        "note_id": f"{inst}-{i}",
        "audio_path": audio,
        "instrument": inst,
        "family": family,
        "dataset": dataset,
        "pitch": 60,
        "velocity": 100,
        "source": "acoustic",
        "name": family,
        "qualities": [],
        "captions": [f"a {family} note"],
        "theta": theta,
    }


def test_manifest_round_trip(tmp_path):
    (tmp_path / "audio").mkdir()
    recs = [
        _record(i, f"guitar_{i % 2}", "guitar", audio=str(tmp_path / "audio" / f"{i}.wav"))
        for i in range(5)
    ]
    recs.append(_record(9, "elsewhere", "flute", audio="/abs/where/n.flac"))
    assert write_manifest(tmp_path / "manifest.jsonl", recs) == 6
    line = json.loads((tmp_path / "manifest.jsonl").read_text().splitlines()[0])
    assert line["audio_path"] == "audio/0.wav"  # relative inside the dataset folder
    back = read_manifest(tmp_path / "manifest.jsonl")
    assert [r["audio_path"] for r in back] == [r["audio_path"] for r in recs]
    np.testing.assert_allclose(manifest_thetas(back), manifest_thetas(recs))
    bad = dict(recs[0], theta=dict(recs[0]["theta"], sustain=3.0))
    write_manifest(tmp_path / "bad.jsonl", [bad])
    with pytest.raises(ValueError, match="sustain must be in range"):
        read_manifest(tmp_path / "bad.jsonl")


def test_split_never_shares_instruments():
    rng = random.Random(3)
    recs = []
    for fam in ("guitar", "flute", "organ", "vocal"):
        for k in range(rng.randint(1, 6)):
            for ds in ("nsynth", "gm"):
                recs += [_record(i, f"{ds}_{fam}_{k}", fam, ds) for i in range(rng.randint(1, 9))]
    for seed in range(5):
        tr, va, val_insts = split_by_instrument(recs, 0.2, seed)
        assert sorted(tr + va) == list(range(len(recs)))
        tr_i = {recs[i]["instrument"] for i in tr}
        va_i = {recs[i]["instrument"] for i in va}
        assert not tr_i & va_i and va_i == set(val_insts)
        for fam in ("guitar", "flute", "organ", "vocal"):
            for ds in ("nsynth", "gm"):
                insts = {r["instrument"] for r in recs if r["family"] == fam and r["dataset"] == ds}
                if len(insts) >= 2:
                    assert insts & va_i and insts & tr_i


def test_soundfont_renderer(tmp_path):
    from training.soundfont import FLUIDR3_PATHS, find_soundfont, render_gm_notes

    pytest.importorskip("fluidsynth", reason="pyfluidsynth is not installed")
    if not any(Path(p).is_file() for p in FLUIDR3_PATHS):
        pytest.skip("FluidR3_GM.sf2 is absent (apt install fluid-soundfont-gm)")
    assert find_soundfont().name == "FluidR3_GM.sf2"
    notes = render_gm_notes(tmp_path, programs=[24, 73], pitches=(60,), velocities=(100,))
    assert [n.name for n in notes] == ["nylon string guitar", "flute"]
    assert [n.family for n in notes] == ["guitar", "flute"]
    for n in notes:
        y = load_audio(n.audio_path)
        assert y.shape == (NOTE_SAMPLES,) and np.abs(y).max() > 0.01
        # Held 3 s, then released: the last 0.25 s is far quieter than the held part.
        assert np.abs(y[-4000:]).max() < 0.5 * np.abs(y[16000:40000]).max()
