"""Every melodic preset of a SoundFont, described in words: the General MIDI fonts Debian
packages (:data:`SOUNDFONTS`) or any ``.sf2``/``.sf3`` a user owns
(:func:`resolve_soundfonts`).

A preset is named by its SoundFont (``font``), bank and program. :func:`describe` gives it
a name in the words people use ("Acou Piano 1" -> "acoustic piano", "Strings Trem Expr."
-> "tremolo strings"), a family (NSynth's ten where one fits, else a GM class: "synth
lead", "synth pad", "synth effect", "percussion", "sound effect") and a source (acoustic,
electronic, synthetic). The name decides where its words say what the instrument is;
otherwise the General MIDI program does, for fonts laid out as General MIDI (every bank
of them but the MT-32 bank 127 of sf_GMbank, whose programs follow the Roland MT-32).

Drum kits (bank 128) are not melodic and are left out. The fonts, their Debian packages
and licences are listed in :data:`SOUNDFONTS` and in ``ATTRIBUTION.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.gm import GM_PROGRAMS

__all__ = [
    "SOUNDFONTS", "FONT_SUFFIXES", "SoundFont", "Preset", "describe", "installed_soundfonts", "list_presets",
    "resolve_soundfonts",
]


@dataclass(frozen=True)
class SoundFont:
    """A SoundFont Debian packages: where it lies, its package, author and licence."""

    key: str
    path: str
    package: str
    author: str
    licence: str
    #: Program numbers follow General MIDI (except in ``mt32_banks``).
    mt32_banks: tuple[int, ...] = ()
    #: Every preset is this kind of synthesis, whatever its name says.
    source: str | None = None


SOUNDFONTS: tuple[SoundFont, ...] = (
    SoundFont("fluidr3_gm", "/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm",
              "Frank Wen and contributors", "MIT"),
    SoundFont("fluidr3_gs", "/usr/share/sounds/sf2/FluidR3_GS.sf2", "fluid-soundfont-gs",
              "Frank Wen and contributors", "MIT"),
    SoundFont("musescore_general", "/usr/share/sounds/sf3/MuseScore_General_Full.sf3",
              "musescore-general-soundfont", "S. Christian Collins (after Fluid R3 by Frank Wen)",
              "MIT (parts public domain or CC0)"),
    SoundFont("timgm6mb", "/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont",
              "Tim Brechbill", "GPL-2"),
    SoundFont("sf_gmbank", "/usr/share/sounds/sf2/sf_GMbank.sf2", "csound-soundfont",
              "unknown (public domain in its licence field)", "public domain",
              mt32_banks=(127,)),
    SoundFont("opl3_fm", "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2", "opl3-soundfont",
              "Zandro Reveille", "CC-BY-SA-4.0", source="synthetic"),
)


@dataclass(frozen=True)
class Preset:
    """One melodic preset: ``font`` (a :data:`SOUNDFONTS` key), ``bank``, ``program`` and
    the preset's own ``title`` as stored in the font."""

    font: str
    bank: int
    program: int
    title: str

    @property
    def instrument(self) -> str:
        """A stable id: ``sf-<font>-<bank>-<program>``."""
        return f"sf-{self.font}-{self.bank:03d}-{self.program:03d}"


def installed_soundfonts(keys: list[str] | None = None) -> list[SoundFont]:
    """The fonts of :data:`SOUNDFONTS` present on this machine (``keys``: only those;
    a key asked for but missing is an error naming its package)."""
    known = {f.key: f for f in SOUNDFONTS}
    if keys is None:
        return [f for f in SOUNDFONTS if Path(f.path).is_file()]
    out = []
    for k in keys:
        if k not in known:
            raise ValueError(f"unknown SoundFont {k!r}; known: {', '.join(known)}")
        f = known[k]
        if not Path(f.path).is_file():
            raise FileNotFoundError(f"{f.path} is missing: install the Debian package {f.package}")
        out.append(f)
    return out


#: The files a SoundFont comes in (.sf3: samples compressed with Ogg Vorbis).
FONT_SUFFIXES = (".sf2", ".sf3")


def _font_key(path: Path, taken: set[str]) -> str:
    """A key for a user's font: its file name in lower-case letters, digits and ``_`` (an
    instrument id is ``sf-<key>-<bank>-<program>``: no ``-`` in it), unique."""
    base = re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "font"
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}_{n}"
    return key


def resolve_soundfonts(items: Sequence[str | os.PathLike]) -> list[SoundFont]:
    """The fonts ``items`` name: ``all`` (every installed font of :data:`SOUNDFONTS`), a
    key of :data:`SOUNDFONTS`, a ``.sf2``/``.sf3`` file, or a folder (every such file in
    it and below, in name order). A file of :data:`SOUNDFONTS` keeps its entry; any other
    is a user's font, keyed by its file name (:func:`_font_key`), its presets named and
    captioned as any other's. Each font once, in the order given."""
    known = {f.key: f for f in SOUNDFONTS}
    by_path = {str(Path(f.path).resolve()): f for f in SOUNDFONTS}
    out: list[SoundFont] = []
    seen: set[str] = set()
    taken = set(known)

    def add_file(path: Path) -> None:
        real = str(path.resolve())
        if real in seen:
            return
        seen.add(real)
        font = by_path.get(real)
        if font is None:
            key = _font_key(path, taken)
            font = SoundFont(key, str(path.resolve()), "", "unknown (a user's SoundFont)", "unknown: see the font")
        taken.add(font.key)
        out.append(font)

    if not items:
        raise ValueError("no SoundFont named: give all, keys of the known fonts, or .sf2/.sf3 files or folders")
    for item in items:
        text = os.fspath(item)
        path = Path(text)
        if text == "all":
            for f in installed_soundfonts():
                add_file(Path(f.path))
        elif text in known and not path.exists():
            add_file(Path(installed_soundfonts([text])[0].path))
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())
            if not found:
                raise ValueError(f"{path}: no .sf2 or .sf3 file in this folder")
            for p in found:
                add_file(p)
        elif path.is_file():
            if path.suffix.lower() not in FONT_SUFFIXES:
                raise ValueError(f"{path}: not a SoundFont (a .sf2 or .sf3 file is needed)")
            add_file(path)
        elif path.suffix.lower() in FONT_SUFFIXES or os.sep in text:
            raise FileNotFoundError(f"{path}: no such SoundFont file or folder")
        else:
            raise ValueError(
                f"unknown SoundFont {text!r}: give all, a key among {', '.join(known)}, "
                "or a .sf2/.sf3 file or folder"
            )
    return out


def list_presets(font: SoundFont) -> list[Preset]:
    """Every melodic preset of ``font`` (banks 0..127), in bank and program order."""
    import fluidsynth

    fs = fluidsynth.Synth(samplerate=16000.0)
    try:
        sfid = fs.sfload(font.path)
        if sfid < 0:
            raise ValueError(f"{font.path}: fluidsynth cannot read it as a SoundFont")
        out = []
        for bank in range(128):
            for prog in range(128):
                title = fs.sfpreset_name(sfid, bank, prog)
                if title is not None:
                    out.append(Preset(font.key, bank, prog, " ".join(str(title).split())))
        return out
    finally:
        fs.delete()


# Words of preset names, spelled out (lower case, after punctuation is split off).
_WORDS = {
    "acou": "acoustic", "ac": "acoustic", "elec": "electric", "el": "electric",
    "ep": "electric piano", "e.piano": "electric piano", "epiano": "electric piano",
    "gtr": "guitar", "gt": "guitar", "fl": "flute", "vox": "voice", "syn": "synth",
    "glock": "glockenspiel", "vibes": "vibraphone", "vibe": "vibraphone", "perc": "percussive",
    "trem": "tremolo", "str": "strings", "strs": "strings", "orch": "orchestral",
    "honkytonk": "honky-tonk piano", "harmo": "harmonica", "melo": "melodic", "tpt": "trumpet",
    "sax": "saxophone", "bs": "bass", "pno": "piano", "org": "organ", "hrn": "horn",
    "clav": "clavinet", "harpsi": "harpsichord", "pizz": "pizzicato", "bottleblow": "blown bottle",
    "breathpipe": "breath pipe", "windbell": "wind bell", "12-string": "12-string",
    "tremelo": "tremolo", "celli": "cellos", "basses": "double basses", "accordian": "accordion",
    "altosax": "alto saxophone", "barisax": "baritone saxophone", "sopsax": "soprano saxophone",
    "distortionguitar": "distortion guitar", "icerain": "ice rain", "lp": "", "drawbarorgan": "drawbar organ", "hmn": "harmon",
}
# Words that say nothing about the sound.
_DROP = {"mt", "expr", "gm", "gs", "xg", "sf", "fx", "tb"}

_A, _E, _S = "acoustic", "electronic", "synthetic"
# (pattern on the spelled-out name, family, source or None to keep the GM program's).
# The first that matches decides; order matters ("bass drum" before "bass").
_RULES: tuple[tuple[str, str, str | None], ...] = (
    (r"\b(drum|drums|tom|snare|cymbal|castanets?|taiko|woodblock|temple blocks?|agogo|"
     r"triangle|metronome|percussive \d|elec perc|electric percussive|rim)\b", "percussion", None),
    (r"\b(rain|dog|thunder|wind(?! chimes)|bird|door|car|punch|explosion|stream|river|scratch|heart|"
     r"bubble|siren|footsteps|train|jet|plane|starship|laugh\w*|scream\w*|lazergun|gun|"
     r"telephone|horse|applause|helicopter|seashore|noise|click|slap$|string slap)\b",
     "sound effect", None),
    (r"\bbassoon\b", "reed", _A),
    (r"\b(contrabass|double bass(es)?)\b", "string", _A),
    (r"\bsynth bass|\bsynthbass", "bass", _S),
    (r"\b(acoustic bass|upright bass)\b", "bass", _A),
    (r"\b(bass|fretless)\b", "bass", None),
    (r"\b(choir|chorale|voice|voices|aahs?|oohs?|singer|vocal|doo)\b", "vocal", None),
    (r"\b(pad|fantasy|fantasia|soundtrack|atmosphere|halo|sweep|polysynth)\b", "synth pad", _S),
    (r"\b(lead|square|saw|sawtooth|sine wave|calliope|chiff|charang)\b", "synth lead", _S),
    (r"\b(organ)\b", "organ", None),
    (r"\b(accordion|bandoneon|harmonica|sho|bagpipe|shanai|shenai)\b", "reed", _A),
    (r"\b(saxophone|oboe|clarinet|english horn|cor anglais)\b", "reed", _A),
    (r"\b(flute|piccolo|recorder|pan ?pipes?|pan flute|whistle|ocarina|blown bottle|"
     r"shakuhachi|breath pipe)\b", "flute", _A),
    (r"\b(trumpet|trombone|tuba|horn|horns|brass|cornet|flugelhorn)\b", "brass", None),
    (r"\b(guitar|mandolin|ukulele|banjo|sitar|shamisen)\b", "guitar", None),
    (r"\b(violin|viola|cello|fiddle|strings?|pizzicato|harp|koto|dulcimer|orchestral)\b",
     "string", None),
    (r"\b(piano|harpsichord|clavinet|clavi|keys)\b", "keyboard", None),
    (r"\b(bell|bells|glockenspiel|vibraphone|marimba|xylophone|mallet|kalimba|celesta|"
     r"music box|chimes|steel drums?|timpani|tinkle)\b", "mallet", None),
)
_SYNTH_WORDS = re.compile(r"\b(synth|analog|fm|square|saw|sawtooth|sine|digital|8-?bit|chip)\b")
_ELECTRIC_WORDS = re.compile(r"\b(electric|electronic|elec|distortion|overdrive|overdriven|"
                             r"feedback|drawbar|rock organ|jazz guitar|clean|muted guitar)\b")


def spell_out(title: str) -> str:
    """A preset's title in plain lower-case words: abbreviations spelled out, numbers,
    bank tags (MT, Expr.) and punctuation dropped. ``"Acou Piano 1"`` -> ``"acoustic piano"``."""
    raw = title.lower().replace("_", " ").replace("/", " ")
    raw = re.sub(r"(?<=[a-z])\.(?=\s|$)", " ", raw)  # "gtr." "perc." -> "gtr" "perc"
    words = []
    for w in raw.split():
        w = w.strip(".,:;()[]'\"!")
        w = re.sub(r"(?<=[a-z])\d+$", "", w)  # "violins2", "strings3"
        if not w or w in _DROP or re.fullmatch(r"v?[\d.]+", w):
            continue
        w = _WORDS.get(w, w)
        if w:
            words.append(w)
    out = " ".join(words)
    out = re.sub(r"\b(strings|violins|violas|cellos|double basses) tremolo\b", r"tremolo \1", out)
    out = re.sub(r"\b(strings|violins|violas|cellos|double basses) (fast|slow|pizzicato)\b",
                 r"\2 \1", out)
    return out


@dataclass(frozen=True)
class Description:
    """What a preset is, in words: ``name`` (its own), ``gm_name`` (its General MIDI
    program's, or None), ``family`` and ``source``."""

    name: str
    gm_name: str | None
    family: str
    source: str


def describe(preset: Preset) -> Description:
    """Name, family and source of ``preset`` (see the module's docstring)."""
    font = {f.key: f for f in SOUNDFONTS}.get(preset.font)
    gm_layout = font is None or preset.bank not in font.mt32_banks
    gm_name, gm_family, gm_source = GM_PROGRAMS[preset.program] if gm_layout else (None, None, None)
    name = spell_out(preset.title)
    if not re.search(r"[a-z]{2}", name):  # a font that names its presets by number
        name, gm_name = (gm_name or f"preset {preset.program}"), None
    family, source = None, None
    for pattern, fam, src in _RULES:
        if re.search(pattern, name):
            family, source = fam, src
            break
    if family is None:
        family = gm_family or "synth effect"
    if source is None:
        if _SYNTH_WORDS.search(name):
            source = _S
        elif _ELECTRIC_WORDS.search(name):
            source = _E
        elif gm_source is not None and gm_family == family:
            source = gm_source
        else:
            source = _A
    if font is not None and font.source is not None:
        source = font.source
    if gm_name == name:
        gm_name = None
    return Description(name=name, gm_name=gm_name, family=family, source=source)


__all__ += ["Description", "spell_out"]
