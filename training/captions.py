"""Captions from note metadata: every template in one place.

Each note gets several captions (see :func:`captions_for`):

- ``family``:    "a {family} note"                     (the seed's only caption)
- ``source``:    "{a} {source} {family} note"          ("an acoustic guitar note")
- ``name``:      "{a} {name}"                          ("a nylon string guitar"; GM notes)
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
    "article",
    "register_word",
    "dynamics_word",
]

TEMPLATES = {
    "family": "a {family} note",
    "source": "{a} {source} {family} note",
    "name": "{a} {name}",
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


def _fill(template: str, **kw: str) -> str:
    first = template.split("{a}")[-1].format(**kw).strip().split(" ")[0]
    return template.format(a=article(first), **kw)


def family_prompt(family: str) -> str:
    """The seed's caption, "a {family} note": the prompt evaluation renders per family."""
    return TEMPLATES["family"].format(family=family)


def captions_for(note: Note) -> list[str]:
    """All captions of ``note``, distinct, the family caption first."""
    fam = note.family
    out = [family_prompt(fam), _fill(TEMPLATES["source"], source=note.source, family=fam)]
    if note.dataset != "nsynth":
        out.append(_fill(TEMPLATES["name"], name=note.name))
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
