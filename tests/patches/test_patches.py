import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from engine import KEY_ANCHORS, TIMBRE_INDEX, TIMBRE_NAMES, VELOCITY_LAYERS, KeyTable, Theta, param
from patches import (
    Bank,
    Patch,
    PatchError,
    check_name,
    load_patch,
    morph,
    save_patch,
    save_patch_with_theta,
)

VALUES = {"attack_s": 0.05, "decay_s": 0.3, "sustain": 0.5, "release_s": 0.4, "mod_ratio": 2.0, "mod_index": 3.0}
#: A patch of one sound (a flat key table), and the default one.
FLAT = KeyTable.flat(VALUES)
DEFAULT = KeyTable.flat()


def write(path, d):
    path.write_text(json.dumps(d))
    return path


def good_dict(**changes):
    d = Patch("lead", FLAT, prompt="a lead").to_dict()
    d.update(changes)
    return d


def test_round_trip(tmp_path):
    p = Patch("soft flute", FLAT, prompt="a soft flute", source={"encoder": "minilm", "temperature": 0.0, "seed": None})
    save_patch(p, tmp_path / "a.json")
    q = load_patch(tmp_path / "a.json")
    assert q == p
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["format_version"] == 4 and "theta" not in d and d["keytable"]["keys"] == [60]
    assert "spectra" not in d["keytable"]  # the default spectra (a sine) are left out


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "something-else"}, 'field "format" must be "promptsynth-patch"'),
        ({"format_version": 9}, 'field "format_version" must be 1, 2, 3, 4 or 5, got 9'),
        ({"format_version": True}, 'field "format_version" must be 1, 2, 3, 4 or 5'),
        ({"format_version": 1, "theta": {}}, "unknown field(s) keytable"),
        ({"theta": VALUES}, "unknown field(s) theta"),  # format 3: the key table is the patch
        ({"keytable": {"keys": [60], "velocities": [100], "values": {"sustain": [[3.0]]}}},
         'field "keytable": sustain at key 60, velocity 100 must be a finite number in range 0..1, got 3'),
        ({"keytable": {"keys": [60], "velocities": [100]}}, "field \'values\' is missing"),
        ({"format_version": 2, "theta": {"attack_s": 9.0}}, 'field "theta": attack_s must be in range 0..2, got 9'),
        ({"format_version": 2, "theta": {"mod_index": "loud"}}, 'field "theta": mod_index must be a number'),
        ({"format_version": 2, "theta": [1, 2]}, 'field "theta" must be an object'),
        ({"schema_version": 99}, "newer than this promptsynth"),
        ({"name": "../../etc/passwd"}, 'field "name"'),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"source": {"seed": "x"}}, 'field "source.seed" has the wrong type'),
        ({"prompt": 5}, 'field "prompt" must be a string'),
    ],
)
def test_validation_names_file_and_field(tmp_path, changes, message):
    d = good_dict(**changes)
    if d["format_version"] in (1, 2) and "theta" not in d:
        d["theta"] = VALUES
    path = write(tmp_path / "p.json", d)
    with pytest.raises(PatchError) as e:
        load_patch(path)
    assert str(path) in str(e.value)
    assert message in str(e.value)


def test_nan_in_json_is_refused_naming_the_value(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(good_dict()).replace('"sustain": [[0.5]]', '"sustain": [[NaN]]'))
    assert "NaN" in path.read_text()
    with pytest.raises(PatchError, match="sustain at key 60, velocity 100 must be a number, got NaN"):
        load_patch(path)
    text = json.dumps(good_dict(source={"fit_distance": 1.0}))
    path.write_text(text.replace('"fit_distance": 1.0', '"fit_distance": -Infinity'))
    with pytest.raises(PatchError, match='field "source.fit_distance" has the wrong type: -Infinity'):
        load_patch(path)


def test_not_json_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(b"\x00\xff garbage")
    with pytest.raises(PatchError, match="not a valid JSON patch file"):
        load_patch(path)


@pytest.mark.parametrize("name", ["", "   ", "a/b", "..", "../x", "a\\b", ".hidden", "x" * 65, "tab\there", 5])
def test_unsafe_names_are_refused(name):
    with pytest.raises(PatchError):
        check_name(name)


@pytest.mark.parametrize("name", ["lead", "Soft Flute 2", "bass_(old)", "a.b-c+d"])
def test_good_names(name):
    assert check_name(name) == name


def test_save_refuses_to_clobber(tmp_path):
    save_patch(Patch("a", FLAT), tmp_path / "a.json")
    with pytest.raises(PatchError, match="exists"):
        save_patch(Patch("a", DEFAULT), tmp_path / "a.json")
    assert load_patch(tmp_path / "a.json").table == FLAT
    save_patch(Patch("a", DEFAULT), tmp_path / "a.json", overwrite=True)
    assert load_patch(tmp_path / "a.json").table == DEFAULT
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp files left


def test_bank_saves_under_a_new_name_unless_overwrite(tmp_path):
    bank = Bank(tmp_path)
    assert bank.save(Patch("pad", FLAT)) == "pad"
    assert bank.save(Patch("pad", DEFAULT)) == "pad-2"
    assert bank.load("pad").table == FLAT
    assert bank.save(Patch("pad", DEFAULT), overwrite=True) == "pad"
    assert Bank(tmp_path).load("pad").table == DEFAULT


def test_bank_skips_and_reports_corrupt_files(tmp_path):
    bank = Bank(tmp_path)
    bank.save(Patch("good", FLAT))
    (tmp_path / "broken.json").write_text("{not json")
    write(tmp_path / "foreign.json", {"some": "other program's file"})
    (tmp_path / "notes.txt").write_text("ignored")
    bank = Bank(tmp_path)
    assert bank.names() == ["good"]
    assert len(bank.errors) == 2
    assert any("broken.json" in e for e in bank.errors)
    # Asked for by name, the corrupt file's fault is said, not "no such patch".
    with pytest.raises(PatchError, match="broken.json: not a valid JSON patch file"):
        bank.load("broken")
    with pytest.raises(PatchError, match="no patch named 'absent'"):
        bank.load("absent")


def test_a_patch_file_added_later_is_found_by_name(tmp_path):
    bank = Bank(tmp_path)
    Bank(tmp_path).save(Patch("later", FLAT))  # another process, say
    assert bank.load("later").table == FLAT
    assert "later" in bank.names()


def test_bank_names_cannot_escape_the_folder(tmp_path):
    bank = Bank(tmp_path / "bank")
    for bad in ("../outside", "/etc/passwd", "..", "sub/dir"):
        with pytest.raises(PatchError):
            bank.save(Patch("x", FLAT), name=bad)
        with pytest.raises(PatchError):
            bank.load(bad)
    assert not (tmp_path / "outside.json").exists()


def test_program_map(tmp_path):
    bank = Bank(tmp_path)
    for n in ("b-organ", "a-piano", "c-strings"):
        bank.save(Patch(n, FLAT))
    assert bank.program(0).name == "a-piano"  # name order without a map
    assert bank.program(2).name == "c-strings"
    assert bank.program(3) is None
    bank.set_program(0, "c-strings")
    assert Bank(tmp_path).program(0).name == "c-strings"
    with pytest.raises(PatchError, match="program must be an int in range 0..127"):
        bank.program(128)


def test_morph_is_log_scaled_and_checked():
    a = KeyTable.flat({**VALUES, "attack_s": 0.01})
    b = KeyTable.flat({**VALUES, "attack_s": 1.0})
    mid = morph(a, b, 0.5)
    assert mid.is_flat
    assert mid.center()["attack_s"] == pytest.approx((0.011 * 1.001) ** 0.5 - 0.001, rel=1e-6)
    assert np.allclose(morph(a, b, 0.0).values, a.values, rtol=1e-9)
    assert morph(Patch("a", a), Patch("b", b), 1.0).center()["attack_s"] == pytest.approx(1.0)
    for bad in (-0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(PatchError, match="t must be a number in range 0..1"):
            morph(a, b, bad)
    with pytest.raises(PatchError, match="morph takes a Patch or a KeyTable"):
        morph(Theta(), b, 0.5)


_SAVER = """
import sys
from engine import KeyTable
from patches import Patch, save_patch
path = sys.argv[1]
i = 0
while True:
    # Alternate between two versions, as fast as possible.
    t = KeyTable.flat({"attack_s": 0.1 if i % 2 else 0.2})
    save_patch(Patch("p", t, prompt="x" * 900), path, overwrite=True)
    i += 1
"""


def test_kill_during_save_leaves_a_whole_file(tmp_path):
    """A save killed while under way leaves the patch whole: the version before it or
    the one it wrote, never a mix. The saver (saving two versions in turn, as fast as it
    can) is stopped at random moments; where its temporary file exists (made, not yet
    renamed over the patch: a save under way) it is killed, five times in all."""
    import random

    path = tmp_path / "p.json"
    save_patch(Patch("p", FLAT), path)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    rng = random.Random(7)
    caught = stops = 0
    while caught < 5:
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], env=env)
        try:
            while True:
                assert stops < 2000, f"only {caught} of {stops} stops came during a save"
                time.sleep(rng.uniform(0.0, 0.01))
                os.kill(proc.pid, signal.SIGSTOP)
                os.waitpid(proc.pid, os.WUNTRACED)  # stopped now: nothing moves
                stops += 1
                temps = [f for f in tmp_path.iterdir() if f.name.startswith(".tmp-")]
                if temps:
                    break
                os.kill(proc.pid, signal.SIGCONT)
        finally:
            proc.kill()
            proc.wait()
        caught += 1
        p = load_patch(path)  # never half-written
        assert p.table.center()["attack_s"] in (0.05, 0.1, 0.2)
        # A kill can leave a temp file behind, never a damaged patch; the bank ignores
        # hidden files. Removed, so that the next round's is its own.
        assert all(f.name.startswith(".tmp-") for f in tmp_path.iterdir() if f.name != "p.json")
        for f in temps:
            f.unlink()


def test_factory_bank_lies_underneath_read_only(tmp_path, monkeypatch):
    import patches.bank as bank_mod

    factory = tmp_path / "factory"
    fb = Bank(factory)
    fb.save(Patch("grand piano", FLAT, prompt="a bright acoustic grand piano"))
    fb.save(Patch("cello", DEFAULT))
    fb.set_program(0, "grand piano")
    fb.set_program(42, "cello")
    monkeypatch.setattr(bank_mod, "FACTORY_DIR", factory)

    user = Bank(tmp_path / "mine", factory=True)
    assert user.names() == ["cello", "grand piano"]
    assert user.load("grand piano").prompt == "a bright acoustic grand piano"
    assert user.program(42).name == "cello"
    # The user's own patch of the same name shadows the factory's; saves go to the user's folder.
    assert user.save(Patch("cello", FLAT)) == "cello"
    assert user.load("cello").table == FLAT
    assert Bank(factory).load("cello").table == DEFAULT
    assert user.own_names() == ["cello"]
    # The user's folder answers first (its map, then its patches by position); the
    # factory's map answers the programs it leaves open.
    assert user.program(0).name == "cello"  # the user's only patch, by position
    assert user.program(42).name == "cello"  # the factory's map
    user.save(Patch("zither", DEFAULT))
    user.set_program(42, "zither")
    assert user.program(42).name == "zither"
    assert user.program(1).name == "zither"
    assert Bank(tmp_path / "mine").names() == ["cello", "zither"]  # without the factory layer


def test_factory_bank_ships_whole():
    from patches import FACTORY_DIR
    from patches.factory_prompts import FACTORY_PROMPTS

    bank = Bank(FACTORY_DIR, create=False)
    assert bank.errors == []
    assert len(bank.names()) >= 32
    assert sorted(bank.names()) == sorted(name for _, name, _ in FACTORY_PROMPTS)
    for program, name, prompt in FACTORY_PROMPTS:
        p = bank.program(program)
        assert p.name == name and p.prompt == prompt
        assert p.source["encoder"] == "minilm"
        assert p.source["checkpoint"].startswith("sha256:")
    # Made by the model, not all alike: bowed strings swell, plucked strings die away.
    violin, guitar = bank.load("violin").table.center(), bank.load("nylon guitar").table.center()
    assert violin["attack_s"] > 3 * guitar["attack_s"]
    assert violin["sustain"] > guitar["sustain"] + 0.2


# -- older files, key tables ----------------------------------------------------------

V1_FILE = {
    "format": "promptsynth-patch",
    "format_version": 1,
    "name": "old lead",
    "schema_version": 1,
    "theta": VALUES,
    "prompt": "a lead",
    "created": "2026-11-20T10:00:00Z",
}


def test_format_1_file_loads_as_the_flat_patch_it_played(tmp_path):
    p = load_patch(write(tmp_path / "old.json", V1_FILE))
    assert p.table == FLAT  # the schema-2 values at their defaults: off
    assert p.table.center()["index_peak"] == 0.0 and p.table.center()["noise_level"] == 0.0
    assert np.array_equal(p.table.lookup(30, 20), FLAT.lookup(60, 100))
    # Saved again, it is written as format 3: the key table, no theta.
    save_patch(p, tmp_path / "new.json")
    d = json.loads((tmp_path / "new.json").read_text())
    assert (d["format_version"], d["schema_version"]) == (4, 5) and "theta" not in d
    assert load_patch(tmp_path / "new.json") == p


def test_format_2_file_plays_its_table_or_its_theta(tmp_path):
    table = _table()
    d = {**V1_FILE, "format_version": 2, "schema_version": 2, "theta": {**VALUES, "pitch_midi": 72}}
    assert load_patch(write(tmp_path / "flat.json", d)).table == FLAT  # render settings dropped
    d["keytable"] = table.to_dict()
    assert load_patch(write(tmp_path / "keyed.json", d)).table == KeyTable.from_dict(table.to_dict())


def test_the_seed_style_dump_holds_the_rendered_theta_and_loads_as_the_patch(tmp_path):
    table = _table()
    note = Theta.from_dict({**dict(zip(TIMBRE_NAMES, table.lookup(72, 90).tolist())),
                            "pitch_midi": 72, "velocity": 90, "sample_rate": 16000, "duration_s": 2.0})
    path = save_patch_with_theta(Patch("dump", table, prompt="a piano"), note, tmp_path / "dump.json")
    d = json.loads(path.read_text())
    assert d["format_version"] == 2 and d["theta"]["pitch_midi"] == 72 and d["theta"]["velocity"] == 90
    assert d["theta"]["decay_s"] == pytest.approx(table.lookup(72, 90)[TIMBRE_INDEX["decay_s"]])
    q = load_patch(path)
    assert q.prompt == "a piano" and np.allclose(q.table.values, table.values, rtol=5e-6)


def _table(seed=0):
    rng = np.random.default_rng(seed)
    names = ["decay_s", "mod_index", "noise_level"]
    lo = np.array([param(n).minimum for n in names])
    hi = np.array([param(n).maximum for n in names]) / 2
    vals = lo + (hi - lo) * rng.uniform(0, 1, (len(KEY_ANCHORS), len(VELOCITY_LAYERS), len(names)))
    return KeyTable(KEY_ANCHORS, VELOCITY_LAYERS, vals, names=names)


def test_table_round_trips_through_a_file(tmp_path):
    table = _table()
    p = Patch("keys", table, prompt="a piano")
    save_patch(p, tmp_path / "k.json")
    text = (tmp_path / "k.json").read_text()
    assert len(text) < 20000  # compact: one list per parameter
    q = load_patch(tmp_path / "k.json")
    assert q.table.center() == pytest.approx(p.table.center(), rel=2e-5)
    assert q.name == "keys" and q.prompt == "a piano"
    assert q.table.keys == table.keys and q.table.velocities == table.velocities
    assert np.allclose(q.table.values, table.values, rtol=5e-6, atol=0)
    for k, v in ((0, 1), (61, 80), (127, 127)):
        assert np.allclose(q.table.lookup(k, v), table.lookup(k, v), rtol=2e-5)
    # The bank keeps the table too.
    bank = Bank(tmp_path / "bank")
    bank.save(q)
    assert Bank(tmp_path / "bank").load("keys").table == q.table


def test_morph_of_tables_in_learning_space():
    a, b = _table(1), _table(2)
    m = morph(a, b, 0.25)
    assert m.keys == a.keys and m.velocities == a.velocities
    la, lb = a.learning_values(), b.learning_values()
    from engine.keytable import _from_learning

    assert np.allclose(m.values, _from_learning(la + 0.25 * (lb - la)), rtol=1e-9)
    assert np.allclose(morph(a, b, 0.0).values, a.values, rtol=1e-9)
    d = TIMBRE_INDEX["decay_s"]
    x, y = a.values[3, 2, d], b.values[3, 2, d]
    mid = morph(Patch("a", a), Patch("b", b), 0.5).values[3, 2, d]
    assert mid == pytest.approx(np.sqrt((x + 1e-3) * (y + 1e-3)) - 1e-3, rel=1e-9)  # log scale
    # A flat side takes the table's anchors; it is the same on every key.
    f = morph(a, FLAT, 1.0)
    assert f.keys == a.keys and np.allclose(f.values, FLAT.values[0, 0], rtol=1e-9)
    # Different anchors: both read at the union of their anchors, so every key and
    # velocity gets the timbre between the two tables' there.
    two = KeyTable.flat({**VALUES, "decay_s": 2.0})
    c = KeyTable([0, 127], [64], np.stack([FLAT.values[0, 0], two.values[0, 0]])[:, None, :])
    g = morph(a, c, 0.5)
    assert set(a.keys) | {0, 127} == set(g.keys) and set(a.velocities) | {64} == set(g.velocities)
    from engine.keytable import _to_learning

    for key, vel in [(0, 64), (37, 100), (60, 20), (99, 127), (127, 1)]:
        want = _from_learning(0.5 * (_to_learning(a.lookup(key, vel)) + _to_learning(c.lookup(key, vel))))
        assert np.allclose(g.lookup(key, vel), want, rtol=1e-6, atol=1e-9), (key, vel)
    with pytest.raises(PatchError, match="t must be a number in range 0..1"):
        morph(a, b, 2.0)


# -- format 4: the carrier's spectra ------------------------------------------------------

from engine.render import render_note  # noqa: E402
from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES  # noqa: E402

SINE = [0.0] + [DB_FLOOR] * (N_HARMONICS - 1)
BRIGHT = [round(-2.5 * k, 2) for k in range(N_HARMONICS)]  # -2.5 dB a harmonic
ODD = [0.0 if k % 2 == 0 else -30.0 for k in range(N_HARMONICS)]


def _spectral(table: KeyTable, onset, held) -> KeyTable:
    """``table`` with the same onset and held spectra on every anchor."""
    t = table
    for names, levels in ((ONSET_NAMES, onset), (HELD_NAMES, held)):
        for n, x in zip(names, levels):
            t = t.with_param(n, x)
    return t


def _keyed_spectra() -> KeyTable:
    """A table whose held spectrum differs from anchor to anchor: brighter up the keys."""
    table = _table()
    vals = table.values.copy()
    for a in range(len(table.keys)):
        for b in range(len(table.velocities)):
            tilt = -1.0 - 0.1 * a - 0.5 * b
            vals[a, :, [TIMBRE_INDEX[n] for n in HELD_NAMES]] = 0.0
            vals[a, b, [TIMBRE_INDEX[n] for n in HELD_NAMES]] = np.maximum(tilt * np.arange(N_HARMONICS), DB_FLOOR)
    return KeyTable(table.keys, table.velocities, vals)


def test_format_4_writes_each_spectrum_once_when_it_is_the_same_everywhere(tmp_path):
    table = _spectral(_table(), BRIGHT, ODD)
    save_patch(Patch("bright", table), tmp_path / "b.json")
    text = (tmp_path / "b.json").read_text()
    assert len(text) < 20000
    d = json.loads(text)
    kt = d["keytable"]
    assert d["format_version"] == 4 and d["schema_version"] == 5
    assert kt["spectra"] == {"onset_db": BRIGHT, "held_db": ODD}
    assert not any(n in kt["values"] for n in ONSET_NAMES + HELD_NAMES)
    # Readable: each spectrum on one line, whole levels written without ".0".
    assert '"held_db": [0, -30, 0, -30,' in text
    q = load_patch(tmp_path / "b.json")
    assert np.allclose(q.table.values, table.values, rtol=5e-6, atol=0)
    c = q.table.center()
    assert [c[n] for n in ONSET_NAMES] == BRIGHT and [c[n] for n in HELD_NAMES] == ODD


def test_format_4_writes_a_spectrum_per_anchor_where_they_differ(tmp_path):
    table = _keyed_spectra()
    save_patch(Patch("keyed", table), tmp_path / "k.json")
    text = (tmp_path / "k.json").read_text()
    kt = json.loads(text)["keytable"]
    assert "onset_db" not in kt["spectra"]  # the default: left out
    held = kt["spectra"]["held_db"]
    assert len(held) == len(KEY_ANCHORS) and all(len(row) == len(VELOCITY_LAYERS) for row in held)
    assert all(len(levels) == N_HARMONICS for row in held for levels in row)
    # One line a spectrum, not one a level.
    lines = [line.strip().rstrip(",") for line in text.splitlines()]
    assert sum(line.count(",") == N_HARMONICS - 1 for line in lines) == len(KEY_ANCHORS) * len(VELOCITY_LAYERS)
    q = load_patch(tmp_path / "k.json")
    assert np.allclose(q.table.values, table.values, rtol=5e-6, atol=1e-9)
    for k, v in ((0, 1), (61, 80), (127, 127)):
        assert np.allclose(q.table.lookup(k, v), table.lookup(k, v), rtol=2e-5, atol=1e-6)


def _v4(spectra, keys=(60,), velocities=(100,)):
    d = good_dict()
    d["keytable"]["spectra"] = spectra
    return d


@pytest.mark.parametrize(
    "spectra, message",
    [
        ({"held_db": SINE[:31]},
         'field "keytable.spectra.held_db" must be 32 levels in dB (harmonic 1 first), each a number in range -80..0; got 31 values'),
        ({"held_db": SINE[:3] + [5.0] + SINE[4:]},
         'field "keytable.spectra.held_db": harmonic 4 must be in range -80..0 (dB), got 5.0'),
        ({"onset_db": SINE[:7] + [-81] + SINE[8:]},
         'field "keytable.spectra.onset_db": harmonic 8 must be in range -80..0 (dB), got -81'),
        ({"held_db": SINE[:31] + ["-6"]},
         'field "keytable.spectra.held_db": harmonic 32 must be a number in range -80..0 (dB), got \'-6\''),
        ({"held_db": SINE[:31] + [True]}, "harmonic 32 must be a number"),
        ({"held_db": "bright"}, 'field "keytable.spectra.held_db" must be 32 levels in dB'),
        ({"held_db": [[SINE, SINE]]},
         'field "keytable.spectra.held_db" must be 32 levels in dB (the same at every anchor) or a [key][velocity] '
         "list of them: 1 keys, each a list of 1"),
        ({"held_db": [[SINE[:2] + [-3.0, None] + SINE[4:]]]},
         'field "keytable.spectra.held_db" at key 60, velocity 100: harmonic 4 must be a number in range -80..0 (dB), got None'),
        ({"dark_db": SINE}, 'field "keytable.spectra": unknown spectrum dark_db; accepted: onset_db, held_db'),
        ([SINE], 'field "keytable.spectra" must be an object with onset_db and/or held_db'),
    ],
)
def test_a_bad_spectrum_names_spectrum_anchor_and_harmonic(tmp_path, spectra, message):
    path = write(tmp_path / "p.json", _v4(spectra))
    with pytest.raises(PatchError) as e:
        load_patch(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_nan_in_a_spectrum_names_its_harmonic(tmp_path):
    path = tmp_path / "p.json"
    text = json.dumps(_v4({"held_db": SINE}))
    path.write_text(text.replace("-80.0, -80.0]", "-80.0, NaN]"))
    with pytest.raises(PatchError, match=r'keytable.spectra.held_db": harmonic 32 must be a number .* got NaN$'):
        load_patch(path)


def test_format_4_keeps_spectra_out_of_values(tmp_path):
    d = good_dict()
    d["keytable"]["values"]["held_h2"] = [[-6.0]]
    with pytest.raises(PatchError, match='holds held_h2: in format 4 the spectra lie in "keytable.spectra"'):
        load_patch(write(tmp_path / "p.json", d))
    # A format-3 file may hold them there (files saved by schema 5 before format 4).
    d["format_version"] = 3
    assert load_patch(write(tmp_path / "p.json", d)).table.center()["held_h2"] == -6.0


def test_a_bad_spectrum_never_replaces_a_saved_patch(tmp_path):
    """Loading a bad file raises before anything is made; the bank keeps the good patch
    of that name and a save over it is atomic."""
    bank = Bank(tmp_path)
    good = Patch("pad", _spectral(FLAT, BRIGHT, BRIGHT))
    bank.save(good)
    before = (tmp_path / "pad.json").read_bytes()
    bad = json.loads(before)
    bad["keytable"]["spectra"]["held_db"][5] = 12.0
    write(tmp_path / "pad-bad.json", {**bad, "name": "pad bad"})
    fresh = Bank(tmp_path)
    assert fresh.load("pad").table == good.table
    assert any("pad-bad.json" in e and "harmonic 6" in e for e in fresh.errors)
    with pytest.raises(PatchError, match="harmonic 6 must be in range -80..0"):
        fresh.load("pad bad")
    assert (tmp_path / "pad.json").read_bytes() == before


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_formats_play_the_sine_carrier_bit_for_bit(tmp_path, version):
    """A file of format 1-3 takes the default spectra (a sine): its notes render sample
    for sample as the same table read as format 3 did, and as after a save as format 4."""
    if version == 3:
        d = {**V1_FILE, "format_version": 3, "schema_version": 4, "keytable": _table().to_dict()}
        del d["theta"]
        d["keytable"]["values"] = {n: v for n, v in d["keytable"]["values"].items() if n not in ONSET_NAMES + HELD_NAMES}
        want = KeyTable.from_dict(d["keytable"])
    else:
        d = {**V1_FILE, "format_version": version}
        want = FLAT
    p = load_patch(write(tmp_path / "old.json", d))
    c = p.table.center()
    assert [c[n] for n in HELD_NAMES] == SINE and [c[n] for n in ONSET_NAMES] == SINE
    save_patch(p, tmp_path / "new.json")
    assert "spectra" not in json.loads((tmp_path / "new.json").read_text())["keytable"]
    q = load_patch(tmp_path / "new.json")
    for key, vel in ((36, 40), (60, 100), (84, 127)):
        y = render_note(p.table, key, vel, 16000, 0.3, 0.1)
        assert np.array_equal(y, render_note(want, key, vel, 16000, 0.3, 0.1))
        assert np.array_equal(y, render_note(q.table, key, vel, 16000, 0.3, 0.1))


def test_the_seed_style_dump_keeps_the_spectra(tmp_path):
    table = _spectral(FLAT, BRIGHT, ODD)
    note = Theta.from_dict({**dict(zip(TIMBRE_NAMES, table.lookup(60, 100).tolist())),
                            "pitch_midi": 60, "velocity": 100, "sample_rate": 16000, "duration_s": 1.0})
    path = save_patch_with_theta(Patch("dump", table), note, tmp_path / "dump.json")
    d = json.loads(path.read_text())
    assert d["format_version"] == 2 and d["keytable"]["spectra"] == {"onset_db": BRIGHT, "held_db": ODD}
    assert d["theta"]["held_h2"] == -30.0
    assert load_patch(path).table == table
