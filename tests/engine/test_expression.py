"""Per-note expression, offline: channel and key pressure, CC 74, the mod wheel's vibrato,
OSC id notes, and the expression amounts (engine.expression)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import CC, Engine, KeyTable, Theta
from engine.expression import Expression
from tests.engine.helpers import cents, peak_frequency

SR = 48000
BLOCK = 128
# A held plain sine (no FM of its own): what expression adds is easy to see.
PLAIN = Theta.from_dict({"attack_s": 0.0, "decay_s": 0.0, "sustain": 1.0, "release_s": 0.05,
                         "mod_ratio": 1.0, "mod_index": 0.0})


def engine(theta: Theta = PLAIN, voices: int = 8) -> Engine:
    e = Engine(SR, voices)
    for ch in range(16):
        e.set_patch(ch, KeyTable.flat(theta))
    return e


def blocks(e: Engine, n: int) -> np.ndarray:
    """``n`` blocks of BLOCK frames, as a live host renders them; the left channel."""
    return np.concatenate([e.render(BLOCK) for _ in range(n)])[:, 0]


def brightness(y: np.ndarray, f0: float) -> float:
    """Energy above 1.5 x the fundamental over the whole energy (0 for a pure sine)."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1.0 / SR)
    return float(spec[freqs > 1.5 * f0].sum() / spec.sum())


def max_step(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(y))))


def held_then(event, theta: Theta = PLAIN, at: int = 40 * BLOCK + 37, total: int = 80):
    """A held note (key 60, velocity 40: the limiter stays out of it), then ``event(engine, frame)`` at frame ``at``
    (within a block); rendered block by block beside the same note without it."""
    a, b = engine(theta), engine(theta)
    for e in (a, b):
        e.note_on(0, 60, 40)
    event(b, at)
    return blocks(a, total), blocks(b, total), at


@pytest.mark.parametrize(
    "name, event",
    [
        ("channel pressure", lambda e, f: e.channel_pressure(0, 127, frame=f)),
        ("key pressure", lambda e, f: e.poly_pressure(0, 60, 127, frame=f)),
        ("CC 74", lambda e, f: e.control_change(0, CC.BRIGHTNESS, 127, frame=f)),
    ],
)
def test_a_change_reaches_the_sound_at_its_frame_without_a_click(name, event):
    """The output is the same up to the event's frame and differs from that sample on,
    within the block; the change glides: no sample-to-sample step larger than the note's
    own (before the change, or once it has settled)."""
    a, b, at = held_then(event)
    diff = np.abs(b - a)
    assert diff[:at].max() == 0.0, name
    first = int(np.flatnonzero(diff > 0)[0])
    assert at <= first < at + BLOCK, (name, first)
    assert diff[at : at + BLOCK].max() > 1e-4, name  # heard within the block
    own = max(max_step(b[at - 2048 : at]), max_step(b[-2048:]))
    assert max_step(b[at - 8 : at + 4096]) <= own * 1.01, name
    # The check sees a step: the same change applied at once (no glide) is a click.
    c = engine()
    c.note_on(0, 60, 40)
    head = blocks(c, at // BLOCK)
    event(c, None)
    c.render(0)  # applies the event without rendering
    vb = c.voices
    vb.x_boost[0], vb.x_index[0] = vb.x_boost_tgt[0], vb.x_index_tgt[0]
    y = np.concatenate([head, blocks(c, 8)])
    assert max_step(y[len(head) - 8 :]) > own * 1.2, name


def test_pressure_makes_a_held_note_louder_and_brighter():
    a, b, at = held_then(lambda e, f: e.channel_pressure(0, 127, frame=f), total=120)
    late = slice(-4096, None)
    f0 = 261.63
    assert brightness(a[late], f0) < 1e-4  # a pure sine
    assert brightness(b[late], f0) > 0.05
    assert np.mean(b[late] ** 2) > 2.0 * np.mean(a[late] ** 2)
    # Louder by pressure_db (6 dB by default, 9 here) in RMS, the brightness left out.
    a, b, at = held_then(
        lambda e, f: (e.set_expression(0, pressure_index=0.0, pressure_db=9.0), e.channel_pressure(0, 127, frame=f)),
        total=120,
    )
    assert brightness(b[late], f0) < 1e-4
    ratio = np.sqrt(np.mean(b[late] ** 2) / np.mean(a[late] ** 2))
    assert 20 * np.log10(ratio) == pytest.approx(9.0, abs=0.01)


def test_cc74_brightens_by_the_patch_amount():
    a, b, at = held_then(lambda e, f: e.control_change(0, CC.BRIGHTNESS, 127, frame=f), total=120)
    late = slice(-4096, None)
    assert brightness(b[late], 261.63) > 0.05
    _, c, _ = held_then(
        lambda e, f: (e.set_expression(0, timbre_index=8.0), e.control_change(0, CC.BRIGHTNESS, 127, frame=f)),
        total=120,
    )
    assert brightness(c[late], 261.63) > brightness(b[late], 261.63) + 0.05


def test_key_pressure_acts_on_its_own_note_only():
    """Keys 60 and 67 sound; pressure on 67: the mix is key 60 untouched plus key 67 with
    pressure, each rendered alone."""
    def play(keys, pressed):
        e = engine()
        for k in keys:
            e.note_on(0, k, 40)  # quiet: the limiter leaves the sum as it is
        head = blocks(e, 4)
        if pressed:
            e.poly_pressure(0, 67, 100)
        return np.concatenate([head, blocks(e, 60)])

    both = play((60, 67), True)
    alone = play((60,), False) + play((67,), True)
    assert np.max(np.abs(both - alone)) < 1e-6
    assert np.max(np.abs(both - play((60, 67), False))) > 0.01  # and it did something
    # Pressure on a key that does not sound changes nothing.
    assert np.array_equal(play((60,), False), play((60,), True))


def test_no_expression_renders_bit_identically():
    """Pressure, CC 74 and the wheel at 0 (or amounts at 0) leave the render as it was."""
    theta = PLAIN.replace(mod_index=1.5, index_peak=2.0, noise_level=0.1)

    def play(events):
        e = engine(theta)
        e.note_on(0, 60, 100)
        e.note_on(0, 64, 90)
        head = blocks(e, 3)
        events(e)
        return np.concatenate([head, blocks(e, 40)])

    ref = play(lambda e: None)
    zero = play(lambda e: (e.channel_pressure(0, 0), e.control_change(0, CC.BRIGHTNESS, 0),
                           e.control_change(0, CC.MOD_WHEEL, 0), e.poly_pressure(0, 60, 0)))
    assert np.array_equal(ref, zero)
    off = play(lambda e: (e.set_expression(0, pressure_db=0, pressure_index=0, timbre_index=0),
                          e.channel_pressure(0, 127), e.control_change(0, CC.BRIGHTNESS, 127)))
    assert np.array_equal(ref, off)
    assert not np.array_equal(ref, play(lambda e: e.channel_pressure(0, 127)))


def _pitch_track(y: np.ndarray, window: int = 2400) -> np.ndarray:
    return np.array([peak_frequency(y[i : i + window], SR, 100, 1000) for i in range(0, len(y) - window, window // 2)])


def test_mod_wheel_adds_vibrato_of_the_patch_depth_and_rate():
    e = engine()
    e.set_expression(0, wheel_index=0.0)  # vibrato alone
    e.note_on(0, 69, 100)
    e.control_change(0, CC.MOD_WHEEL, 127)
    y = blocks(e, 750)[9600:]  # 2 s on from 0.2 s: the depth has arrived
    track = _pitch_track(y, 960)
    dev = np.array([cents(f, 440.0) for f in track])
    # 50 cents each way at full wheel (a 20 ms window averages the sine's peaks a little).
    assert 40.0 < dev.max() < 52.0 and -52.0 < dev.min() < -40.0
    # 5.5 Hz: zero crossings of the deviation.
    t = np.arange(len(dev)) * 480 / SR
    crossings = t[np.flatnonzero(np.diff(np.sign(dev)) != 0)]
    rate = (len(crossings) - 1) / (2 * (crossings[-1] - crossings[0]))
    assert rate == pytest.approx(5.5, rel=0.05)
    # The wheel down: the vibrato glides away, the pitch is 440 Hz again.
    e.control_change(0, CC.MOD_WHEEL, 0)
    blocks(e, 40)
    assert abs(cents(peak_frequency(blocks(e, 200), SR, 100, 1000), 440.0)) < 0.5


def test_expression_amounts_are_checked_and_remembered():
    e = engine()
    with pytest.raises(ValueError, match="pressure_db must be in range 0..24, got 30"):
        e.set_expression(0, pressure_db=30)
    with pytest.raises(ValueError, match="unknown expression amount 'loud'"):
        e.set_expression(0, loud=1)
    with pytest.raises(ValueError, match="value must be in range 0..127"):
        e.channel_pressure(0, 128)
    e.set_expression(3, pressure_db=3.0)
    assert e.expression(3) == Expression().replace(pressure_db=3.0)
    e.set_expression(3, vibrato_hz=7.0)  # the others stay
    assert (e.expression(3).pressure_db, e.expression(3).vibrato_hz) == (3.0, 7.0)
    e.set_expression(3)  # the defaults
    assert e.expression(3) == Expression()
    e.render(BLOCK)
    assert np.array_equal(e.channels.expression[3], Expression().values)


def test_reset_all_controllers_lets_go_of_pressure():
    e = engine()
    e.note_on(0, 60, 40)
    e.channel_pressure(0, 127)
    e.poly_pressure(0, 60, 127)
    e.render(BLOCK)
    assert e.voices.x_boost_tgt[0] > 0.9
    e.control_change(0, CC.RESET_ALL_CONTROLLERS, 0)
    e.render(BLOCK)
    assert (e.voices.x_boost_tgt[0], e.voices.x_index_tgt[0]) == (0.0, 0.0)


# -- id notes ------------------------------------------------------------------------


def test_id_note_plays_its_fractional_pitch_and_bends_alone():
    e = engine()
    e.note_id_on(7, 69.5, 100, channel=2)
    e.note_id_on(8, 57.0, 100, channel=2)
    y = blocks(e, 100)
    assert cents(peak_frequency(y[-4096:], SR, 400, 1000), 440.0) == pytest.approx(50.0, abs=0.5)
    e.note_id_pitch(7, 2.0)  # id 7 only: 71.5
    blocks(e, 4)
    vb = e.voices
    y = blocks(e, 100)
    assert cents(peak_frequency(y[-4096:], SR, 400, 1000), 440.0) == pytest.approx(250.0, abs=0.5)
    assert cents(peak_frequency(y[-4096:], SR, 150, 300), 220.0) == pytest.approx(0.0, abs=0.5)
    assert sorted(vb.n_bend[: vb.n].tolist()) == [0.0, 2.0]


def test_id_note_pressure_and_timbre_act_on_their_note_only():
    e = engine()
    e.note_id_on(1, 60, 100)
    e.note_id_on(2, 67, 100)
    e.render(BLOCK)
    e.note_id_pressure(2, 1.0)
    e.note_id_timbre(1, 0.5)
    e.render(BLOCK)
    vb = e.voices
    by_pitch = {int(vb.pitch[i]): i for i in range(vb.n)}
    assert vb.x_boost_tgt[by_pitch[60]] == 0.0 and vb.x_index_tgt[by_pitch[60]] == pytest.approx(1.5)
    assert vb.x_boost_tgt[by_pitch[67]] == pytest.approx(10 ** (6 / 20) - 1) and vb.x_index_tgt[by_pitch[67]] == 2.0


@pytest.mark.parametrize(
    "end",
    [
        lambda e: e.note_id_off(3),
        lambda e: e.note_id_on(3, 60, 0),  # velocity 0
        lambda e: e.panic(),
        lambda e: e.all_notes_off(4),
        lambda e: e.control_change(4, CC.ALL_SOUND_OFF, 0),
    ],
)
def test_id_notes_end(end):
    e = engine()
    e.note_id_on(3, 60.25, 100, channel=4)
    e.render(BLOCK)
    assert e.active_voices == 1
    end(e)
    e.render(SR // 5)
    assert e.active_voices == 0


def test_an_id_restarted_is_one_voice_and_unknown_ids_change_nothing():
    e = engine()
    e.note_id_on(9, 60, 100)
    e.note_id_on(9, 62, 100)  # the same id: the same voice, now at 62
    e.note_id_pitch(123, 5.0)  # no such note
    e.note_id_off(124)
    e.render(BLOCK)
    assert e.active_voices == 1 and e.voices.note[0] == 62.0
    # A MIDI key and an /fnote do not share the id's voice.
    e.note_on(0, 60, 100)
    e.fnote_on(0, 261.6256, 100)
    e.render(BLOCK)
    assert e.active_voices == 3
    for bad, match in (
        (lambda: e.note_id_on(-1, 60, 100), "id must be in range 0..16777215"),
        (lambda: e.note_id_on(2**24, 60, 100), "id must be in range"),
        (lambda: e.note_id_on(1, 128.0, 100), "pitch must be in range 0..127"),
        (lambda: e.note_id_on(1, float("nan"), 100), "pitch must be in range"),
        (lambda: e.note_id_pressure(1, 1.5), "pressure must be in range 0..1"),
        (lambda: e.note_id_pitch(1, 200.0), "semitones must be in range -96..96"),
    ):
        with pytest.raises(ValueError, match=match):
            bad()


def _click_figures() -> None:
    """Print the figures of the click test (docs/engine.md, "Expression"):
    ``python -m tests.engine.test_expression``."""
    events = {
        "channel pressure 127": lambda e, f: e.channel_pressure(0, 127, frame=f),
        "key pressure 127": lambda e, f: e.poly_pressure(0, 60, 127, frame=f),
        "CC 74 127": lambda e, f: e.control_change(0, CC.BRIGHTNESS, 127, frame=f),
    }
    for name, event in events.items():
        a, b, at = held_then(event)
        first = int(np.flatnonzero(np.abs(b - a) > 0)[0]) - at
        own = max(max_step(b[at - 2048 : at]), max_step(b[-2048:]))
        around = max_step(b[at - 8 : at + 4096])
        c = engine()
        c.note_on(0, 60, 40)
        head = blocks(c, at // BLOCK)
        event(c, None)
        c.render(0)
        vb = c.voices
        vb.x_boost[0], vb.x_index[0] = vb.x_boost_tgt[0], vb.x_index_tgt[0]
        step = max_step(np.concatenate([head, blocks(c, 8)])[len(head) - 8 :])
        print(f"{name}: output differs from frame +{first} of the event; largest step around the change "
              f"{around:.5f}, the note's own {own:.5f} (ratio {around / own:.3f}); set at once: {step:.5f} "
              f"({step / own:.1f}x)")


if __name__ == "__main__":
    _click_figures()
