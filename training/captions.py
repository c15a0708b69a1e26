"""Captions from note metadata: every template in one place.

Each note gets several captions (see :func:`captions_for`):

- ``family``:    "a {family} note"                     (the seed's only caption)
- ``source``:    "{a} {source} {family} note"          ("an acoustic guitar note")
- ``name``:      "{a} {name}"                          ("a nylon string guitar"; named
                 instruments: GM and SoundFont notes, and each alias of the name)
- ``name_note``: "{a} {name} note"                     ("a muted trumpet note")
- ``sound_of``:  "the sound of {a} {name}"             ("the sound of a harpsichord")
- ``how``:       "{a} {name} {how}", ``how`` by family ("a pan flute with a breathy tone",
                 "a viola played with a bow", "a koto plucked")
- ``register``:  "{a} {low|high} {family} note"        (pitch < 48 low, >= 72 high)
- ``dynamics``:  "{a} {soft|loud} {family} note"       (velocity <= 50 soft, >= 100 loud)
- ``quality``:   NSynth qualities, one caption each    ("a bright guitar note",
                 "a guitar note with a long release")

``PARAPHRASES`` holds, per family, prompts that no template produces; evaluation uses
them to judge words the model never saw as captions.
"""

from __future__ import annotations

from training.notes import Note

__all__ = [
    "TEMPLATES",
    "QUALITY_TEMPLATES",
    "PARAPHRASES",
    "captions_for",
    "family_prompt",
    "HOW",
    "article",
    "register_word",
    "dynamics_word",
]

TEMPLATES = {
    "family": "a {family} note",
    "source": "{a} {source} {family} note",
    "name": "{a} {name}",
    "name_note": "{a} {name} note",
    "sound_of": "the sound of {a} {name}",
    "how": "{a} {name} {how}",
    "register": "{a} {register} {family} note",
    "dynamics": "{a} {dynamics} {family} note",
}

QUALITY_TEMPLATES = {
    "bright": "a bright {family} note",
    "dark": "a dark {family} note",
    "distortion": "a distorted {family} note",
    "fast_decay": "a {family} note that decays fast",
    "long_release": "a {family} note with a long release",
    "multiphonic": "a multiphonic {family} note",
    "nonlinear_env": "a {family} note with an uneven envelope",
    "percussive": "a percussive {family} note",
    "reverb": "a {family} note with reverb",
    "tempo-synced": "a rhythmic {family} note",
}

#: How an instrument of each family sounds or is played, in words ("how" captions).
HOW: dict[str, str] = {
    "bass": "in the low register",
    "brass": "with a brassy tone",
    "flute": "with a breathy tone",
    "guitar": "plucked",
    "keyboard": "played on its keys",
    "mallet": "struck with a mallet",
    "organ": "held on",
    "reed": "with a reedy tone",
    "string": "played with a bow",
    "vocal": "singing a vowel",
    "synth lead": "playing a lead line",
    "synth pad": "swelling slowly",
    "synth effect": "as a sound effect",
    "percussion": "hit once",
    "sound effect": "as a sound effect",
}
_PLUCKED = ("pizzicato", "harp", "koto", "dulcimer", "plucked")

#: Prompts never produced by the templates, per NSynth family (for evaluation only).
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "bass": ("a deep bass sound", "the low end of a bass guitar", "a funky bass line tone"),
    "brass": ("a blaring horn", "a trumpet playing one tone", "a french horn call"),
    "flute": ("a breathy flute tone", "someone playing a flute", "a pan pipe whistle"),
    "guitar": ("a plucked guitar string", "someone playing a guitar", "a strummed acoustic guitar"),
    "keyboard": ("a piano key struck once", "someone playing a piano", "a soft piano chord"),
    "mallet": ("a wooden mallet hitting a bar", "a vibraphone tone", "a soft marimba"),
    "organ": ("a sustained organ chord tone", "someone playing an organ", "a hammond organ"),
    "reed": ("a saxophone tone", "a clarinet playing softly", "a bassoon melody"),
    "string": ("a bowed violin", "a bowed cello", "a violin section"),
    "vocal": ("a person singing aah", "a human voice singing", "a choir singing"),
}


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def register_word(pitch: int) -> str | None:
    if pitch < 48:
        return "low"
    if pitch >= 72:
        return "high"
    return None


def dynamics_word(velocity: int) -> str | None:
    if velocity <= 50:
        return "soft"
    if velocity >= 100:
        return "loud"
    return None


_NOT_PLURAL = ("bass", "glass", "chorus", "brass", "harmonics", "bagpipes", "kalimbas")


def is_plural(name: str) -> bool:
    """Whether ``name`` names several ("pizzicato violas", "voice oohs"): no article."""
    last = name.split(" ")[-1]
    return last.endswith("s") and not last.endswith(("ss", "us")) and last not in _NOT_PLURAL


def _fill(template: str, **kw: str) -> str:
    rest = template.split("{a}")[-1].format(**kw).strip()
    if "{a}" in template and "name" in kw and rest.startswith(kw["name"]) and is_plural(kw["name"]):
        return template.format(a="", **kw).replace("  ", " ").strip()
    return template.format(a=article(rest.split(" ")[0]), **kw)


def family_prompt(family: str) -> str:
    """The seed's caption, "a {family} note": the prompt evaluation renders per family."""
    return TEMPLATES["family"].format(family=family)


def captions_for(note: Note) -> list[str]:
    """All captions of ``note``, distinct, the family caption first."""
    fam = note.family
    out = [family_prompt(fam), _fill(TEMPLATES["source"], source=note.source, family=fam)]
    if note.dataset != "nsynth":
        name = note.name
        out.append(_fill(TEMPLATES["name"], name=name))
        if not is_plural(name):
            out.append(_fill(TEMPLATES["name_note"], name=name))
        out.append(_fill(TEMPLATES["sound_of"], name=name))
        how = HOW.get(fam)
        if how and fam == "string" and any(w in name for w in _PLUCKED):
            how = "plucked"
        if how and how not in name:
            out.append(_fill(TEMPLATES["how"], name=name, how=how))
        for alias in note.aliases:
            out.append(_fill(TEMPLATES["name"], name=alias))
    reg = register_word(note.pitch)
    if reg:
        out.append(_fill(TEMPLATES["register"], register=reg, family=fam))
    dyn = dynamics_word(note.velocity)
    if dyn:
        out.append(_fill(TEMPLATES["dynamics"], dynamics=dyn, family=fam))
    for q in note.qualities:
        if q in QUALITY_TEMPLATES:
            out.append(QUALITY_TEMPLATES[q].format(family=fam))
    seen, uniq = set(), []
    for c in out:
        if c not in seen:
            seen.add(c)
            uniq.append(c)
    return uniq
