"""Tunings: Scala .scl/.kbm files read into a key -> note table, clear errors for bad
files, and the engine playing each key at its note within 1 cent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import Engine
from engine.tuning import EQUAL, Tuning, TuningError, read_kbm, read_scl
from tests.engine.helpers import cents, peak_frequency

DATA = Path(__file__).resolve().parents[1] / "data" / "tuning"
SR = 48000


def hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def test_19_equal_divisions_from_a_scl_file():
    t = Tuning.from_files(DATA / "19edo.scl")
    assert read_scl(DATA / "19edo.scl").description == "19 equal divisions of the octave"
    steps = np.arange(128) - 60
    np.testing.assert_allclose(t.notes, 60.0 + steps * 12.0 / 19.0, atol=1e-9)


def test_a_just_scale_on_the_white_keys_with_a_keymap():
    t = Tuning.from_files(DATA / "just-major.scl", DATA / "white-keys.kbm")
    km = read_kbm(DATA / "white-keys.kbm")
    assert km.mapping == (0, None, 1, None, 2, 3, None, 4, None, 5, None, 6)
    # A (key 69, degree 5/3 above C) is 440 Hz; C below it is 440 * 3/5.
    assert hz(t.notes[69]) == pytest.approx(440.0, abs=1e-9)
    assert hz(t.notes[60]) == pytest.approx(264.0, abs=1e-9)
    assert hz(t.notes[64]) == pytest.approx(264.0 * 5 / 4, abs=1e-9)
    assert hz(t.notes[72]) == pytest.approx(528.0, abs=1e-9)  # the octave: 7 degrees on
    assert np.isnan(t.notes[61]) and np.isnan(t.notes[73])  # black keys unmapped


@pytest.mark.parametrize("text, line, words", [
    ("desc\n", None, "ends after the description; expected the number of notes"),
    ("desc\n three\n", 2, "expected the number of notes (an integer), got 'three'"),
    ("desc\n 2\n 100.0\n", None, "says 2 notes, holds 1"),
    ("desc\n 2\n 100.0\n two hundred\n", 4, "expected a pitch (cents with a '.', like 701.955, or a ratio, like 3/2), got 'two hundred'"),
    ("desc\n 1\n -3/2\n", 3, "a ratio must be positive, got '-3/2'"),
    ("desc\n 1\n 1/0\n", 3, "expected a pitch"),
    ("desc\n 2\n 100.0\n -50.0\n", 4, "the last note (the period) must be above the 1/1"),
])
def test_a_bad_scl_file_is_refused_naming_the_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.scl"
    path.write_text(text)
    with pytest.raises(TuningError) as err:
        read_scl(path)
    where = f"{path}, line {line}: " if line else f"{path}: "
    assert str(err.value).startswith(where) and words in str(err.value), str(err.value)


def test_a_bad_kbm_file_is_refused_naming_the_file_and_line(tmp_path):
    path = tmp_path / "bad.kbm"
    path.write_text("12\n0\n127\n60\n69\nfour-forty\n12\n")
    with pytest.raises(TuningError, match=r"bad.kbm, line 6: expected the reference frequency in Hz, got 'four-forty'"):
        read_kbm(path)
    path.write_text("12\n0\n200\n")
    with pytest.raises(TuningError, match=r"line 3: the last MIDI note must be in range 0..127, got 200"):
        read_kbm(path)
    with pytest.raises(TuningError, match="cannot be read"):
        read_scl(tmp_path / "missing.scl")


def note_frequency(e: Engine, key: int) -> float:
    e.note_on(0, key, 100)
    y = e.render(SR // 2)[:, 0]
    e.note_off(0, key)
    e.render(SR // 4)
    return peak_frequency(y[SR // 10 :], SR)


def test_the_engine_plays_each_key_at_its_note_within_a_cent():
    e = Engine(sample_rate=SR)
    e.set_param(0, "mod_index", 0.0)
    e.set_param(0, "index_peak", 0.0)
    e.set_param(0, "noise_level", 0.0)
    t = Tuning.from_files(DATA / "19edo.scl")
    e.set_tuning(t.notes)
    for key in (48, 60, 65, 79):
        f = note_frequency(e, key)
        assert abs(cents(f, hz(t.notes[key]))) < 1.0, (key, f)
    e.set_tuning(EQUAL.notes)
    assert abs(cents(note_frequency(e, 65), hz(65))) < 1.0


def test_equal_temperament_sounds_as_no_tuning_at_all_and_unmapped_keys_are_silent():
    a, b = Engine(sample_rate=16000), Engine(sample_rate=16000)
    b.set_tuning(EQUAL.notes)
    for e in (a, b):
        e.note_on(0, 61, 90)
        e.pitch_bend(0, 1000)
    np.testing.assert_array_equal(a.render(3000), b.render(3000))
    c = Engine(sample_rate=16000)
    c.set_tuning(Tuning.from_files(DATA / "just-major.scl", DATA / "white-keys.kbm").notes)
    c.note_on(0, 61, 100)  # a black key: unmapped
    assert np.abs(c.render(2000)).max() == 0.0


def test_a_sounding_note_takes_the_new_tuning_and_bad_tables_are_refused():
    e = Engine(sample_rate=SR)
    e.set_param(0, "mod_index", 0.0)
    e.set_param(0, "index_peak", 0.0)
    e.note_on(0, 65, 100)
    e.render(SR // 10)
    t = Tuning.from_files(DATA / "19edo.scl")
    e.set_tuning(t.notes)
    e.render(SR // 10)
    y = e.render(SR // 2)[:, 0]
    assert abs(cents(peak_frequency(y, SR), hz(t.notes[65]))) < 1.0
    with pytest.raises(ValueError, match="a tuning must have 128 notes"):
        e.set_tuning(np.zeros(12))
    bad = EQUAL.notes.copy()
    bad[5] = 400.0
    with pytest.raises(ValueError, match=r"key 5's note must be in range -24..151 or NaN \(unmapped\), got 400.0"):
        e.set_tuning(bad)


def test_retuning_single_keys_leaves_the_others_as_they_are():
    e = Engine(sample_rate=SR)
    e.set_param(0, "mod_index", 0.0)
    e.set_param(0, "index_peak", 0.0)
    e.retune_keys({60: 60.5, 62: 61.0})
    assert abs(cents(note_frequency(e, 60), hz(60.5))) < 1.0
    assert abs(cents(note_frequency(e, 62), hz(61.0))) < 1.0
    assert abs(cents(note_frequency(e, 61), hz(61.0))) < 1.0  # untouched
    with pytest.raises(ValueError, match="key must be in range 0..127, got 128"):
        e.retune_keys({128: 60.0})
    with pytest.raises(ValueError, match="key 60's note must be in range -24..151, got nan"):
        e.retune_keys({60: float("nan")})


def fnote_frequency(e: Engine, hz: float) -> float:
    e.fnote_on(0, hz, 100)
    y = e.render(SR // 2)[:, 0]
    return peak_frequency(y[SR // 10 :], SR)


def test_a_note_at_any_frequency_whatever_the_tuning():
    e = Engine(sample_rate=SR)
    e.set_param(0, "mod_index", 0.0)
    e.set_param(0, "index_peak", 0.0)
    assert abs(cents(fnote_frequency(e, 432.0), 432.0)) < 1.0
    e.set_tuning(Tuning.from_files(DATA / "19edo.scl").notes)  # a sounding fnote keeps its pitch
    y = e.render(SR // 2)[:, 0]
    assert abs(cents(peak_frequency(y, SR), 432.0)) < 1.0
    e.note_on(0, 69, 100)  # the key nearest 432 Hz is a voice of its own
    e.render(128)
    assert e.voices.n == 2
    e.fnote_off(0, 432.0)
    e.note_off(0, 69)
    e.render(SR)
    assert e.voices.n == 0  # both ended: released, nothing stuck
    assert abs(cents(fnote_frequency(e, 31.5), 31.5)) < 1.0  # below any key's timbre anchor
    for bad, words in [(5.0, "hz must be in range 8..20000, got 5.0"), (float("nan"), "got nan")]:
        with pytest.raises(ValueError, match=words):
            e.fnote_on(0, bad, 100)
    with pytest.raises(ValueError, match="velocity must be in range 0..127, got 200"):
        e.fnote_on(0, 440.0, 200)
