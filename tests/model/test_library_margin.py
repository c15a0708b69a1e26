"""The sound library's similarity margin (``LibraryParams.margin``): only instruments
about as like the words as the most similar one describe them and are chosen among."""

from dataclasses import replace

import numpy as np

from model import DEFAULT_CHECKPOINT, Predictor
from model.library import LIBRARY_FILE, LibraryParams, SoundLibrary


def test_words_that_name_one_instrument_keep_to_it():
    """'a xylophone' names one preset of the shipped library (similarity 1.0); the next
    are organs and flutes at 0.57. Without a margin their notes (a real flute's first)
    outweigh it and a piccolo's table wins; within 0.1 the xylophone's family chooses."""
    p = Predictor.load(None)
    lib = p.library
    assert lib.params.margin == 0.1  # what the shipped library uses
    fam = dict(zip(lib.instruments, lib.family))
    emb = p.embed(["a xylophone"])[0]
    within = lib.names[int(lib.choose(emb, 1)[0])]
    unlimited = lib.names[int(lib.choose(emb, 1, replace(lib.params, margin=float("inf")))[0])]
    assert fam[within] == "mallet"
    assert fam[unlimited] != "mallet"
    w = lib.weights(emb)
    s = lib.similarity(emb)
    assert np.all(s[w > 0] >= s.max() - 0.1)


def test_a_library_saved_without_a_margin_loads_with_none(tmp_path):
    lib = SoundLibrary.load(DEFAULT_CHECKPOINT)
    with np.load(DEFAULT_CHECKPOINT / LIBRARY_FILE, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params"] = arrays["params"][:5]  # as written before the margin
    np.savez(tmp_path / LIBRARY_FILE, **arrays)
    old = SoundLibrary.load(tmp_path)
    assert old.params == replace(lib.params, margin=float("inf"))
    assert LibraryParams().margin == float("inf")
