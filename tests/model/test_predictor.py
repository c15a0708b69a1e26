"""Predictor: prompt -> patch (a KeyTable) with MiniLM and small checkpoints built in tmp."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    KEY_ANCHORS,
    PARAM_NAMES,
    PARAMS,
    RATIO_GRID,
    TIMBRE_NAMES,
    VELOCITY_LAYERS,
    KeyTable,
    Theta,
    snap_ratio,
)
from model import (
    DEFAULT_CHECKPOINT,
    ConditionalRealNVP,
    ModelError,
    Normaliser,
    Predictor,
    PromptError,
    ThetaNormaliser,
    save_checkpoint,
)
from model.checkpoint import key_features
from model.library import SoundLibrary
from model.lru import LRUCache
from tests.model.conftest import PROMPTS, make_checkpoint, random_theta

_TIMBRE_COLS = [PARAM_NAMES.index(n) for n in TIMBRE_NAMES]
_R = TIMBRE_NAMES.index("mod_ratio")
_R3 = TIMBRE_NAMES.index("op3_ratio")
_LAY = TIMBRE_NAMES.index("op3_layout")
# The values a patch takes once, from its centre, snapped; and the others.
_OTHERS = [i for i in range(len(TIMBRE_NAMES)) if i not in (_R, _R3, _LAY)]


@pytest.fixture(scope="module")
def predictor(minilm_checkpoint) -> Predictor:
    return Predictor.load(minilm_checkpoint)


@pytest.fixture(scope="module")
def keyed(minilm, tmp_path_factory) -> Predictor:
    folder = make_checkpoint(tmp_path_factory.mktemp("keyed") / "ck", minilm, key_tracked=True)
    return Predictor.load(folder)


def _validates(table: KeyTable) -> None:
    """The table's values pass the schema's checks as they are (no clamping)."""
    assert isinstance(table, KeyTable)
    assert np.isfinite(table.values).all()
    KeyTable(table.keys, table.velocities, table.values)  # raises ThetaError if out of range
    centre = table.center()
    assert list(centre) == list(TIMBRE_NAMES)
    # The centre also makes a valid seed-style Theta (pitch, velocity, rate, length at defaults).
    Theta([p.default for p in PARAMS if not p.timbre] + list(centre.values()))


def _centre_theta(timbre: np.ndarray) -> np.ndarray:
    """Every theta value at its default, the timbre columns set: ``[1, len(PARAMS)]``."""
    full = np.array([[p.default for p in PARAMS]], dtype=np.float64)
    full[0, _TIMBRE_COLS] = timbre
    return full


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    angle = math.acos(float(np.clip(a @ b, -1.0, 1.0)))
    out = (math.sin((1 - t) * angle) * a + math.sin(t * angle) * b) / math.sin(angle)
    return out / np.linalg.norm(out)


def test_patch_is_deterministic_at_temperature_zero(predictor):
    # From an empty cache: an earlier test's batch (`patches`) may have cached this
    # prompt's patch from a batched encoding, which differs from a single one in the
    # last float bits (BLAS blocks a batch otherwise).
    predictor._cache.clear()
    a = predictor.patch("a warm brass pad")
    assert isinstance(a, KeyTable)
    assert predictor.patch("a warm brass pad") == a
    assert predictor.patch("  a warm\nbrass pad") == a  # same prompt once cleaned
    assert isinstance(predictor._cache, LRUCache) and predictor._cache.get("a warm brass pad") is a
    predictor._cache.clear()
    assert len(predictor._cache) == 0
    again = predictor.patch("a warm brass pad", temperature=0.0, seed=5)
    assert again == a and again is not a  # computed afresh, the same
    assert predictor.patch("a deep sub bass") != a


def test_sampling_is_seeded(predictor):
    a = predictor.patch("a bright bell", temperature=1.0, seed=1)
    assert predictor.patch("a bright bell", temperature=1.0, seed=1) == a
    assert predictor.patch("a bright bell", temperature=1.0, seed=2) != a
    assert predictor.patch("a bright bell", temperature=1.0, seed=1) != predictor.patch(
        "a bright bell"
    )


def test_patches_match_patch(predictor):
    predictor._cache.clear()
    singles = [predictor.patch(p) for p in PROMPTS]
    predictor._cache.clear()  # so that the batch is computed, not served from the cache
    many = predictor.patches(PROMPTS)
    assert len(many) == len(PROMPTS) and predictor.patches([]) == []
    for single, table in zip(singles, many):
        assert isinstance(table, KeyTable) and table.is_flat
        assert (table.keys, table.velocities) == (single.keys, single.velocities)
        assert np.allclose(single.values, table.values, rtol=1e-5)
    with pytest.raises(ModelError, match="list of prompts"):
        predictor.patches("a bell")


def test_candidates_start_at_z0_and_are_ranked(predictor):
    cands = predictor.candidates("a metallic mallet", 6, temperature=1.5, seed=3)
    assert len(cands) == 6 and all(isinstance(c, KeyTable) for c in cands)
    assert cands[0] == predictor.patch("a metallic mallet")
    assert len({c.values.tobytes() for c in cands}) == 6  # n different patches
    scores = [predictor.log_prob("a metallic mallet", c) for c in cands[1:]]
    assert np.isfinite(scores).all()
    assert scores == sorted(scores, reverse=True)
    assert predictor.candidates("a metallic mallet", 6, temperature=1.5, seed=3) == cands
    assert predictor.candidates("a metallic mallet", 1) == [cands[0]]


def test_log_prob_is_the_flow_density(predictor):
    """The density of the patch's centre timbre (the other theta values at their
    defaults), in the flow's normalised space, given the prompt."""
    table = predictor.patch("a soft flute")
    lp = predictor.log_prob("a soft flute", table)
    ck = predictor.checkpoint
    norm = ck.theta_normaliser
    full = _centre_theta(table.lookup(60, 100))
    x = torch.as_tensor(norm.encode(norm.pick(full)), dtype=torch.float32)
    c = torch.as_tensor(
        ck.embedding_normaliser.transform(predictor.embed(["a soft flute"])), dtype=torch.float32
    )
    with torch.no_grad():
        assert lp == pytest.approx(float(ck.flow.log_prob(x, c)[0]), rel=1e-5)
    # another patch, another density; a seed-style Theta is not a patch
    other = predictor.patch("a soft flute", temperature=1.0, seed=4)
    assert predictor.log_prob("a soft flute", other) != lp
    with pytest.raises(ModelError, match="patch must be a KeyTable, got Theta"):
        predictor.log_prob("a soft flute", Theta([p.default for p in PARAMS]))


def test_a_key_tracked_log_prob_is_the_flow_density_at_the_centre_key(keyed):
    table = keyed.patch("a soft flute")
    lp = keyed.log_prob("a soft flute", table)
    ck = keyed.checkpoint
    norm = ck.theta_normaliser
    assert norm.names == TIMBRE_NAMES
    x = torch.as_tensor(norm.encode(table.lookup(60, 100)[None]), dtype=torch.float32)
    emb = ck.embedding_normaliser.transform(keyed.embed(["a soft flute"]))
    c = torch.as_tensor(np.concatenate([emb, key_features(60, 100)], axis=-1), dtype=torch.float32)
    with torch.no_grad():
        assert lp == pytest.approx(float(ck.flow.log_prob(x, c)[0]), rel=1e-5)


def test_morph_goes_through_the_embedding(predictor):
    a, b = "a bright bell", "a deep sub bass"
    assert np.allclose(predictor.morph(a, b, 0).values, predictor.patch(a).values, rtol=1e-4)
    assert np.allclose(predictor.morph(a, b, 1.0).values, predictor.patch(b).values, rtol=1e-4)
    mid = predictor.morph(a, b, 0.5)
    assert isinstance(mid, KeyTable) and mid.is_flat
    assert mid != predictor.patch(a) and mid != predictor.patch(b)
    assert np.allclose(predictor.morph(a, a, 0.3).values, predictor.patch(a).values, rtol=1e-4)
    # The patch at z = 0 of the embedding along the great circle (slerp), not of a blend
    # of the two patches.
    ea, eb = predictor.embed([a, b]).astype(np.float64)
    want = predictor._patches(_slerp(ea, eb, 0.3)[None], np.zeros((1, predictor._flow.dim)))[0]
    got = predictor.morph(a, b, 0.3)
    assert np.allclose(got.values, want.values, rtol=1e-5)
    blend = 0.7 * predictor.patch(a).learning_values() + 0.3 * predictor.patch(b).learning_values()
    assert not np.allclose(got.learning_values(), blend, rtol=1e-3)
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ModelError, match="t must be a number in range 0..1"):
            predictor.morph(a, b, bad)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(prompt=""), PromptError, "some text"),
        (dict(prompt=42), PromptError, "must be a str"),
        (dict(prompt="x" * 1001), PromptError, "at most 1000"),
        (
            dict(prompt="a", temperature=-1),
            ModelError,
            r"temperature must be in range 0..10, got -1",
        ),
        (dict(prompt="a", temperature=float("inf")), ModelError, "temperature must be in range"),
        (dict(prompt="a", temperature="hot"), ModelError, "temperature must be a number"),
        (
            dict(prompt="a", temperature=1.0, seed=-3),
            ModelError,
            "seed must be None or an int >= 0",
        ),
    ],
)
def test_bad_requests_are_refused(predictor, kwargs, error, message):
    with pytest.raises(error, match=message):
        predictor.patch(**kwargs)


def test_bad_candidate_counts(predictor):
    for n in (0, 257, 2.0, True):
        with pytest.raises(ModelError, match=r"n must be an int in range 1..256"):
            predictor.candidates("a bell", n)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prompt=st.text(min_size=1, max_size=60).filter(lambda s: s.strip()),
    temperature=st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]),
    seed=st.integers(0, 2**31),
)
def test_outputs_always_validate(predictor, prompt, temperature, seed):
    try:
        table = predictor.patch(prompt, temperature=temperature, seed=seed)
    except PromptError:
        return  # only control characters
    _validates(table)


def test_a_wild_flow_still_gives_valid_patches(minilm, tmp_path):
    """Huge weights push the flow to inf/NaN; the schema's clamp still gives a patch."""
    flow = ConditionalRealNVP(len(PARAM_NAMES), minilm.dim, n_layers=2, hidden=8)
    with torch.no_grad():
        for p in flow.parameters():
            p.fill_(1e3)
    emb = minilm.encode(PROMPTS)
    folder = save_checkpoint(
        tmp_path / "wild", flow, ThetaNormaliser.fit(random_theta(10)), Normaliser.fit(emb), minilm
    )
    predictor = Predictor.load(folder)
    for t in (0.0, 10.0):
        _validates(predictor.patch("a bell", temperature=t, seed=0))
    _validates(predictor.morph("a bell", "a deep sub bass", 0.5))
    cands = predictor.candidates("a bell", 4, 2.0, seed=0)
    assert len(cands) == 4
    for table in cands:
        _validates(table)


def test_no_default_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    import model.predictor as predictor_mod

    monkeypatch.setattr(predictor_mod, "DEFAULT_CHECKPOINT", tmp_path / "none")
    with pytest.raises(
        ModelError, match=r"no default checkpoint is shipped yet.*promptsynth train"
    ):
        Predictor.load(None)


def test_the_shipped_default_chooses_the_instrument_named():
    """The shipped model at temperature 0: the words choose, from its sound library, the
    table of an instrument of the family they name (the library records each one's),
    different words give different sounds, and a blown note holds where a plucked one
    dies away."""
    assert (DEFAULT_CHECKPOINT / "meta.json").exists(), "the default checkpoint is shipped"
    p = Predictor.load(None)
    lib = p.library
    assert lib is not None, "the default checkpoint ships its sound library"
    family_of = dict(zip(lib.instruments, lib.family))
    expected = {
        "a soft marimba": "mallet", "a xylophone": "mallet", "a soft flute": "flute",
        "a bowed cello": "string", "a warm nylon guitar": "guitar", "a church organ": "organ",
        "a muted trumpet": "brass", "a tenor saxophone": "reed", "a choir singing aah": "vocal",
        "a deep synth bass": "bass", "a grand piano": "keyboard",
    }
    tables = {}
    for prompt, family in expected.items():
        chosen = lib.names[int(lib.choose(p.embed([prompt])[0], 1)[0])]
        assert family_of[chosen] == family, (prompt, chosen, family_of[chosen])
        tables[prompt] = p.patch(prompt)
        assert tables[prompt] == lib.table(int(np.flatnonzero(lib.names == chosen)[0]))
    distinct = {t.learning_values().tobytes() for t in tables.values()}
    assert len(distinct) == len(tables)
    flute, guitar = p.patch("a flute note").center(), p.patch("a guitar note").center()
    assert flute["sustain"] > guitar["sustain"] + 0.3  # a blown note holds, a plucked one dies away


def test_flow_variations_keep_the_spectra_of_the_instrument_the_words_pick():
    """The flow models no spectra: a variation (temperature > 0) takes them, key by key,
    from the library's patch for the words, while the flow varies what it models."""
    p0 = Predictor.load(None)
    lib = SoundLibrary.load(DEFAULT_CHECKPOINT)
    lib.values = lib.values.copy()
    col = TIMBRE_NAMES.index("held_h2")
    # Every candidate a held spectrum of its own (learned as dB, linear), per anchor.
    lib.values[..., col] = -6.0 - (np.arange(lib.values.shape[0]) % 17)[:, None] - np.arange(lib.values.shape[1])
    p = Predictor(p0.checkpoint, p0.encoder, library=lib)
    chosen = lib.table(int(lib.choose(p.embed(["a soft flute"])[0], 1)[0]))
    drawn = p.candidates("a soft flute", n=4, temperature=1.0, seed=3)[1:]
    for table in drawn:
        for key in (30, 60, 96):
            assert table.lookup(key, 100)[col] == pytest.approx(chosen.lookup(key, 100)[col])
    modelled = [TIMBRE_NAMES.index(n) for n in p.checkpoint.theta_normaliser.names]
    assert not np.allclose(drawn[0].lookup(60, 100)[modelled], chosen.lookup(60, 100)[modelled])


def test_load_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ModelError, match="meta.json is missing"):
        Predictor.load(tmp_path / "nothing")


def test_a_text_only_checkpoint_gives_a_flat_table(predictor):
    """One anchor (key 60, velocity 100) holding the model's timbre for the prompt,
    clamped, its ratio snapped: the same on every key and velocity."""
    table = predictor.patch("a warm brass pad")
    assert not predictor.key_tracked and table.is_flat
    assert (table.keys, table.velocities) == ((60,), (100,))
    emb = predictor.embed(["a warm brass pad"])
    z = np.zeros((1, predictor._flow.dim))
    want = predictor.checkpoint.theta_normaliser.full(predictor._decode(emb, z))[0, _TIMBRE_COLS]
    want[_R] = snap_ratio(want[_R])
    want[_R3] = snap_ratio(want[_R3])
    want[_LAY] = np.rint(want[_LAY])
    assert np.allclose(table.lookup(60, 100), want, rtol=1e-6)
    assert np.allclose(table.lookup(30, 20), want, rtol=1e-6)
    assert np.allclose(table.lookup(100, 127), want, rtol=1e-6)
    assert table == KeyTable.flat(table.lookup(60, 100))
    assert table.center() == dict(zip(TIMBRE_NAMES, table.lookup(60, 100).tolist()))


def test_a_key_tracked_table_is_the_model_at_every_anchor(keyed):
    """One batched pass, one latent: each anchor row is exactly what the flow gives for
    that key and velocity, and the timbre does change across the keyboard."""
    assert keyed.key_tracked
    table = keyed.patch("a plucked string")
    assert table.keys == KEY_ANCHORS and table.velocities == VELOCITY_LAYERS
    assert table.values.shape == (len(KEY_ANCHORS), len(VELOCITY_LAYERS), len(TIMBRE_NAMES))
    assert not table.is_flat
    emb = keyed.embed(["a plucked string"])
    z = np.zeros((1, len(TIMBRE_NAMES)))
    for ki, vi in [(0, 0), (5, 2), (len(KEY_ANCHORS) - 1, len(VELOCITY_LAYERS) - 1)]:
        want = keyed._decode(emb, z, KEY_ANCHORS[ki], VELOCITY_LAYERS[vi])[0]
        # float32 flow, a batch of 93 rows against one
        assert np.allclose(table.values[ki, vi, _OTHERS], want[_OTHERS], rtol=1e-5)
    # The ratio is the centre key's (60, 100), snapped to the grid, on every key.
    centre_ratio = keyed._decode(emb, z, 60, 100)[0, _R]
    assert (table.values[..., _R] == snap_ratio(centre_ratio)).all()
    assert snap_ratio(centre_ratio) in RATIO_GRID
    # So are the third operator's ratio and layout (one layout for the instrument).
    centre3 = keyed._decode(emb, z, 60, 100)[0]
    assert (table.values[..., _R3] == snap_ratio(centre3[_R3])).all()
    assert (table.values[..., _LAY] == np.rint(centre3[_LAY])).all()
    low, high = table.lookup(24, 100), table.lookup(96, 100)
    assert not np.allclose(low, high)
    # Cached at temperature 0; a sampled table is one instrument too (one z for all rows).
    assert keyed.patch("a plucked string") is table
    a = keyed.patch("a plucked string", temperature=1.0, seed=3)
    assert a == keyed.patch("a plucked string", temperature=1.0, seed=3)
    assert a != table
    z3 = np.random.default_rng(3).standard_normal((1, len(TIMBRE_NAMES)))
    for ki, vi in [(0, 0), (len(KEY_ANCHORS) - 1, len(VELOCITY_LAYERS) - 1)]:
        want = keyed._decode(emb, z3, KEY_ANCHORS[ki], VELOCITY_LAYERS[vi])[0]
        assert np.allclose(a.values[ki, vi, _OTHERS], want[_OTHERS], rtol=1e-5)
    # The patch's centre: key 60 (an anchor) at velocity 100, between the layers about
    # it, with the model's ratio at the centre key, snapped.
    centre = table.center()
    assert centre["mod_ratio"] == snap_ratio(centre_ratio)
    k60 = KEY_ANCHORS.index(60)
    lo = VELOCITY_LAYERS.index(96)
    below, above = table.values[k60, lo], table.values[k60, lo + 1]
    got = np.array(list(centre.values()))
    assert (got >= np.minimum(below, above) - 1e-9).all()
    assert (got <= np.maximum(below, above) + 1e-9).all()
    # A morph ends at either prompt's table.
    ends = keyed.morph("a plucked string", "a deep sub bass", 0.0)
    assert np.allclose(ends.values, table.values)
    other = keyed.morph("a plucked string", "a deep sub bass", 1.0)
    assert np.allclose(other.values, keyed.patch("a deep sub bass").values)
    # Candidates are tables too, the first the z = 0 one.
    cands = keyed.candidates("a plucked string", 3, temperature=1.0, seed=0)
    assert cands[0] is table and all(c.keys == KEY_ANCHORS for c in cands)
    scores = [keyed.log_prob("a plucked string", c) for c in cands[1:]]
    assert scores == sorted(scores, reverse=True)


def test_snapping_can_be_turned_off(minilm_checkpoint):
    """Without snapping, the ratio is the flow's own (here off the grid)."""
    raw = Predictor.load(minilm_checkpoint, snap=False)
    snapped = Predictor.load(minilm_checkpoint)
    for prompt in PROMPTS:
        a, b = raw.patch(prompt), snapped.patch(prompt)
        ra, rb = a.center()["mod_ratio"], b.center()["mod_ratio"]
        assert rb == snap_ratio(ra) and rb in RATIO_GRID
        c = b.center()
        same = a.with_param("mod_ratio", rb).with_param("op3_ratio", c["op3_ratio"])
        assert same.with_param("op3_layout", c["op3_layout"]) == b  # nothing else differs
        assert c["op3_layout"] in (0.0, 1.0, 2.0) and c["op3_ratio"] in RATIO_GRID
    assert any(raw.patch(p).center()["mod_ratio"] not in RATIO_GRID for p in PROMPTS)


def test_a_key_tracked_table_without_snapping(minilm, keyed):
    """Without snapping, every row keeps the flow's own ratio for its key and velocity."""
    raw = Predictor(keyed.checkpoint, minilm, snap=False)
    a, b = raw.patch("a plucked string"), keyed.patch("a plucked string")
    assert np.array_equal(a.values[..., _OTHERS], b.values[..., _OTHERS])
    emb = keyed.embed(["a plucked string"])
    z = np.zeros((1, len(TIMBRE_NAMES)))
    want = keyed._decode(emb, z, KEY_ANCHORS[0], VELOCITY_LAYERS[0])[0, _R]
    assert a.values[0, 0, _R] == pytest.approx(want, rel=1e-5)
    assert len(set(a.values[..., _R].ravel().tolist())) > 1  # it varies over the keyboard
    assert any(r not in RATIO_GRID for r in a.values[..., _R].ravel().tolist())
