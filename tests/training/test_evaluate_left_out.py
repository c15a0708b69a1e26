"""The sound library judged on instruments left out of it (``training.left_out``) and
``promptsynth eval``'s rows for it: canonical prompts, paraphrases and plain instrument
names, on the evaluation instruments and on every NSynth instrument, each left out.

The world is test_library's: engine renders of known timbres, so each instrument's own
table renders its notes exactly. Its NSynth instruments are written out as a small NSynth
folder (``examples.json``, ``audio/``).
"""

# The fixtures imported from test_library are redefined as test arguments, as pytest wants.
# ruff: noqa: F811

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.training.test_library import INSTRUMENTS, PITCHES, checkpoint, world  # noqa: F401
from training.evaluate import NAME_PROMPTS, evaluate, report_markdown
from training.left_out import candidate_distances, judge_left_out, left_out_choices, standard_error
from training.library import nsynth_targets
from training.manifest import read_manifest
from training.nsynth import NSYNTH_FAMILIES


@pytest.fixture(scope="module")
def nsynth(world, tmp_path_factory):
    """The world's NSynth instruments as an NSynth folder."""
    data, _, _ = world
    root = tmp_path_factory.mktemp("nsynth")
    (root / "audio").mkdir()
    examples = {}
    for r in read_manifest(data / "manifest.jsonl"):
        if r["dataset"] != "nsynth":
            continue
        note = f"{r['instrument']}-{r['pitch']:03d}-{r['velocity']:03d}"
        shutil.copy(r["audio_path"], root / "audio" / f"{note}.wav")
        examples[note] = {
            "note_str": note,
            "pitch": r["pitch"],
            "velocity": r["velocity"],
            "sample_rate": 16000,
            "instrument_str": r["instrument"],
            "instrument_family_str": r["family"],
            "instrument_source_str": "acoustic",
            "qualities_str": [],
        }
    (root / "examples.json").write_text(json.dumps(examples))
    return root


def test_every_family_has_the_same_number_of_plain_names():
    assert set(NAME_PROMPTS) == set(NSYNTH_FAMILIES)
    assert len({len(v) for v in NAME_PROMPTS.values()}) == 1
    names = [q for v in NAME_PROMPTS.values() for q in v]
    assert len(set(names)) == len(names)
    assert "an accordion" in NAME_PROMPTS["reed"] and "a harp" in NAME_PROMPTS["string"]


def test_a_left_out_instrument_is_never_chosen_for_its_own_notes(world, nsynth):
    _, lib, _ = world
    emb = lib.captions[:12]  # unit embeddings of the world's captions
    real = ["flute_a", "guitar_a"]
    chosen = left_out_choices(lib, emb, real + ["not_in_the_library"])
    names = np.asarray(lib.names)
    assert "flute_a" not in set(names[chosen[0]]) and "guitar_a" not in set(names[chosen[1]])
    # An instrument the library does not hold leaves it whole: the choice is the library's.
    assert chosen[2].tolist() == [int(lib.choose(e, 1)[0]) for e in emb]


def test_candidate_distances_are_zero_to_own_notes_and_cached(world, nsynth, tmp_path, monkeypatch):
    _, lib, _ = world
    targets = nsynth_targets(nsynth, ["flute_a", "guitar_a"], 24)
    assert len(targets) == 2 * len(PITCHES)
    own = [int(np.flatnonzero(lib.names == k)[0]) for k in ("flute_a", "guitar_a")]
    cache = tmp_path / "d.npz"
    d = candidate_distances(lib, targets, own[:1], cache=cache)
    inst = np.array([t["instrument"] for t in targets])
    assert np.all(d[own[0], inst == "flute_a"] < 0.02)  # its own table renders its notes
    assert np.all(d[own[0], inst == "guitar_a"] > 0.2)
    assert np.isnan(d[own[1]]).all()  # not asked for: not rendered
    # Asked again with the cache: the rendered row is read back, only the new one renders.
    import training.library as library

    rendered = []
    real_render = library.render_features
    monkeypatch.setattr(
        library,
        "render_features",
        lambda t, *a, **k: rendered.append(len(t)) or real_render(t, *a, **k),
    )
    d2 = candidate_distances(lib, targets, own, cache=cache)
    assert rendered == [1]
    np.testing.assert_array_equal(d2[own[0]], d[own[0]])
    assert np.all(d2[own[1], inst == "guitar_a"] < 0.02)
    # No list of candidates (the tuning benchmark's call): every row, none missing.
    assert not np.isnan(candidate_distances(lib, targets)).any()


def test_judge_counts_each_wording_and_errs_over_instruments():
    # Two candidates, two families; notes of instrument "x" (family a) and "y" (family b).
    dist = np.array([[0.1, 0.1, 0.9], [0.5, 0.5, 0.2]], dtype=np.float32)
    note_inst, note_fam = np.array(["x", "x", "y"]), np.array(["a", "a", "b"])
    # x: one wording right (a -> 0, b -> 1), one wrong (a -> 1, b -> 0); y: both right.
    choices = np.array([[[0, 1], [1, 0]], [[0, 1], [0, 1]]])
    r = judge_left_out(dist, note_inst, note_fam, ["a", "b"], ["x", "y"], choices)
    assert r["accuracy"] == pytest.approx(4 / 6) and r["notes"] == 3 and r["instruments"] == 2
    assert r["accuracy_se"] == pytest.approx(standard_error({"x": [1, 1, 0, 0], "y": [1, 1]}))
    assert r["accuracy_se"] == pytest.approx(0.25)
    # Own distances: x's notes 0.1, 0.1 (wording 1) and 0.5, 0.5 (wording 2); y's 0.2, 0.2.
    assert r["own_distance"] == pytest.approx((0.1 + 0.1 + 0.5 + 0.5 + 0.2 + 0.2) / 6)
    assert r["own_distance_se"] == pytest.approx(np.std([0.3, 0.2], ddof=1) / np.sqrt(2))


@pytest.mark.slow
def test_eval_reports_every_kind_on_the_ten_and_on_all_left_out(
    world, checkpoint, nsynth, tmp_path
):
    data, _, _ = world
    report = evaluate(
        checkpoint, data / "manifest.jsonl", progress=False, nsynth=nsynth, cache=tmp_path / "c.npz"
    )
    # The per-note rows judge the names too, as played (key-tracked).
    rows = {(r["patches"], r["prompts"], r["key_tracked"]): r for r in report["rows"]}
    assert ("model", "names", True) in rows and ("model", "names", False) not in rows
    assert rows[("model", "names", True)]["accuracy_per_family"].keys() == {"organ"}
    lo = report["left_out"]
    assert lo["families"] == ["flute", "guitar", "organ"]
    groups = lo["groups"]
    assert list(groups) == ["the 1 evaluation instruments", "all 3, each left out"]
    for res in groups.values():
        assert list(res) == ["canonical", "paraphrases", "names"]
        for r in res.values():
            assert 0.0 <= r["accuracy"] <= 1.0 and r["own_distance"] > 0.0
    everyone = groups["all 3, each left out"]
    assert (
        everyone["canonical"]["notes"] == 3 * len(PITCHES) and everyone["names"]["instruments"] == 3
    )
    # Left out, no instrument's notes meet their own table (distance 0): each family's
    # patch is another instrument's, so every own distance is well above zero.
    assert everyone["canonical"]["own_distance"] > 0.05
    # organ_a was never in the library: its only organ candidate is organ_b, whose
    # renders are nearer organ_a than the world's guitar and flute are.
    assert groups["the 1 evaluation instruments"]["canonical"]["accuracy"] == 1.0
    assert groups["the 1 evaluation instruments"]["canonical"]["accuracy_se"] == 0.0
    md = report_markdown(report)
    assert "| all 3, each left out | names | 3 | 9 |" in md
    assert "reed: a saxophone, a clarinet, an oboe, an accordion" in md
    assert "| model | names | yes |" in md
    assert len(INSTRUMENTS) == 6


def test_eval_without_a_manifest_needs_a_library_and_nsynth(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="needs a manifest"):
        evaluate(checkpoint, None, progress=False, nsynth=None)
    # An NSynth folder of other instruments: not the one the library was drawn from.
    (tmp_path / "examples.json").write_text(
        json.dumps(
            {
                "x-060-100": {
                    "note_str": "x-060-100",
                    "pitch": 60,
                    "velocity": 100,
                    "instrument_str": "x",
                    "instrument_family_str": "organ",
                }
            }
        )
    )
    with pytest.raises(ValueError, match="holds none of the library's"):
        evaluate(checkpoint, None, progress=False, nsynth=tmp_path)
