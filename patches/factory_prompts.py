"""What the factory bank is made of: (General MIDI program, patch name, prompt).

`promptsynth patch factory` turns each prompt into a patch with the shipped model and
writes them, with a bank.json mapping each to its GM program number, into
``patches/factory/``. Program change N on a GM keyboard then selects the matching sound.
"""

from __future__ import annotations

__all__ = ["FACTORY_PROMPTS", "FACTORY_FAMILIES"]

#: (GM program 0-127, name, prompt), grouped by family.
FACTORY_PROMPTS: tuple[tuple[int, str, str], ...] = (
    # keys
    (0, "grand piano", "a bright acoustic grand piano"),
    (4, "electric piano", "a soft electric piano with a bell-like tone"),
    (6, "harpsichord", "a plucked baroque harpsichord"),
    (7, "clavinet", "a funky percussive clavinet"),
    # struck
    (8, "celesta", "a delicate celesta"),
    (9, "glockenspiel", "a bright glockenspiel"),
    (11, "vibraphone", "a mellow vibraphone"),
    (12, "marimba", "a wooden marimba"),
    (14, "tubular bells", "ringing tubular bells"),
    # organ
    (16, "drawbar organ", "a drawbar organ"),
    (19, "church organ", "a church pipe organ"),
    (21, "accordion", "an accordion"),
    (22, "harmonica", "a harmonica"),
    # plucked
    (24, "nylon guitar", "a warm nylon string guitar"),
    (25, "steel guitar", "a steel string acoustic guitar"),
    (26, "jazz guitar", "a clean jazz electric guitar"),
    (46, "harp", "an orchestral harp"),
    (105, "banjo", "a twangy banjo"),
    # bass
    (32, "acoustic bass", "an acoustic upright bass"),
    (33, "electric bass", "a fingered electric bass"),
    (38, "synth bass", "a deep synth bass"),
    # bowed
    (40, "violin", "a bowed violin"),
    (42, "cello", "a bowed cello"),
    (45, "pizzicato strings", "pizzicato strings"),
    (48, "string ensemble", "a lush string ensemble"),
    # blown: brass
    (56, "trumpet", "a bright trumpet"),
    (57, "trombone", "a trombone"),
    (60, "french horn", "a mellow french horn"),
    # blown: reed
    (65, "alto sax", "a breathy alto saxophone"),
    (68, "oboe", "a reedy oboe"),
    (71, "clarinet", "a clarinet"),
    # blown: pipe
    (73, "flute", "a soft flute"),
    (75, "pan flute", "an airy pan flute"),
    # voice
    (52, "choir", "a choir singing aah"),
    (53, "voice oohs", "a soft voice singing ooh"),
    # synth
    (80, "square lead", "a square wave synth lead"),
    (88, "warm pad", "a warm synth pad"),
)

FACTORY_FAMILIES = ("keys", "struck", "organ", "plucked", "bass", "bowed", "brass", "reed", "pipe", "voice", "synth")
