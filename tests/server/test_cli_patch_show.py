"""`promptsynth patch show`: the values of a patch and its carrier's spectra drawn as text
(a bar a harmonic), at key 60, velocity 100."""

from __future__ import annotations

import numpy as np

from engine import KEY_ANCHORS, VELOCITY_LAYERS, KeyTable
from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES, TIMBRE_INDEX
from patches import Bank, Patch
from server.cli import main

#: Onset: 0, -20, -40, -60 dB on harmonics 1-4, the rest silent. Held: harmonic 1 at 0 dB
#: and harmonic 3 at -10, the rest silent.
ONSET = [0.0, -20.0, -40.0, -60.0] + [DB_FLOOR] * (N_HARMONICS - 4)
HELD = [0.0, DB_FLOOR, -10.0] + [DB_FLOOR] * (N_HARMONICS - 3)
FULL, HALF = "\u2588", "\u2584"


def _show(capsys, bank, name) -> list[str]:
    assert main(["patch", "--bank", str(bank), "show", name]) == 0
    return capsys.readouterr().out.splitlines()


def _bars(lines: list[str]) -> tuple[list[str], list[str]]:
    """The onset and held bars, top row first, 32 columns each."""
    rows = [line for line in lines if line.rstrip().endswith("|") and line.count("|") == 4]
    assert len(rows) == 4, lines
    parts = [row.split("|") for row in rows]
    return [p[1] for p in parts], [p[3] for p in parts]


def test_patch_show_draws_both_spectra_and_their_motion(tmp_path, capsys):
    values = {"onset_s": 0.05, "darken_db": 6.0, "darken_s": 2.0, "env_curve": 0.5, "mod_index": 1.5}
    values |= dict(zip(ONSET_NAMES, ONSET)) | dict(zip(HELD_NAMES, HELD))
    Bank(tmp_path).save(Patch("reed", KeyTable.flat(values)))
    lines = _show(capsys, tmp_path, "reed")
    text = "\n".join(lines)
    onset, held = _bars(lines)
    assert all(len(r) == N_HARMONICS for r in onset + held)
    # One column a harmonic, as high as its level: 0 dB fills all four rows (20 dB
    # each), -20 three, -40 two, -60 one; -10 dB three and a half; silent none.
    assert [r[:5] for r in onset] == [FULL + "    ", FULL * 2 + "   ", FULL * 3 + "  ", FULL * 4 + " "]
    assert [r[:4] for r in held] == [FULL + " " + HALF + " ", FULL + " " + FULL + " ", FULL + " " + FULL + " ", FULL + " " + FULL + " "]
    assert all(set(r[5:]) == {" "} for r in onset) and all(set(r[4:]) == {" "} for r in held)
    assert "  onset dB      0 -20 -40 -60 (h5..h32 off)" in lines
    assert "  held dB       0 off -10 (h4..h32 off)" in lines
    assert any(line.startswith("  onset_s       0.05 ") for line in lines)
    assert any(line.startswith("  darken_db     6 ") for line in lines)
    assert any(line.startswith("  darken_s      2 ") for line in lines)
    assert any(line.startswith("  env_curve     0.5 ") for line in lines)
    assert any(line.startswith("  mod_index     1.5 ") for line in lines)
    # The 64 levels are drawn, not listed one a line.
    assert "held_h1 " not in text and "onset_h2 " not in text
    assert len(lines) < 45


def test_patch_show_of_a_sine_patch_says_so(tmp_path, capsys):
    Bank(tmp_path).save(Patch("plain", KeyTable.flat({"mod_index": 2.0})))
    lines = _show(capsys, tmp_path, "plain")
    assert "  carrier       sine (onset and held spectra at their default: harmonic 1 only)" in lines
    assert not any("|" in line for line in lines)


def test_patch_show_draws_the_centre_key_of_a_key_table(tmp_path, capsys):
    """A key table's spectra differ from key to key: the drawing is key 60's."""
    vals = np.broadcast_to(KeyTable.flat().values[0, 0], (len(KEY_ANCHORS), len(VELOCITY_LAYERS), 85)).copy()
    held = [TIMBRE_INDEX[n] for n in HELD_NAMES]
    for a, key in enumerate(KEY_ANCHORS):
        levels = np.full(N_HARMONICS, DB_FLOOR)
        levels[0] = 0.0
        levels[1] = -20.0 if key == 60 else -70.0  # key 60 alone has a loud second harmonic
        vals[a, :, held] = levels[:, None]
    Bank(tmp_path).save(Patch("keyed", KeyTable(KEY_ANCHORS, VELOCITY_LAYERS, vals)))
    lines = _show(capsys, tmp_path, "keyed")
    assert any("a key table" in line for line in lines)
    assert "  held dB       0 -20 (h3..h32 off)" in lines
    _, held_bars = _bars(lines)
    assert [r[:2] for r in held_bars] == [FULL + " ", FULL * 2, FULL * 2, FULL * 2]
