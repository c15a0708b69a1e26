"""SoundFont presets in words, their captions, and rendering every preset of a font."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.captions import PARAPHRASES, captions_for, is_plural
from training.notes import Note
from training.presets import SOUNDFONTS, Preset, SoundFont, describe, spell_out


@pytest.mark.parametrize(
    "title, name",
    [
        ("Acou Piano 1", "acoustic piano"),
        ("Strings Trem Expr.", "tremolo strings"),
        ("Nylon Str. Gt.", "nylon strings guitar"),
        ("Pizzicato Str", "pizzicato strings"),
        ("Vibes", "vibraphone"),
    ],
)
def test_titles_are_spelled_out(title, name):
    assert spell_out(title) == name


@pytest.mark.parametrize(
    "preset, family, source",
    [
        (Preset("fluidr3_gm", 0, 0, "Yamaha Grand Piano"), "keyboard", "acoustic"),
        (Preset("fluidr3_gm", 0, 38, "Synth Bass 1"), "bass", "synthetic"),
        (Preset("fluidr3_gm", 0, 45, "Pizzicato Section"), "string", "acoustic"),
        (Preset("fluidr3_gm", 0, 70, "Bassoon"), "reed", "acoustic"),  # not a bass
        (Preset("fluidr3_gm", 0, 27, "Clean Guitar"), "guitar", "electronic"),
        (Preset("fluidr3_gm", 0, 88, "Fantasia"), "synth pad", "synthetic"),
        (Preset("fluidr3_gm", 0, 116, "Taiko Drum"), "percussion", "acoustic"),
        (Preset("fluidr3_gm", 0, 11, "Vibraphone"), "mallet", "acoustic"),
    ],
)
def test_presets_get_a_family_and_a_source(preset, family, source):
    d = describe(preset)
    assert (d.family, d.source) == (family, source)


def test_a_numbered_preset_takes_its_general_midi_name():
    # The OPL-3 font names its presets by number; its sounds are FM, whatever the program.
    d = describe(Preset("opl3_fm", 0, 40, "040"))
    assert d.name == "violin" and d.family == "string" and d.source == "synthetic"
    assert d.gm_name is None
    # A named preset keeps its own name, and the GM program's name becomes an alias.
    d = describe(Preset("fluidr3_gm", 0, 0, "Yamaha Grand Piano"))
    assert d.name == "yamaha grand piano" and d.gm_name == "grand piano"


def test_the_mt32_bank_is_not_read_as_general_midi():
    # Program 40 of sf_GMbank's bank 127 follows the MT-32; without a word that says what
    # it is, it is not called a violin.
    d = describe(Preset("sf_gmbank", 127, 40, "Whatever 7"))
    assert d.gm_name is None and d.family != "string"
    assert describe(Preset("sf_gmbank", 127, 40, "Fiddle")).family == "string"


def test_soundfonts_say_where_they_come_from():
    for font in SOUNDFONTS:
        assert font.package and font.author and font.licence
        assert Path(font.path).suffix in (".sf2", ".sf3")


def _note(name, family, aliases=(), source="acoustic"):
    return Note(note_id="n", audio_path="x.wav", pitch=60, velocity=100, instrument="sf-x-000-000",
                family=family, source=source, name=name, dataset="soundfont", aliases=list(aliases))


def test_captions_name_the_instrument_in_several_ways():
    caps = captions_for(_note("harpsichord", "keyboard", aliases=["clavecin"]))
    for want in ("a harpsichord", "a harpsichord note", "the sound of a harpsichord",
                 "a harpsichord played on its keys", "a clavecin", "a keyboard note"):
        assert want in caps, (want, caps)
    # Plural names take no article, and no "a ... note".
    assert is_plural("pizzicato violas") and not is_plural("brass") and not is_plural("bass")
    caps = captions_for(_note("pizzicato violas", "string"))
    assert "pizzicato violas" in caps and "the sound of pizzicato violas" in caps
    assert "pizzicato violas plucked" in caps  # pizzicato strings are plucked, not bowed
    assert not any(c.startswith("a pizzicato") for c in caps)


def test_no_caption_is_an_evaluation_paraphrase():
    held_out = {p for ps in PARAPHRASES.values() for p in ps}
    for name, fam in [("bass guitar", "bass"), ("flute", "flute"), ("violin", "string"),
                      ("trumpet", "brass"), ("choir aahs", "vocal"), ("church organ", "organ")]:
        assert not held_out & set(captions_for(_note(name, fam)))


@pytest.mark.slow
def test_every_preset_of_a_font_renders_and_a_second_run_renders_nothing(tmp_path):
    pretty_midi = pytest.importorskip("pretty_midi")
    from training.executor import Executor
    from training.soundfont import render_presets

    sf2 = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    font = SoundFont("tim_test", str(sf2), "python3-pretty-midi", "Tim Brechbill", "GPL-2")
    notes = render_presets(tmp_path, [font], pitches=(60,), executor=Executor(workers=1))
    files = sorted((tmp_path / "audio" / "sf").glob("*.wav"))
    assert len(notes) == len(files) > 100  # every melodic preset that sounds at key 60
    ids = {n.instrument for n in notes}
    assert "sf-tim_test-000-000" in ids and not any("-128-" in i for i in ids)  # no drum kits
    piano = next(n for n in notes if n.instrument == "sf-tim_test-000-000")
    assert piano.family == "keyboard" and piano.dataset == "soundfont"
    stamp = {f: f.stat().st_mtime_ns for f in files}
    again = render_presets(tmp_path, [font], pitches=(60,), executor=Executor(workers=1))
    assert [n.note_id for n in again] == [n.note_id for n in notes]
    assert {f: f.stat().st_mtime_ns for f in files} == stamp  # nothing rendered twice


def _tim() -> Path:
    pretty_midi = pytest.importorskip("pretty_midi")
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def test_any_soundfont_file_or_folder_is_a_font(tmp_path):
    import shutil

    from training.presets import resolve_soundfonts

    fonts = tmp_path / "fonts"
    (fonts / "more").mkdir(parents=True)
    shutil.copy(_tim(), fonts / "My Piano-2.sf2")
    shutil.copy(_tim(), fonts / "more" / "my piano 2.SF2")  # the same key once cleaned: made unique
    (fonts / "notes.txt").write_text("not a font")
    got = resolve_soundfonts([str(fonts)])
    assert [f.key for f in got] == ["my_piano_2", "my_piano_2_2"]
    assert all(Path(f.path).is_file() and f.package == "" for f in got)
    # A file named twice, as a file and inside its folder, is one font.
    assert len(resolve_soundfonts([str(fonts / "My Piano-2.sf2"), str(fonts)])) == 2
    # A file of the known fonts keeps its entry.
    known = [f for f in SOUNDFONTS if Path(f.path).is_file()]
    if known:
        assert resolve_soundfonts([known[0].path])[0] == known[0]
        assert resolve_soundfonts([known[0].key]) == [known[0]]


@pytest.mark.parametrize(
    ("item", "error", "words"),
    [
        ("nope", ValueError, "unknown SoundFont 'nope'"),
        ("missing.sf2", FileNotFoundError, "no such SoundFont"),
        ("notes.txt", ValueError, "not a SoundFont"),
        ("empty", ValueError, "no .sf2 or .sf3 file"),
    ],
)
def test_a_soundfont_that_is_not_one_is_a_clear_error(tmp_path, monkeypatch, item, error, words):
    from training.presets import resolve_soundfonts

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a font")
    (tmp_path / "empty").mkdir()
    with pytest.raises(error, match=words):
        resolve_soundfonts([item])


def test_a_users_font_renders_named_and_captioned_like_the_others(tmp_path):
    import shutil

    from training.captions import captions_for
    from training.executor import Executor
    from training.presets import resolve_soundfonts
    from training.soundfont import render_presets

    shutil.copy(_tim(), tmp_path / "Studio Keys.sf3")  # .sf3 by name: fluidsynth reads either
    fonts = resolve_soundfonts([str(tmp_path / "Studio Keys.sf3")])
    notes = render_presets(tmp_path / "out", fonts, pitches=(60,), executor=Executor(workers=1))
    piano = next(n for n in notes if n.instrument == "sf-studio_keys-000-000")
    assert (piano.name, piano.family, piano.dataset) == ("piano", "keyboard", "soundfont")
    assert "a piano" in captions_for(piano) and "the sound of a piano" in captions_for(piano)


def test_the_cli_names_a_missing_soundfont(tmp_path, capsys):
    from server.cli import main

    assert main(["dataset", "build", "--soundfonts", str(tmp_path / "gone.sf2"), "--out", str(tmp_path / "d")]) == 2
    assert "gone.sf2: no such SoundFont" in capsys.readouterr().err
