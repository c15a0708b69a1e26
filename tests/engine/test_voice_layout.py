"""The voice's fields, what a note sets and what a live change does all follow the schema's
``voice`` kind of each timbre value (engine/schema.py), under the value's own name."""

import numpy as np
import pytest

from engine import Engine, KeyTable
from engine.schema import (
    DECAY_TIME,
    ENVELOPE_TIME,
    GLIDE,
    NEXT_NOTE,
    PARAMS,
    RESTART,
    SPECTRUM,
    VOICE_KINDS,
    param,
)
from engine.voices import VoiceBank

TIMBRE = [p for p in PARAMS if p.timbre]


def test_every_timbre_value_says_how_it_lives_in_a_voice_and_the_others_do_not():
    assert all(p.voice in VOICE_KINDS for p in TIMBRE)
    assert all(p.voice is None for p in PARAMS if not p.timbre)
    with pytest.raises(ValueError, match="needs voice"):
        type(TIMBRE[0])("x", "s", 0.0, 1.0, 0.5, "linear", True, "no kind")


def test_voice_fields_carry_the_parameters_names():
    vb = VoiceBank(2, 48000)
    for p in TIMBRE:
        assert isinstance(getattr(vb, p.name), np.ndarray), p.name
        assert hasattr(vb, p.name + "_tgt") == (p.voice in (GLIDE, RESTART)), p.name
    for old in ("ratio", "ratio3", "index3", "peak3", "band", "layout", "ratio3_tgt", "band_tgt"):
        assert not hasattr(vb, old), old


def _playing(table=None):
    e = Engine(sample_rate=48000, max_voices=4)
    if table is not None:
        e.set_patch(0, table, frame=0)
    e.note_on(0, 60, 100, frame=0)
    e.render(256)
    return e


# A value inside each parameter's range and away from its default.
def _other(p):
    v = p.minimum + 0.37 * (p.maximum - p.minimum)
    return 1.0 if p.name == "op3_layout" else v


@pytest.mark.parametrize("p", TIMBRE, ids=lambda p: p.name)
def test_a_live_change_does_what_its_kind_says(p):
    e = _playing()
    vb = e.voices
    value = _other(p)
    e.set_param(0, p.name, value, frame=e.frame)
    e.render(1)  # applied at the block's start, then one frame rendered
    if p.voice in (GLIDE, RESTART):
        assert getattr(vb, p.name + "_tgt")[0] == value
    elif p.voice in (DECAY_TIME, ENVELOPE_TIME):
        assert getattr(vb, p.name)[0] == value
    elif p.voice == SPECTRUM:
        # The value, and the voice's tables rebuilt into its other buffer, crossfading.
        assert getattr(vb, p.name)[0] == value
        assert vb.harmonic[0] == 1.0 and vb.spec_buf[0] == 1.0 and vb.spec_dirty[0] == 0.0
        assert 0.0 < vb.spec_fade[0] < 1.0
    else:
        assert p.voice == NEXT_NOTE
        assert getattr(vb, p.name)[0] == p.default != value  # the sounding voice keeps it
        e.note_on(0, 64, 100, frame=e.frame)
        e.render(1)
        assert getattr(vb, p.name)[1] == value  # the next note takes it


def test_a_retrigger_restarts_the_restarting_values_and_lets_the_gliding_ones_glide():
    t = KeyTable.flat({"index_peak": 4.0, "index_decay_s": 0.05, "mod_index": 2.0})
    e = _playing(t)
    vb = e.voices
    e.render(48000 // 10)  # the peak has decayed, the index arrived
    e.set_patch(
        0,
        KeyTable.flat({"index_peak": 3.0, "index_decay_s": 0.05, "mod_index": 5.0}),
        frame=e.frame,
    )
    e.note_on(0, 60, 100, frame=e.frame)
    e.render(1)
    assert (
        vb.n == 1
        and vb.index_peak_tgt[0] == 3.0
        and vb.index_peak[0] == pytest.approx(3.0, rel=0.01)
    )
    assert vb.mod_index_tgt[0] == 5.0 and vb.mod_index[0] == pytest.approx(2.0, rel=0.01)
    assert param("mod_index").voice == GLIDE and param("index_peak").voice == RESTART


def test_the_kernels_cache_name_carries_the_row_layout():
    # numba's disk cache checks only voices.py's time stamp; the rows come from the schema.
    import hashlib

    from engine import voices

    digest = hashlib.sha1(" ".join(voices._FIELDS).encode()).hexdigest()[:12]
    for fn in (voices._render_chunk, voices.find_note, voices.steal_victim):
        assert fn.py_func.__qualname__.endswith("_" + digest)
