"""Engine behaviour: allocation, stealing, pedal, bend, CCs, event placement, limiter."""

import mido
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import CC, Engine, KeyTable, Theta, midi_to_hz, render_midi_file
from tests.engine.helpers import cents, peak_frequency

SR = 48000
PURE = Theta.from_dict({"attack_s": 0.0, "decay_s": 0.0, "sustain": 1.0, "release_s": 0.05, "mod_index": 0.0})
LONG = PURE.replace(release_s=2.0)


def run(engine, seconds=None, frames=None, block=128):
    n = frames if frames is not None else int(seconds * SR)
    out = []
    while n > 0:
        m = min(block, n)
        out.append(engine.render(m))
        n -= m
    return np.concatenate(out)


def make(max_voices=8, theta=PURE):
    e = Engine(SR, max_voices)
    for ch in range(16):
        e.set_patch(ch, KeyTable.flat(theta))
    return e


def test_bad_arguments_are_refused_with_ranges():
    e = make()
    with pytest.raises(ValueError, match="channel must be in range 0..15"):
        e.note_on(16, 60, 100)
    with pytest.raises(ValueError, match="velocity must be in range 0..127"):
        e.note_on(0, 60, 128)
    with pytest.raises(TypeError, match="pitch must be int"):
        e.note_on(0, 60.5, 100)
    with pytest.raises(ValueError, match="value must be in range -8192..8191"):
        e.pitch_bend(0, 9000)
    with pytest.raises(ValueError, match="mod_index must be in range"):
        e.set_param(0, "mod_index", 99.0)
    with pytest.raises(ValueError, match="not a timbre parameter"):
        e.set_param(0, "pitch_midi", 60)


def test_velocity_zero_is_note_off():
    e = make()
    e.note_on(0, 60, 100)
    run(e, 0.05)
    e.note_on(0, 60, 0)
    run(e, 0.2)
    assert e.active_voices == 0


def test_polyphony_settable_to_128():
    e = make(max_voices=128)
    for p in range(128):
        e.note_on(p % 16, p, 100)
    run(e, frames=128)
    assert len(e.sounding_notes()) == 128


def test_steals_quietest_released_then_oldest():
    e = make(max_voices=4, theta=LONG)
    for p in (60, 61, 62, 63):
        e.note_on(0, p, 100)
    run(e, 0.05)
    e.note_off(0, 61)
    run(e, 0.3)
    e.note_off(0, 62)
    run(e, 0.05)
    e.note_on(0, 64, 100)  # 61 is the quietest released voice
    run(e, frames=128)
    assert sorted(p for _, p in e.sounding_notes()) == [60, 62, 63, 64]
    e.note_on(0, 65, 100)  # 62 is the only released one left
    run(e, frames=128)
    assert sorted(p for _, p in e.sounding_notes()) == [60, 63, 64, 65]
    e.note_on(0, 66, 100)  # none released: the oldest (60) goes
    run(e, frames=128)
    assert sorted(p for _, p in e.sounding_notes()) == [63, 64, 65, 66]


def test_a_key_struck_again_while_its_stolen_voice_fades_gets_a_voice_of_its_own():
    # A fading voice is no longer its key's: the new note-on must not revive it (it
    # would be cut when the fade ends), and the key's note-off must reach the new voice.
    e = make(max_voices=1, theta=LONG)
    e.note_on(0, 60, 100)
    run(e, frames=128)
    e.note_on(0, 61, 100)  # steals 60: it fades out over 5 ms
    e.note_on(0, 60, 100)  # within the fade: steals 61, a voice of its own
    run(e, frames=64)
    assert e.sounding_notes() == [(0, 60)] and e.active_voices == 2  # 2 slots a voice
    run(e, 0.02)
    assert e.sounding_notes() == [(0, 60)] and e.active_voices == 1
    e.note_on(1, 60, 100)  # the same key on another channel is another note
    e.note_off(0, 60)
    run(e, 0.02)
    assert e.sounding_notes() == [(1, 60)]
    e.note_off(1, 60)
    run(e, 2.1)  # its release: 2 s
    assert e.active_voices == 0


def test_stolen_voice_fades_without_click():
    e = make(max_voices=1)
    e.note_on(0, 69, 127)
    run(e, 0.1)
    e.note_on(0, 81, 127)  # steals the held 69
    y = run(e, 0.05)
    assert e.active_voices == 1  # the fade (5 ms) is over
    # A click would be a jump of up to the full amplitude between two samples; the
    # steepest a smooth mix of these sines can move is about 2 pi f / sr per sample.
    max_slope = 2 * np.pi * (midi_to_hz(69) + midi_to_hz(81)) / SR * 0.71
    assert np.max(np.abs(np.diff(y[:, 0]))) < 1.2 * max_slope


def test_same_pitch_reuses_voice_and_restarts_from_current_level():
    theta = PURE.replace(attack_s=0.1, decay_s=0.0, sustain=1.0, release_s=0.5)
    e = make(theta=theta)
    e.note_on(0, 69, 127)
    run(e, 0.2)
    e.note_off(0, 69)
    run(e, 0.25)  # halfway through the release: level 0.5
    lvl = e.voices.level[0]
    e.note_on(0, 69, 127)
    run(e, frames=128)
    assert e.active_voices == 1
    assert e.voices.level[0] > lvl  # attacking again from 0.5, not from 0
    assert lvl == pytest.approx(0.5, abs=0.01)


def test_sustain_pedal_holds_and_restrike_does_not_stack():
    e = make(theta=PURE.replace(release_s=0.05))
    e.control_change(0, CC.SUSTAIN, 127)
    e.note_on(0, 60, 100)
    run(e, 0.05)
    e.note_off(0, 60)
    run(e, 0.5)
    assert e.sounding_notes() == [(0, 60)]
    e.note_on(0, 60, 100)
    e.note_off(0, 60)
    e.note_on(0, 60, 100)
    e.note_off(0, 60)
    run(e, 0.1)
    assert e.active_voices == 1
    e.control_change(0, CC.SUSTAIN, 0)
    run(e, 0.1)
    assert e.active_voices == 0


def test_sostenuto_holds_the_notes_down_when_pressed_and_only_those():
    e = make(theta=PURE.replace(release_s=0.02))
    e.note_on(0, 60, 100)
    e.note_on(0, 64, 100)
    run(e, 0.05)
    e.control_change(0, CC.SOSTENUTO, 127)  # holds 60 and 64
    e.note_on(0, 67, 100)  # played after: not held by it
    run(e, 0.05)
    for pitch in (60, 64, 67):
        e.note_off(0, pitch)
    run(e, 0.2)
    assert sorted(p for _, p in e.sounding_notes()) == [60, 64]
    e.control_change(0, CC.SUSTAIN, 127)
    e.control_change(0, CC.SOSTENUTO, 0)  # the sustain pedal now holds them
    run(e, 0.2)
    assert sorted(p for _, p in e.sounding_notes()) == [60, 64]
    e.control_change(0, CC.SUSTAIN, 0)
    run(e, 0.1)
    assert e.active_voices == 0
    # Reset all controllers lifts it too.
    e.note_on(1, 50, 100)
    e.control_change(1, CC.SOSTENUTO, 100)
    e.note_off(1, 50)
    run(e, 0.1)
    assert e.active_voices == 1
    e.control_change(1, CC.RESET_ALL_CONTROLLERS, 0)
    run(e, 0.1)
    assert e.active_voices == 0


def _pitch_of(engine, seconds=1.0):
    y = run(engine, seconds)[:, 0]
    return peak_frequency(y[SR // 20 :], SR)


def test_pitch_bend_and_rpn0_bend_range():
    e = make()
    e.note_on(0, 69, 100)
    e.pitch_bend(0, 8191)
    assert abs(cents(_pitch_of(e), 440.0 * 2 ** (2 * 8191 / 8192 / 12))) < 1.0
    # RPN 0 (bend range) = 12 semitones.
    for c, v in ((CC.RPN_MSB, 0), (CC.RPN_LSB, 0), (CC.DATA_ENTRY_MSB, 12), (CC.DATA_ENTRY_LSB, 0)):
        e.control_change(0, c, v)
    e.pitch_bend(0, -8192)
    assert abs(cents(_pitch_of(e), 220.0)) < 1.0
    # Another channel is not bent.
    e2 = make()
    e2.pitch_bend(1, 8191)
    e2.note_on(0, 69, 100)
    assert abs(cents(_pitch_of(e2), 440.0)) < 1.0


def test_bend_keeps_phase_continuous():
    e = make()
    e.note_on(0, 69, 127)
    a = run(e, 0.1)
    e.pitch_bend(0, 4000)
    b = run(e, 0.1)
    y = np.concatenate([a, b])[:, 0]
    assert np.max(np.abs(np.diff(y))) < 1.2 * 2 * np.pi * 500 / SR


def test_events_land_on_their_sample():
    e = make()
    e.note_on(0, 69, 127, frame=1037)
    e.note_on(1, 69, 127, frame=3000)
    e.note_off(0, 69, frame=2000)
    y = run(e, frames=4096)
    left = y[:, 0]
    # Attack 0: the first sample of a note is 0 (phase 0, envelope 0), the next is not.
    nz = np.flatnonzero(np.abs(left) > 0)
    assert nz[0] == 1038
    assert np.all(left[:1038] == 0)
    # Release of 50 ms from frame 2000 and a second note at 3000.
    assert np.all(left[2000 + int(0.05 * SR) + 1 : 3001] == 0)
    assert abs(left[3001]) > 0


@pytest.mark.parametrize(
    "splits, cc_offsets, onset",
    [
        (None, (3, 10, 20, 70, 100), 45),  # offline: every event at its sample
        (4, (3, 100), 45),  # 4 pieces (0-3, 3-45, 45-100, 100-128): each at its sample
        (4, (3, 10, 20, 70, 100), 32),  # 7 pieces: rounded down to the 32-frame grid
        (4, (1, 2, 120), 32),  # 5 pieces (0-1, 1-2, 2-45, 45-120, 120-128): rounded
        (4, (0, 1, 2), 45),  # 4 pieces (0-1, 1-2, 2-45, 45-128): each at its sample
        (2, (), 45),  # as the live host: 2 pieces (0-45, 45-128), the note at its sample
        (2, (100,), 0),  # 3 pieces: rounded down to the 64-frame grid
        (2, (70, 100), 0),
        (2, (0,), 45),  # 2 pieces (0-45, 45-128)
    ],
)
def test_a_block_splits_in_at_most_max_splits_pieces(splits, cc_offsets, onset):
    # A note at offset 45 of the second block, and controller events of another channel
    # (silent) at other offsets of the same block.
    e = make()
    e.max_splits_per_block = splits
    run(e, frames=128)
    e.note_on(0, 69, 127, frame=128 + 45)
    for off in cc_offsets:
        e.control_change(5, CC.MOD_WHEEL, off, frame=128 + off)
    left = run(e, frames=256)[:, 0]
    # Attack 0: the first sample of a note is 0, the next is not.
    assert np.flatnonzero(np.abs(left) > 0)[0] == onset + 1


def test_events_in_the_past_apply_at_block_start_and_order_is_kept():
    e = make()
    run(e, frames=256)
    e.note_on(0, 60, 100, frame=10)  # already rendered: applies at once
    e.note_off(0, 60, frame=10)  # same frame, pushed later: applies after
    run(e, 0.2)
    assert e.active_voices == 0


def test_patch_change_applies_to_new_notes_only():
    e = make(theta=PURE.replace(mod_index=0.0))
    e.note_on(0, 60, 100)
    run(e, frames=128)
    e.set_patch(0, KeyTable.flat(PURE.replace(mod_index=5.0)))
    e.note_on(0, 64, 100)
    run(e, frames=128)
    vb = e.voices
    by_pitch = {int(vb.pitch[i]): vb.mod_index_tgt[i] for i in range(vb.n)}
    assert by_pitch == {60: 0.0, 64: 5.0}


def test_live_param_change_is_smoothed():
    e = make(theta=PURE.replace(mod_index=0.0, mod_ratio=1.0))
    e.note_on(0, 57, 127)
    a = run(e, 0.1)
    e.set_param(0, "mod_index", 6.0)
    b = run(e, frames=128)
    assert 0.0 < e.voices.mod_index[0] < 6.0  # on its way, not jumped
    c = run(e, 0.2)
    assert e.voices.mod_index[0] == pytest.approx(6.0, rel=1e-3)
    y = np.concatenate([a, b, c])[:, 0]
    # No step: consecutive samples stay within what the brightest sound can move.
    assert np.max(np.abs(np.diff(y))) < 2 * np.pi * midi_to_hz(57) * 8 / SR


def test_live_sustain_change_is_smoothed():
    e = make(theta=PURE.replace(sustain=1.0))
    e.note_on(0, 69, 127)
    run(e, 0.1)
    e.set_param(0, "sustain", 0.1)
    y = run(e, 0.1)[:, 0]
    assert np.max(np.abs(np.diff(y))) < 1.2 * 2 * np.pi * 440 / SR


def test_mod_wheel_scales_index():
    e = make(theta=PURE.replace(mod_index=2.0))
    e.control_change(0, CC.MOD_WHEEL, 127)
    e.note_on(0, 60, 100)
    run(e, frames=128)
    assert e.voices.mod_scale[0] == pytest.approx(2.0)
    e.control_change(0, CC.MOD_WHEEL, 0)
    run(e, frames=128)
    assert e.voices.mod_scale[0] == pytest.approx(1.0)


def test_volume_and_pan():
    e = make()
    e.control_change(0, CC.PAN, 0)
    e.note_on(0, 69, 127)
    y = run(e, 0.1)[SR // 20 :]
    assert np.max(np.abs(y[:, 1])) < 1e-6 and np.max(np.abs(y[:, 0])) > 0.3
    e.control_change(0, CC.PAN, 64)
    e.control_change(0, CC.VOLUME, 127)
    y = run(e, 0.1)[SR // 20 :]
    assert np.max(np.abs(y[:, 0])) == pytest.approx(np.sqrt(0.5), rel=1e-3)
    assert np.max(np.abs(y[:, 1])) == pytest.approx(np.sqrt(0.5), rel=1e-3)


def test_all_sound_off_and_all_notes_off():
    e = make(theta=LONG)
    for p in (60, 64, 67):
        e.note_on(0, p, 100)
    e.note_on(1, 72, 100)
    run(e, 0.05)
    e.control_change(0, CC.ALL_SOUND_OFF, 0)
    run(e, 0.02)
    assert e.sounding_notes() == [(1, 72)]
    e.control_change(1, CC.ALL_NOTES_OFF, 0)
    run(e, 0.05)
    assert e.voices.released[0] == 1  # releasing with its own release time
    run(e, 2.1)
    assert e.active_voices == 0


def test_panic_silences_everything_and_lifts_pedals():
    e = make(theta=LONG)
    for ch in range(16):
        e.control_change(ch, CC.SUSTAIN, 127)
        e.note_on(ch, 60 + ch, 100)
    run(e, 0.05)
    e.panic()
    y = run(e, 0.05)
    assert e.active_voices == 0
    assert np.max(np.abs(y[-128:])) == 0.0
    assert not e.pedal.any()


@pytest.mark.parametrize("n_voices", [1, 32, 128])
def test_limiter_keeps_every_sample_inside_unity(n_voices):
    e = Engine(SR, max_voices=128, master_gain=4.0)
    for ch in range(16):
        e.set_patch(ch, KeyTable.flat(Theta.from_dict({"attack_s": 0.0, "mod_index": 12.0, "mod_ratio": 1.0, "sustain": 1.0})))
        e.control_change(ch, CC.VOLUME, 127)
    for i in range(n_voices):
        e.note_on(i % 16, 30 + i % 90, 127)
    y = run(e, 0.5)
    assert np.all(np.abs(y) <= 1.0)
    assert np.all(np.isfinite(y))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 127), st.integers(1, 127)), min_size=1, max_size=64),
       st.floats(0.0, 4.0))
def test_limiter_bound_holds_for_any_chord(notes, gain):
    e = Engine(SR, max_voices=64, master_gain=gain)
    for ch, p, v in notes:
        e.note_on(ch, p, v)
    y = run(e, frames=1024)
    assert np.all(np.abs(y) <= 1.0)


def test_midi_file_bounce(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 120 bpm
    tr.append(mido.Message("note_on", note=69, velocity=127, time=480))  # at 0.5 s
    tr.append(mido.Message("note_off", note=69, velocity=0, time=480))  # at 1.0 s
    tr.append(mido.Message("note_on", note=81, velocity=127, time=0))  # at 1.0 s
    tr.append(mido.Message("note_off", note=81, velocity=0, time=480))  # at 1.5 s
    path = tmp_path / "song.mid"
    mid.save(path)
    y = render_midi_file(path, KeyTable.flat(PURE.replace(release_s=0.01)), sample_rate=SR, tail_s=0.5)[:, 0]
    assert len(y) == int(2.0 * SR)
    onset = np.flatnonzero(np.abs(y) > 0)[0]
    assert onset == SR // 2 + 1
    assert abs(cents(peak_frequency(y[int(0.55 * SR) : int(0.95 * SR)], SR), 440.0)) < 1.0
    assert abs(cents(peak_frequency(y[int(1.05 * SR) : int(1.45 * SR)], SR), 880.0)) < 1.0
    assert np.all(y[int(1.52 * SR) :] == 0)


def test_unreadable_midi_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(ValueError, match="cannot read MIDI file"):
        render_midi_file(bad, KeyTable.flat(PURE))


def test_limiter_never_passes_nonfinite_samples():
    from engine import Limiter

    lim = Limiter(SR)
    block = np.full((128, 2), 0.5, dtype=np.float32)
    block[7, 1] = np.nan
    lim.process(block)
    assert np.all(block == 0.0) and lim.nonfinite_blocks == 1
    ok = np.full((128, 2), 0.5, dtype=np.float32)
    lim.process(ok)
    assert np.all(ok == 0.5)


def test_reset_channels_is_all_sound_off_and_reset_controllers_in_one_event():
    """A MIDI System Reset's channels, reset by one event, sound as CC 120 then CC 121
    on each of them; the other channels play on untouched."""

    def play(reset) -> np.ndarray:
        e = Engine(sample_rate=16000)
        for ch in (2, 5, 9):
            e.control_change(ch, CC.MOD_WHEEL, 100)
            e.pitch_bend(ch, 4000)
            e.control_change(ch, CC.SUSTAIN, 127)
            e.note_on(ch, 60 + ch, 100)
            e.note_on(ch, 48 + ch, 90)
            e.note_off(ch, 48 + ch)  # held by the pedal
        head = e.render(800)
        reset(e)
        e.note_on(2, 70, 100)  # after the reset: no bend, no pedal, no mod wheel
        e.note_off(2, 70)
        return np.concatenate([head, e.render(8000)])

    def by_cc(e):
        for ch in (2, 9):
            e.control_change(ch, CC.ALL_SOUND_OFF, 0)
            e.control_change(ch, CC.RESET_ALL_CONTROLLERS, 0)

    a, b = play(by_cc), play(lambda e: e.reset_channels([9, 2]))
    np.testing.assert_array_equal(a, b)
    assert np.abs(b[-800:]).max() > 1e-3  # channel 5 still sounds, held by its pedal
    with pytest.raises(ValueError, match="channel must be in range 0..15"):
        Engine().reset_channels([16])


@pytest.mark.parametrize("curve, exponent", [("soft", 0.75), ("linear", 1.0), ("medium", 1.5),
                                             ("hard", 2.5), (2.0, 2.0), ("3", 3.0)])
def test_velocity_curves_set_the_level_ratio_of_soft_and_hard_notes(curve, exponent):
    """A velocity curve changes loudness only: the same note at velocity 40 is
    (40/100) ** exponent as loud as at 100, sample for sample."""

    def note(velocity: int) -> np.ndarray:
        e = Engine(sample_rate=16000)
        e.set_velocity_curve(curve)
        e.note_on(0, 60, velocity)
        return e.render(4000)[:, 0]

    soft, hard = note(40), note(100)
    np.testing.assert_allclose(soft, hard * (40 / 100) ** exponent, rtol=1e-5, atol=1e-7)


def test_the_default_velocity_curve_is_the_seeds_and_bad_curves_are_refused():
    from engine import velocity_exponent, velocity_to_amp

    e, f = Engine(sample_rate=16000), Engine(sample_rate=16000)
    f.set_velocity_curve("medium")
    for x in (e, f):
        x.note_on(0, 64, 77)
    np.testing.assert_array_equal(e.render(2000), f.render(2000))
    assert velocity_to_amp(64) == (64 / 127) ** 1.5
    for bad in ("loud", 0.1, 5, float("nan"), None, True):
        with pytest.raises(ValueError, match="velocity curve must be soft, linear, medium, hard or an exponent in range 0.25..4"):
            velocity_exponent(bad)
