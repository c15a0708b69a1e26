"""The send effects (engine.effects), rendered offline by the engine itself: sends from
CC 91/93/94 and set_send, tails that outlive note-offs and patch changes and stop on
panic, all sound off and System Reset, checked settings, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from engine import CC, Engine, KeyTable
from engine.effects import BUSES, EFFECT_SETTINGS, QUIET_HOLD_S, effect_setting

SR = 48000
BLOCK = 128
#: A plain sine with a 10 ms release: once released, the voice is gone within a block
#: or four, and what is heard after that is an effect's tail.
SINE = KeyTable.flat({"attack_s": 0.0, "sustain": 1.0, "release_s": 0.01, "mod_index": 0.0})


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def play(seconds: float, sends: dict[str, int] | None = None, events=None, channel: int = 0,
         note_s: float = 0.3) -> tuple[Engine, np.ndarray]:
    """A note of ``note_s`` on ``channel`` from frame 0 with ``sends`` (effect -> CC
    value) set before it; ``events(engine, frame)`` is called before each block."""
    eng = Engine(SR, 16)
    eng.set_patch(channel, SINE, frame=0)
    for effect, value in (sends or {}).items():
        eng.control_change(channel, {"reverb": 91, "chorus": 93, "delay": 94}[effect], value, frame=0)
    eng.note_on(channel, 69, 100, frame=0)
    eng.note_off(channel, 69, frame=int(note_s * SR))
    blocks = []
    while eng.frame < seconds * SR:
        if events is not None:
            events(eng, eng.frame)
        blocks.append(eng.render(BLOCK))
    return eng, np.concatenate(blocks)


def test_no_send_is_the_dry_engine_bit_for_bit():
    """Sends on a channel that plays nothing, and every setting changed: the note of
    another channel renders exactly as with no effects at all, and no bus runs."""
    _, dry = play(0.6)

    def settings(eng, frame):
        if frame == 0:
            for s in EFFECT_SETTINGS:
                eng.set_effect(s.name, s.maximum, frame=0)
            for effect in BUSES:
                eng.set_send(5, effect, 1.0, frame=0)

    eng, other = play(0.6, events=settings)
    assert np.array_equal(dry, other)
    assert not eng.effects.running.any()


@pytest.mark.parametrize("effect", BUSES)
def test_a_send_rings_on_after_the_note_off(effect):
    """CC 91/93/94 at 127: after the note-off (and the voice's 10 ms release) the output
    goes on where the dry engine is silent; reverb and delay ring for a long tail."""
    _, dry = play(1.0)
    eng, wet = play(1.0, {effect: 127})
    after = slice(int(0.35 * SR), int(0.45 * SR))
    assert rms(dry[after]) == 0.0
    if effect == "chorus":  # a short tail: its delay line (7 ms, +- depth)
        assert rms(wet[int(0.30 * SR) + 200 : int(0.30 * SR) + 400]) > 1e-3
    else:
        assert rms(wet[after]) > 1e-3
    assert eng.active_voices == 0


def test_the_tail_outlives_a_patch_change():
    """A patch change during the reverb's tail leaves the tail as it was, sample for sample."""
    _, tail = play(1.0, {"reverb": 127})

    def change(eng, frame):
        if frame == int(0.4 * SR) // BLOCK * BLOCK:
            eng.set_patch(0, KeyTable.flat({"mod_index": 3.0}), frame=frame + 7)

    eng, changed = play(1.0, {"reverb": 127}, events=change)
    assert eng.patch_serial[0] == 2
    assert rms(changed[int(0.5 * SR) :]) > 1e-4
    assert np.array_equal(tail, changed)


@pytest.mark.parametrize("how", ["panic", "all sound off", "system reset"])
def test_the_tail_stops_on_panic_all_sound_off_and_system_reset(how):
    """At 0.5 s (the note ended at 0.3 s) the tail is stopped: after a 5 ms fade and a
    block the output is exactly silent, and no bus runs any more."""
    stop_at = int(0.5 * SR) // BLOCK * BLOCK

    def stop(eng, frame):
        if frame == stop_at:
            if how == "panic":
                eng.panic(frame=frame)
            elif how == "all sound off":
                eng.control_change(3, CC.ALL_SOUND_OFF, 0, frame=frame)  # any channel: shared buses
            else:
                eng.reset_channels([0], frame=frame)

    eng, audio = play(1.2, {"reverb": 127, "delay": 127}, events=stop)
    assert rms(audio[stop_at - 2400 : stop_at]) > 1e-3
    quiet_from = stop_at + int(0.005 * SR) + BLOCK
    assert np.all(audio[quiet_from:] == 0.0)
    assert not eng.effects.active
    # No step at the stop: the fade takes the tail down over 5 ms.
    assert np.abs(np.diff(audio[stop_at - 64 : quiet_from], axis=0)).max() < 0.05
    if how == "system reset":
        assert eng.channels.send_level[:, 0].tolist() == [0.0, 0.0, 0.0]
    else:
        assert eng.channels.send_level[0, 0] == 1.0  # the sends stay


def test_the_tail_rings_out_and_the_bus_is_skipped():
    """With nothing sent any more, a bus runs until its return has been silent for
    QUIET_HOLD_S, then the effects cost nothing."""
    eng, audio = play(4.0, {"reverb": 127})
    assert not eng.effects.active
    assert rms(audio[int(3.0 * SR) :]) < 1e-4
    assert QUIET_HOLD_S < 1.0


def test_cc_and_set_send_are_the_same_send():
    """CC 91 = 64 and set_send(0.5039...) (64 / 127) render the same samples."""
    _, by_cc = play(0.8, {"reverb": 64})

    def by_call(eng, frame):
        if frame == 0:
            eng.set_send(0, "reverb", 64 / 127, frame=0)

    _, by_method = play(0.8, events=by_call)
    assert rms(by_cc[int(0.4 * SR) :]) > 1e-4
    assert np.array_equal(by_cc, by_method)


def test_a_send_render_is_deterministic():
    """Two offline renders with every effect on give the same bits."""
    a = play(1.0, {"reverb": 100, "chorus": 90, "delay": 80})[1]
    b = play(1.0, {"reverb": 100, "chorus": 90, "delay": 80})[1]
    assert np.array_equal(a, b)


def test_settings_change_the_sound():
    """A bigger room rings longer; a longer delay echoes later."""
    def setting(name, value):
        def ev(eng, frame):
            if frame == 0:
                eng.set_effect(name, value, frame=0)
        return ev

    small = play(1.5, {"reverb": 127}, setting("reverb_room", 0.2))[1]
    big = play(1.5, {"reverb": 127}, setting("reverb_room", 0.95))[1]
    late = slice(int(0.8 * SR), int(1.2 * SR))
    assert rms(big[late]) > 5 * rms(small[late])
    echo = play(1.5, {"delay": 127}, setting("delay_time", 0.6))[1]
    assert rms(echo[int(0.35 * SR) : int(0.55 * SR)]) == 0.0  # before the first echo
    assert rms(echo[int(0.65 * SR) : int(0.85 * SR)]) > 1e-3  # the first echo (0.6 s on)


def test_mpe_members_send_as_their_master():
    eng = Engine(SR, 16)
    eng.set_mpe(15, frame=0)
    eng.control_change(0, 91, 127, frame=0)
    eng.render(BLOCK)
    assert eng.buses.send[1, 0, :16].tolist() == [1.0] * 16
    eng.set_mpe(0)
    eng.render(BLOCK)
    assert eng.buses.send[1, 0, :].tolist() == [1.0] + [0.0] * 15


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda e: e.set_effect("reverb_room", 1.5), ValueError, "reverb_room must be in range 0..1, got 1.5"),
        (lambda e: e.set_effect("reverb_room", float("nan")), ValueError, "reverb_room must be in range 0..1, got nan"),
        (lambda e: e.set_effect("delay_time", "1"), TypeError, "delay_time must be a number, got str"),
        (lambda e: e.set_effect("reverb_size", 0.5), ValueError, "unknown effect setting 'reverb_size'; settings: "),
        (lambda e: e.set_send(0, "flanger", 0.5), ValueError, "effect must be one of reverb, chorus, delay"),
        (lambda e: e.set_send(0, "reverb", 1.01), ValueError, "level must be in range 0..1, got 1.01"),
        (lambda e: e.set_send(16, "reverb", 0.5), ValueError, "channel must be in range 0..15, got 16"),
    ],
)
def test_bad_settings_and_sends_say_what_is_accepted(call, error, words):
    eng = Engine(SR, 4)
    with pytest.raises(error, match=words.replace(".", r"\.").replace("(", r"\(")):
        call(eng)
    assert eng.queue.pending_in_ring() == 0
    assert eng.effect_settings() == {s.name: s.default for s in EFFECT_SETTINGS}


def test_the_sender_remembers_what_it_sent():
    eng = Engine(SR, 4)
    eng.set_effect("chorus_rate", 2.5)
    eng.control_change(3, 93, 127)
    eng.set_send(4, "delay", 0.25)
    assert eng.effect_settings()["chorus_rate"] == 2.5
    sends = eng.sends()
    assert sends["chorus"][3] == 1.0 and sends["delay"][4] == 0.25 and sends["reverb"] == [0.0] * 16
    eng.reset_channels([3])
    assert eng.sends()["chorus"][3] == 0.0
    assert effect_setting("reverb_room").address == "/fx/reverb/room"
    assert effect_setting("chorus_delay_ms").flag == "--chorus-delay-ms"


def test_a_send_turned_off_between_notes_sends_nothing():
    """A send set to 0 while no voice sounds: the next note starts dry (no glide from
    the old level), so nothing rings after it."""
    second = int(1.0 * SR)

    def events(eng, frame):
        if frame == int(0.5 * SR) // BLOCK * BLOCK:
            eng.panic(frame=frame)
            eng.set_send(0, "reverb", 0.0, frame=frame + 1000)
        if frame == second:
            eng.note_on(0, 69, 100, frame=frame)
            eng.note_off(0, 69, frame=frame + 4800)

    eng, audio = play(1.6, {"reverb": 127}, events=events)
    assert np.all(audio[second + 4800 + 2400 :] == 0.0)


def test_a_midi_file_bounce_takes_its_cc91_and_the_effect_options(tmp_path):
    """render_midi_file: the file's CC 91 sends, ``effects`` shapes the reverb, and the
    bounce is the same twice."""
    import mido

    from engine import render_midi_file

    def song(path, reverb: int):
        mid = mido.MidiFile(ticks_per_beat=480)
        track = mido.MidiTrack()
        mid.tracks.append(track)
        track.append(mido.Message("control_change", control=91, value=reverb, time=0))
        track.append(mido.Message("note_on", note=69, velocity=100, time=0))
        track.append(mido.Message("note_off", note=69, velocity=0, time=240))  # 0.25 s at 120 bpm
        mid.save(path)
        return path

    dry = render_midi_file(song(tmp_path / "dry.mid", 0), SINE, tail_s=1.0)
    wet = render_midi_file(song(tmp_path / "wet.mid", 127), SINE, tail_s=1.0, effects={"reverb_room": 0.9})
    again = render_midi_file(tmp_path / "wet.mid", SINE, tail_s=1.0, effects={"reverb_room": 0.9})
    tail = slice(int(0.5 * SR), int(1.0 * SR))
    assert rms(dry[tail]) == 0.0 and rms(wet[tail]) > 1e-3
    assert np.array_equal(wet, again)
    sent = render_midi_file(tmp_path / "dry.mid", SINE, tail_s=1.0, sends={"delay": 1.0})
    assert rms(sent[tail]) > 1e-3  # the file's CC 91 = 0 leaves the delay send as given
