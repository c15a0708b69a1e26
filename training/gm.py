"""The General MIDI program table: each of the 128 programs' name in words, its NSynth
family (or General MIDI class where none fits) and its source.

Read by the SoundFont renderer (:mod:`training.soundfont`), the preset describer
(:mod:`training.presets`) and the evaluation; it imports nothing of theirs.
"""

from __future__ import annotations

__all__ = ["GM_PROGRAMS"]

# (name in words, NSynth family or GM class where none fits, source), by GM program 0..127.
_A, _E, _S = "acoustic", "electronic", "synthetic"
# fmt: off
GM_PROGRAMS: tuple[tuple[str, str, str], ...] = (
    ("grand piano", "keyboard", _A), ("bright piano", "keyboard", _A),
    ("electric grand piano", "keyboard", _E), ("honky-tonk piano", "keyboard", _A),
    ("electric piano", "keyboard", _E), ("fm electric piano", "keyboard", _E),
    ("harpsichord", "keyboard", _A), ("clavinet", "keyboard", _E),
    ("celesta", "mallet", _A), ("glockenspiel", "mallet", _A), ("music box", "mallet", _A),
    ("vibraphone", "mallet", _A), ("marimba", "mallet", _A), ("xylophone", "mallet", _A),
    ("tubular bells", "mallet", _A), ("dulcimer", "string", _A),
    ("drawbar organ", "organ", _E), ("percussive organ", "organ", _E),
    ("rock organ", "organ", _E), ("church organ", "organ", _A), ("reed organ", "organ", _A),
    ("accordion", "reed", _A), ("harmonica", "reed", _A), ("tango accordion", "reed", _A),
    ("nylon string guitar", "guitar", _A), ("steel string guitar", "guitar", _A),
    ("jazz guitar", "guitar", _E), ("clean electric guitar", "guitar", _E),
    ("muted electric guitar", "guitar", _E), ("overdriven guitar", "guitar", _E),
    ("distortion guitar", "guitar", _E), ("guitar harmonics", "guitar", _E),
    ("acoustic bass", "bass", _A), ("fingered electric bass", "bass", _E),
    ("picked electric bass", "bass", _E), ("fretless bass", "bass", _E),
    ("slap bass", "bass", _E), ("funky slap bass", "bass", _E),
    ("synth bass", "bass", _S), ("analog synth bass", "bass", _S),
    ("violin", "string", _A), ("viola", "string", _A), ("cello", "string", _A),
    ("contrabass", "string", _A), ("tremolo strings", "string", _A),
    ("pizzicato strings", "string", _A), ("harp", "string", _A), ("timpani", "mallet", _A),
    ("string ensemble", "string", _A), ("slow string ensemble", "string", _A),
    ("synth strings", "string", _S), ("analog synth strings", "string", _S),
    ("choir aahs", "vocal", _A), ("voice oohs", "vocal", _A), ("synth choir", "vocal", _S),
    ("orchestra hit", "brass", _S),
    ("trumpet", "brass", _A), ("trombone", "brass", _A), ("tuba", "brass", _A),
    ("muted trumpet", "brass", _A), ("french horn", "brass", _A),
    ("brass section", "brass", _A), ("synth brass", "brass", _S),
    ("analog synth brass", "brass", _S),
    ("soprano sax", "reed", _A), ("alto sax", "reed", _A), ("tenor sax", "reed", _A),
    ("baritone sax", "reed", _A), ("oboe", "reed", _A), ("english horn", "reed", _A),
    ("bassoon", "reed", _A), ("clarinet", "reed", _A),
    ("piccolo", "flute", _A), ("flute", "flute", _A), ("recorder", "flute", _A),
    ("pan flute", "flute", _A), ("blown bottle", "flute", _A), ("shakuhachi", "flute", _A),
    ("whistle", "flute", _A), ("ocarina", "flute", _A),
    ("square lead", "synth lead", _S), ("sawtooth lead", "synth lead", _S),
    ("calliope lead", "synth lead", _S), ("chiff lead", "synth lead", _S),
    ("charang lead", "synth lead", _S), ("voice lead", "synth lead", _S),
    ("fifths lead", "synth lead", _S), ("bass and lead", "synth lead", _S),
    ("new age pad", "synth pad", _S), ("warm pad", "synth pad", _S),
    ("polysynth pad", "synth pad", _S), ("choir pad", "synth pad", _S),
    ("bowed pad", "synth pad", _S), ("metallic pad", "synth pad", _S),
    ("halo pad", "synth pad", _S), ("sweep pad", "synth pad", _S),
    ("rain effect", "synth effect", _S), ("soundtrack effect", "synth effect", _S),
    ("crystal effect", "synth effect", _S), ("atmosphere effect", "synth effect", _S),
    ("brightness effect", "synth effect", _S), ("goblins effect", "synth effect", _S),
    ("echoes effect", "synth effect", _S), ("sci-fi effect", "synth effect", _S),
    ("sitar", "guitar", _A), ("banjo", "guitar", _A), ("shamisen", "guitar", _A),
    ("koto", "string", _A), ("kalimba", "mallet", _A), ("bagpipe", "reed", _A),
    ("fiddle", "string", _A), ("shanai", "reed", _A),
    ("tinkle bell", "mallet", _A), ("agogo", "percussion", _A), ("steel drums", "mallet", _A),
    ("woodblock", "percussion", _A), ("taiko drum", "percussion", _A),
    ("melodic tom", "percussion", _A), ("synth drum", "percussion", _S),
    ("reverse cymbal", "sound effect", _S),
    ("guitar fret noise", "sound effect", _A), ("breath noise", "sound effect", _A),
    ("seashore", "sound effect", _A), ("bird tweet", "sound effect", _A),
    ("telephone ring", "sound effect", _E), ("helicopter", "sound effect", _A),
    ("applause", "sound effect", _A), ("gunshot", "sound effect", _A),
)
# fmt: on
if len(GM_PROGRAMS) != 128:  # a table edited by hand
    raise RuntimeError(f"GM_PROGRAMS must hold 128 programs, got {len(GM_PROGRAMS)}")
