"""The sound library: candidates judged by their renders against the instruments' notes,
chosen by the words, carried by a checkpoint and used by the Predictor; and the
yardstick that judges it.

The "recordings" here are engine renders of known timbres written as WAV files (a world
where the right answer is known: each instrument's own table renders its notes exactly).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine import TIMBRE_NAMES, TIMBRE_SPACE, KeyTable, render_notes
from model import LibraryParams, Predictor, SoundLibrary
from tests.training.test_train import _HashEncoder  # registers "test-hash"
from training.evaluate import DIVERSE_PROMPTS, _standard_error, evaluate, report_markdown
from training.extract import full_theta
from training.library import build_library, instrument_table
from training.manifest import write_manifest
from training.metric import mel_features, mel_l1
from training.train import TrainConfig, train

# (instrument, family, dataset, own caption, attack, decay, sustain, release, ratio, index)
INSTRUMENTS = [
    ("guitar_a", "guitar", "nsynth", "a zorblax", 0.002, 0.4, 0.05, 0.2, 1.0, 1.5),
    ("guitar_b", "guitar", "soundfont", "a quimbly", 0.003, 0.8, 0.1, 0.3, 2.0, 3.0),
    ("flute_a", "flute", "nsynth", "a wheeple", 0.12, 0.2, 0.9, 0.25, 1.0, 0.4),
    ("flute_b", "flute", "soundfont", "a frindle", 0.08, 0.3, 0.8, 0.2, 3.0, 0.8),
    ("organ_a", "organ", "nsynth", "a grumbus", 0.01, 0.1, 1.0, 0.05, 2.0, 2.5),
    ("organ_b", "organ", "soundfont", "a snorkel", 0.01, 0.1, 0.95, 0.1, 2.0, 3.5),
]
PITCHES = (48, 60, 72)


def _timbre(inst) -> list[float]:
    _, _, _, _, a, d, s, r, ratio, index = inst
    return [a, d, s, r, ratio, index]


def _world(tmp_path) -> list[dict]:
    """Records of the six instruments, their notes rendered by the engine from their own
    timbre: every candidate's distance to its own instrument is zero."""
    recs = []
    audio = tmp_path / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    for inst in INSTRUMENTS:
        name, fam, ds, caption = inst[:4]
        for p in PITCHES:
            theta = full_theta(_timbre(inst), p, 100)
            row = np.array([theta[n] for n in TIMBRE_NAMES])
            path = audio / f"{name}-{p}.wav"
            sf.write(str(path), render_notes(row[None], p, 100)[0], 16000, subtype="FLOAT")
            recs.append({
                "note_id": f"{name}-{p}", "audio_path": str(path), "instrument": name,
                "family": fam, "dataset": ds, "pitch": p, "velocity": 100, "source": "acoustic",
                "name": fam, "qualities": [], "theta": theta,
                "captions": [f"a {fam} note", caption, "a shared sound"],
            })
    return recs


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("world")
    data = tmp / "data"
    write_manifest(data / "manifest.jsonl", _world(tmp))
    lib, summary = build_library(data / "manifest.jsonl", _HashEncoder(), progress=False,
                                 params=LibraryParams(tau=0.05, top_k=6, real_share=0.7, contrast=0.0))
    return data, lib, summary


def test_each_instruments_own_table_is_nearest_its_notes(world):
    _, lib, summary = world
    assert summary["candidates"] == summary["instruments"] == 6 and summary["real_instruments"] == 3
    assert summary["slots"] == 3 and summary["targets"] == 18
    assert list(lib.names) == list(lib.instruments)
    own = np.diag(lib.distance)
    assert np.all(own < 0.02), own  # the same sound, float16 storage aside
    others = lib.distance + np.eye(len(lib)) * 1e9
    assert np.all(others.min(axis=0) > 0.2)  # every other instrument sounds different
    # A table reads its labels at its anchors.
    t = lib.table(int(np.flatnonzero(lib.names == "flute_a")[0]))
    assert t.keys == PITCHES
    assert t.lookup(60, 100)[TIMBRE_NAMES.index("attack_s")] == pytest.approx(0.12, rel=1e-3)


def test_words_choose_the_instrument_they_name(world):
    _, lib, _ = world
    enc = _HashEncoder()
    for inst in INSTRUMENTS:
        emb = enc.encode([inst[3]])[0]
        got = lib.names[lib.choose(emb, 1)[0]]
        assert got == inst[0], (inst[3], got)
    # Three real and three rendered instruments share one caption: the real ones get
    # real_share of the weight.
    w = lib.weights(enc.encode(["a shared sound"])[0])
    assert w[lib.real].sum() == pytest.approx(0.7, abs=1e-6)
    assert w.sum() == pytest.approx(1.0)
    # Contrast lowers every score by the same candidate's mean distance to real notes.
    emb = enc.encode(["a wheeple"])[0]
    plain = lib.scores(emb, LibraryParams(contrast=0.0, top_k=6))
    contrasted = lib.scores(emb, LibraryParams(contrast=0.5, top_k=6))
    assert np.allclose(plain - contrasted, 0.5 * lib.distance[:, lib.real].mean(axis=1), atol=1e-5)
    best3 = lib.choose(emb, 3)
    assert len(best3) == 3 and lib.names[best3[0]] == "flute_a"


def test_a_library_survives_saving(world, tmp_path):
    _, lib, _ = world
    path = lib.save(tmp_path)
    back = SoundLibrary.load(path)
    assert np.array_equal(back.keys, lib.keys) and np.array_equal(back.names, lib.names)
    assert np.allclose(back.distance, lib.distance, atol=1e-3)
    assert back.params == lib.params
    emb = _HashEncoder().encode(["a frindle"])[0]
    assert back.choose(emb, 1)[0] == lib.choose(emb, 1)[0]
    with pytest.raises(ValueError, match="disagree"):
        SoundLibrary(lib.keys[:2], lib.values, lib.names, lib.distance, lib.instruments, lib.real,
                     lib.family, lib.captions, lib.caption_instrument)


def test_instrument_table_anchors_where_the_notes_lie(world):
    data, _, _ = world
    from training.manifest import read_manifest

    recs = [r for r in read_manifest(data / "manifest.jsonl") if r["instrument"] == "organ_a"]
    t = instrument_table(recs)
    assert t.keys == PITCHES and t.velocities == (100,)
    assert t.lookup(54, 100)[TIMBRE_NAMES.index("mod_ratio")] == pytest.approx(2.0)
    # A ratio between two notes' ratios would beat: the table takes one for every key.
    mixed = [dict(r) for r in recs]
    mixed[0]["theta"] = {**mixed[0]["theta"], "mod_ratio": 3.0}
    ratios = {float(instrument_table(mixed).lookup(k, 100)[TIMBRE_NAMES.index("mod_ratio")]) for k in (40, 55, 80)}
    assert len(ratios) == 1


def test_a_group_shares_its_most_common_third_operator():
    """A median of layouts is no layout, nor a median of ratios a ratio any note had: a
    group's patch (the library's instrument tables, the evaluation's medians) takes the
    layout and ratio most of its labels chose, with the index of those labels; off when
    most leave it off."""
    from engine import Theta
    from training.library import median_learning, op3_choice

    def label(**kw):
        return Theta.from_dict(kw).timbre()

    th = np.stack([
        label(op3_layout=2, op3_ratio=3.0, op3_index=1.0),
        label(op3_layout=2, op3_ratio=3.0, op3_index=3.0),
        label(op3_layout=0, op3_ratio=5.0, op3_index=9.0),
        label(),  # off
    ])  # fmt: skip
    choice, mask = op3_choice(th)
    assert choice == (2.0, 3.0) and mask.tolist() == [True, True, False, False]
    got = TIMBRE_SPACE.from_learning(median_learning(th))
    i = {n: TIMBRE_NAMES.index(n) for n in ("op3_layout", "op3_ratio", "op3_index")}
    assert got[i["op3_layout"]] == 2.0 and got[i["op3_ratio"]] == pytest.approx(3.0)
    # The median of those two labels' indices 1 and 3, in learning space (log(1 + v)).
    assert got[i["op3_index"]] == pytest.approx(8**0.5 - 1)
    off = median_learning(np.stack([label(), label(), label(op3_layout=1, op3_index=2.0)]))
    assert TIMBRE_SPACE.from_learning(off)[i["op3_index"]] == 0.0
    assert op3_choice(th[[3]])[0] is None


@pytest.fixture(scope="module")
def checkpoint(world, tmp_path_factory):
    """A tiny flow trained on the world with organ_a held out for evaluation, with the
    world's library (built without organ_a)."""
    data, _, _ = world
    out = tmp_path_factory.mktemp("ckpt") / "ckpt"
    cfg = TrainConfig(encoder="test-hash", epochs=2, batch_size=8, hidden=16, n_layers=2,
                      eval_instruments=("organ_a",))
    train(data / "manifest.jsonl", out, cfg, progress=False)
    lib, _ = build_library(data / "manifest.jsonl", _HashEncoder(), exclude=["organ_a"],
                           progress=False, params=LibraryParams(top_k=6, contrast=0.0))
    lib.save(out)
    return out


def test_the_predictor_chooses_from_its_library(checkpoint):
    pred = Predictor.load(checkpoint, warm=True)
    assert pred.library is not None and "organ_a" not in set(pred.library.names)
    table = pred.patch("a wheeple")
    want = pred.library.table(int(np.flatnonzero(pred.library.names == "flute_a")[0]))
    assert table == want
    assert pred.patches(["a wheeple", "a quimbly"])[0] == want
    # Variations come from the flow.
    varied = pred.patch("a wheeple", temperature=0.8, seed=3)
    assert isinstance(varied, KeyTable) and varied != want
    # A morph runs from one chosen instrument to the other.
    other = pred.patch("a quimbly")
    assert pred.morph("a wheeple", "a quimbly", 0.0) == KeyTable.morph(want, other, 0.0)
    mid = pred.morph("a wheeple", "a quimbly", 0.5)
    # Halfway in learning space (the attack's is logarithmic), not halfway in seconds.
    a, b = want.lookup(60, 100), other.lookup(60, 100)
    half = TIMBRE_SPACE.from_learning((TIMBRE_SPACE.to_learning(a) + TIMBRE_SPACE.to_learning(b)) / 2)
    assert mid.lookup(60, 100)[0] == pytest.approx(half[0], rel=1e-3)
    assert min(a[0], b[0]) < mid.lookup(60, 100)[0] < (a[0] + b[0]) / 2
    flow = Predictor.load(checkpoint, warm=False, library=False)
    assert flow.library is None and flow.patch("a wheeple") != want


def test_a_broken_library_is_a_clear_error(checkpoint, tmp_path):
    import shutil

    from model import ModelError

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    (bad / "library.npz").write_bytes(b"not a library")
    with pytest.raises(ModelError, match="is not a sound library"):
        Predictor.load(bad, warm=False)


@pytest.mark.slow
def test_the_yardstick_judges_held_out_instruments(world, checkpoint):
    data, _, _ = world
    report = evaluate(checkpoint, data / "manifest.jsonl", progress=False)
    assert report["eval_instruments"] == ["organ_a"] and report["notes"] == 3
    assert report["families"] == ["flute", "guitar", "organ"]
    rows = {(r["patches"], r["prompts"], r["key_tracked"]): r for r in report["rows"]}
    # The ceiling is organ_a's own labels: its notes are its renders, at distance 0.
    ceiling = rows[("ceiling: parameter median fitted on the judged notes", "-", False)]
    assert ceiling["accuracy"] == 1.0 and ceiling["own_distance"] < 0.02
    for key in [("model", "canonical", True), ("model", "paraphrases", False),
                ("flow alone", "canonical", True), ("parameter median, SoundFont labels", "-", False)]:
        assert 0.0 <= rows[key]["accuracy"] <= 1.0 and rows[key]["own_distance"] > 0.0, key
    # With no real organ left to train on, the baselines from real training notes have
    # no organ patch: their rows are left out rather than judged on nine families.
    assert ("parameter median, NSynth training labels", "-", False) not in rows
    # "a organ note" -> the world's only organ left in the library (organ_b), the
    # nearest to organ_a of its candidates.
    assert rows[("model", "canonical", True)]["accuracy_per_family"] == {"organ": 1.0}
    assert set(report["spread"]) == {"model", "flow alone"}
    assert np.isnan(report["real_spread"])  # the judged notes are of one family: no pair
    # One judged instrument: no spread over instruments to estimate an error from.
    assert rows[("model", "canonical", True)]["accuracy_se"] == 0.0
    md = report_markdown(report)
    assert "| model | canonical | yes |" in md and len(DIVERSE_PROMPTS) == 20
    assert "± 0.00 |" in md


def test_accuracy_standard_error_is_over_instruments_not_notes():
    # Two instruments, one always right and one always wrong: accuracy 0.5, and the
    # instruments disagree as much as they can (sd 0.707 over 2: se 0.5), however many
    # notes each has.
    assert _standard_error({"a": [True] * 20, "b": [False] * 20}) == pytest.approx(0.5)
    assert _standard_error({"a": [True, False], "b": [True, False]}) == 0.0
    assert _standard_error({"a": [True]}) == 0.0


def test_mel_l1_is_zero_only_for_the_same_sound():
    one = KeyTable.flat({"mod_ratio": 1.0, "mod_index": 2.0}).lookup(60, 100)
    two = KeyTable.flat({"mod_ratio": 2.0, "mod_index": 2.0}).lookup(60, 100)
    a, b = (mel_features(render_notes(t[None], 60, 100)) for t in (one, two))
    assert mel_l1(a, a)[0] == 0.0 and mel_l1(a, b)[0] > 0.1


def test_a_library_without_an_instrument_never_chooses_or_targets_it(world):
    _, lib, _ = world
    enc = _HashEncoder()
    emb = enc.encode(["a wheeple"])[0]
    emb = emb / np.linalg.norm(emb)
    assert lib.names[lib.choose(emb)[0]] == "flute_a"
    sub = lib.without(["flute_a"])
    assert len(sub) == 5 and "flute_a" not in set(sub.names) and "flute_a" not in set(sub.instruments)
    assert sub.distance.shape == (5, 5) and "a wheeple" not in set(sub.caption_text)
    assert sub.names[sub.choose(emb)[0]] != "flute_a"
    assert len(lib) == 6  # the library itself is unchanged


def test_the_pool_keeps_the_choice_among_the_instruments_the_words_name(world):
    _, lib, _ = world
    enc = _HashEncoder()
    emb = enc.encode(["a shared sound"])[0]  # every instrument's caption: all alike
    emb = emb / np.linalg.norm(emb)
    everyone = lib.choose(emb, 6, LibraryParams(top_k=6, contrast=0.0, pool=0))
    assert len(set(everyone.tolist())) == 6
    own = enc.encode(["a zorblax"])[0]
    own = own / np.linalg.norm(own)
    # pool 1: the table of the instrument the words name, whatever sounds nearer.
    params = LibraryParams(top_k=6, contrast=0.0, pool=1)
    assert lib.names[lib.choose(own, 1, params)[0]] == "guitar_a"
    scores = lib.scores(own, params)
    assert np.isfinite(scores).sum() == 1


def test_among_equally_similar_instruments_the_real_ones_count_first(world):
    """Many instruments share a caption ("a vocal note" is every GM choir preset's and the
    real vocal's): where top_k or the pool cuts through such a tie, real recordings are
    kept before renders, whatever their ids (a cut by id order dropped whichever sorted
    last)."""
    _, lib, _ = world
    enc = _HashEncoder()
    emb = enc.encode(["a shared sound"])[0]  # every instrument's caption, the same similarity
    emb = emb / np.linalg.norm(emb)
    # Ids sort flute_a, flute_b, guitar_a, ...: by id, top 3 would hold two renders.
    params = LibraryParams(tau=0.05, top_k=3, real_share=0.7, contrast=0.0, pool=3)
    w = lib.weights(emb, params)
    assert set(lib.instruments[w > 0]) == {"flute_a", "guitar_a", "organ_a"}, dict(zip(lib.instruments, w))
    assert w.sum() == pytest.approx(1.0)
    finite = np.isfinite(lib.scores(emb, params))
    assert set(lib.names[finite]) == {"flute_a", "guitar_a", "organ_a"}
    # Without a tie, similarity alone decides, renders included.
    own = enc.encode(["a quimbly"])[0]
    own = own / np.linalg.norm(own)
    one = LibraryParams(tau=0.05, top_k=1, real_share=0.7, contrast=0.0, pool=1)
    assert lib.names[lib.choose(own, 1, one)[0]] == "guitar_b"
    assert lib.instruments[np.argmax(lib.weights(own, one))] == "guitar_b"
