"""A recording becomes a patch: `promptsynth patch from-audio` on real NSynth notes
(tests/data/nsynth, CC BY 4.0), and the live host's /patch/from-audio."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.server.conftest import ROOT, HostProcess, OscClient

NSYNTH = ROOT / "tests" / "data" / "nsynth"
EXAMPLES = json.loads((NSYNTH / "examples.json").read_text())


def note_file(note_id: str) -> Path:
    return next((NSYNTH / "audio").glob(f"{note_id}.*"))


def from_audio(*args: str, bank: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "patch", "from-audio", *args, "--bank", str(bank)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("note_id", ["brass_acoustic_006-060-100", "flute_acoustic_002-075-100"])
def test_a_note_becomes_a_patch_closer_to_it_than_its_familys_prompt(tmp_path, note_id):
    """The patch fitted to a real note sounds more like that note than the shipped
    model's patch for "a {family} note", rendered at the note's pitch and velocity."""
    from engine import render_note
    from model import Predictor
    from patches import Bank
    from training.from_audio import read_note
    from training.notes import HOLD_S, TAIL_S
    from training.spectral import spectral_distance

    meta = EXAMPLES[note_id]
    r = from_audio(str(note_file(note_id)), "--name", "mine", "--json", bank=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["name"] == "mine" and result["notes"][0]["pitch"] == meta["pitch"]  # detected
    patch = Bank(tmp_path).load("mine")
    assert patch.source["audio"] == [str(note_file(note_id).resolve())]
    y = read_note(note_file(note_id))
    p, v = meta["pitch"], meta["velocity"]
    mine = render_note(patch.table, p, v, 16000, HOLD_S, TAIL_S)
    family = Predictor.load().patch(f"a {meta['instrument_family_str']} note")
    theirs = render_note(family, p, v, 16000, HOLD_S, TAIL_S)
    d_mine, d_family = float(spectral_distance(y, mine)), float(spectral_distance(y, theirs))
    assert d_mine < d_family, (d_mine, d_family)
    assert d_mine == pytest.approx(patch.source["fit_distance"], abs=0.05)


def test_several_notes_make_a_patch_that_follows_the_keyboard(tmp_path):
    low, high = note_file("organ_electronic_007-053-050"), note_file("flute_acoustic_002-075-100")
    r = from_audio(str(low), str(high), "--name", "two notes", bank=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "MIDI note 53 (detected)" in r.stdout and "MIDI note 75 (detected)" in r.stdout
    assert "spectral distance" in r.stdout
    from patches import Bank

    table = Bank(tmp_path).load("two notes").table
    assert table.keys == (53, 75) and not table.is_flat
    assert (tmp_path / "two-notes.json").is_file()
    # --pitch overrides the detection; the picture shows the recording beside the patch.
    r = from_audio(str(low), "--name", "given", "--pitch", "52", bank=tmp_path)
    assert r.returncode == 0 and "MIDI note 52 (given)" in r.stdout
    out = tmp_path / "given.png"
    r = subprocess.run([sys.executable, "-m", "server", "patch", "show", "given", "--out", str(out),
                        "--bank", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d: d / "missing.wav", "no such file"),
        (lambda d: _write(d / "silence.wav", np.zeros(16000)), "silent"),
        (lambda d: _text(d / "notes.wav"), "cannot read it as audio"),
        (lambda d: _write(d / "noise.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 32000)), "no pitch found"),
    ],
)
def test_bad_recordings_are_a_clear_error(tmp_path, make, words):
    path = make(tmp_path)
    r = from_audio(str(path), "--name", "x", bank=tmp_path / "bank")
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "bank" / "x.json").exists()


def _write(path: Path, y: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(path, y.astype(np.float32), 16000)
    return path


def _text(path: Path) -> Path:
    path.write_text("not audio")
    return path


# -- the live host ------------------------------------------------------------------------


@pytest.mark.jack
@pytest.mark.slow
def test_the_host_makes_and_plays_a_patch_from_a_recording_in_its_folder(jack, tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(note_file("brass_acoustic_006-060-100"), folder / "horn.wav")
    (tmp_path / "secret.wav").write_bytes(b"x")
    bank = tmp_path / "bank"
    h = HostProcess(["--no-model", "--bank", str(bank), "--audio-dir", str(folder)])
    c = OscClient(h.port)
    try:
        c.ask("/notify", c.port, reply="/notify.reply")
        for bad, words in [
            ("../secret.wav", "inside the --audio-dir folder"),
            (str(tmp_path / "secret.wav"), "inside the --audio-dir folder"),
            ("nothing.wav", "no file 'nothing.wav'"),
        ]:
            c.send("/patch/from-audio", bad, "x", 2)
            assert words in c.expect("/fail", where=lambda p: p[0] == "/patch/from-audio")[1]
        c.send("/patch/from-audio", "horn.wav", "my horn", 2)
        done = c.expect("/patch/from-audio/done", timeout=60)
        assert done[:2] == ["my horn", 2] and 0.0 < done[2] < 1.3
        changed = c.expect("/patch/changed", where=lambda p: p[1] == "my horn")
        assert changed[0] == 2
        assert (bank / "my-horn.json").is_file()
        # It plays: a note on channel 2 sounds.
        c.send("/note", 60, 100, 2)
        c.ask("/sync", 1, reply="/synced")
        assert c.ask("/status", reply="/status.reply")[0] == 1
        c.send("/note/off", 60, 2)
    finally:
        c.close()
        assert h.stop() == 0
    # Without --audio-dir the address is refused, saying why.
    h = HostProcess(["--no-model", "--bank", str(bank)])
    c = OscClient(h.port)
    try:
        c.send("/patch/from-audio", "horn.wav", "x")
        assert "--audio-dir" in c.expect("/fail", where=lambda p: p[0] == "/patch/from-audio")[1]
    finally:
        c.close()
        h.stop()
    assert os.path.exists(tmp_path / "secret.wav")
