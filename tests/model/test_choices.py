"""The words' list of choices (``Predictor.choices``: what /prompt/next walks) and the
instruments' readable names, with the shipped model and its sound library, and with a
model that has no library (its flow's candidates)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from model import Choice, ModelError, Predictor, SoundLibrary
from model.library import instrument_title, instrument_titles
from model.predictor import DEFAULT_CHECKPOINT


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor.load(DEFAULT_CHECKPOINT, warm=False)


def test_the_library_list_is_bounded_stable_and_starts_with_the_words_own(shipped):
    for words in ("a clarinet", "a warm brass pad", "a glass bell"):
        got = shipped.choices(words)
        assert 1 <= len(got) <= 8 and all(isinstance(c, Choice) for c in got)
        # The words' own patch first: what /prompt plays.
        assert got[0].table == shipped.patch(words)
        # Distinct instruments, each with a name a person reads, none a bare id.
        ids = [c.instrument for c in got]
        assert len(set(ids)) == len(ids) and set(ids) <= set(shipped.library.names)
        assert all(c.title and not c.title.startswith("sf-") and "_" not in c.title.split(",")[0] for c in got)
        # The same list every time, entry for entry.
        again = shipped.choices(words)
        assert [(c.instrument, c.title) for c in again] == [(c.instrument, c.title) for c in got]
        assert all(a.table == b.table for a, b in zip(got, again))
        # A shorter list is the longer one's beginning.
        assert [c.instrument for c in shipped.choices(words, 3)] == ids[:3]
    # The list is ranked: after the first, each entry scores no worse than the next, and
    # only instruments of the pool (finite scores) come, whatever the similarity margin
    # (which keeps the first to the instrument the words name).
    lib = shipped.library
    emb = shipped.embed(["a clarinet"])[0]
    scores = lib.scores(emb, replace(lib.params, margin=float("inf")))
    idx = [int(np.flatnonzero(lib.names == c.instrument)[0]) for c in shipped.choices("a clarinet")]
    assert np.all(np.isfinite(scores[idx])) and np.all(np.diff(scores[idx[1:]]) >= 0)
    assert len(idx) == min(8, int(np.isfinite(scores).sum()))


def test_the_words_name_a_clarinet_and_the_names_say_so(shipped):
    got = shipped.choices("a clarinet")
    assert got[0].title.startswith("Clarinet, ")
    assert len({c.title for c in got}) == len(got) > 1  # each entry named, none twice


def test_walking_next_and_prev_round_the_list(shipped):
    """As /prompt/next and /prompt/prev walk it (the worker takes the place modulo the
    list's length): forward through every entry and round, back to where it was."""
    listed = shipped.choices("a soft flute")
    n = len(listed)
    place, seen = 0, []
    for _ in range(n):
        place = (place + 1) % n
        seen.append(shipped.choices("a soft flute")[place].instrument)
    assert seen[-1] == listed[0].instrument  # round to the words' own
    assert seen[:-1] == [c.instrument for c in listed[1:]]
    place = (place - 1) % n
    assert shipped.choices("a soft flute")[place].instrument == listed[-1].instrument


def test_a_model_without_a_library_lists_its_flows_candidates(shipped):
    flow = Predictor(shipped.checkpoint, shipped.encoder, library=None)
    got = flow.choices("a soft flute", 5)
    assert [c.title for c in got] == [f"flow candidate {i}" for i in range(1, 6)]
    assert got[0].table == flow.patch("a soft flute") and all(c.instrument == "" for c in got)
    again = flow.choices("a soft flute", 5)
    assert all(a.table == b.table for a, b in zip(got, again))
    assert len({c.table.center()["attack_s"] for c in got}) == 5  # five different patches
    for bad in (0, 257, True, 2.0):
        with pytest.raises(ModelError, match=r"n must be an int in range 1\.\.256"):
            flow.choices("a soft flute", bad)
    with pytest.raises(ModelError, match="prompt"):
        flow.choices("   ")


def test_readable_names_from_ids_and_own_names():
    assert instrument_title("sf-fluidr3_gm-000-071", "clarinet") == "Clarinet, FluidR3 GM"
    assert instrument_title("sf-fluidr3_gm-008-024", "ukulele") == "Ukulele, FluidR3 GM bank 8"
    assert instrument_title("sf-opl3_fm-000-005") == "Program 5, OPL-3 FM"
    assert instrument_title("sf-newfont-000-005", "harp") == "Harp, newfont"
    assert instrument_title("bass_electronic_027", "electronic bass") == "Electronic bass 027, NSynth"
    assert instrument_title("synth_lead_synthetic_000") == "Synthetic synth lead 000, NSynth"
    assert instrument_title("my_horn", "a horn") == "a horn" and instrument_title("my_horn") == "my_horn"
    # Two presets of one font with one name are told apart by their programs.
    assert instrument_titles(
        ["sf-sf_gmbank-127-004", "sf-sf_gmbank-127-005", "sf-sf_gmbank-000-004"],
        ["electric piano", "electric piano", "electric piano"],
    ) == [
        "Electric piano, sf_GMbank bank 127 program 4",
        "Electric piano, sf_GMbank bank 127 program 5",
        "Electric piano, sf_GMbank",
    ]


def test_a_library_without_stored_names_reads_them_from_its_captions(tmp_path):
    """The shipped library was built before names were stored: each comes from its
    instrument's "the sound of ..." caption. Saved again, the names are stored and read
    back as they were."""
    lib = SoundLibrary.load(DEFAULT_CHECKPOINT)
    with np.load(DEFAULT_CHECKPOINT / "library.npz") as z:
        stored = "titles" in z.files
    i = int(np.flatnonzero(lib.names == "sf-fluidr3_gm-000-071")[0])
    assert lib.title(i) == "Clarinet, FluidR3 GM"
    assert len(set(lib.titles)) == len(lib)
    if not stored:
        assert np.array_equal(lib.titles, lib._derived_titles())
    back = SoundLibrary.load(lib.save(tmp_path))
    assert np.array_equal(back.titles, lib.titles)
    with np.load(tmp_path / "library.npz") as z:
        assert "titles" in z.files
    # Names follow their candidates when instruments are left out.
    fewer = lib.without(["sf-fluidr3_gm-000-000"])
    j = int(np.flatnonzero(fewer.names == "sf-fluidr3_gm-000-071")[0])
    assert fewer.title(j) == "Clarinet, FluidR3 GM"
    with pytest.raises(ValueError, match="titles must hold one name per candidate"):
        SoundLibrary(lib.keys, lib.values, lib.names, lib.distance, lib.instruments, lib.real, lib.family,
                     lib.captions, lib.caption_instrument, lib.caption_text, lib.params, lib.titles[:3])
