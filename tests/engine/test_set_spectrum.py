"""EventSender.set_spectrum: a whole carrier spectrum sent at once, checked first,
applied as one change (staging events and one switch), gliding on sounding notes."""

import numpy as np
import pytest

from engine import Engine, KeyTable
from engine.events import EventQueue, QueueFull
from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES
from engine.voices import midi_to_hz

SR = 48000
HELD = dict(attack_s=0.0, decay_s=0.0, sustain=1.0, release_s=0.05, mod_index=0.0)
SINE = np.r_[0.0, np.full(N_HARMONICS - 1, DB_FLOOR)]


def _levels_db(y: np.ndarray, f0: float, n: int) -> np.ndarray:
    t = np.arange(len(y)) / SR
    k = np.arange(1, n + 1)[:, None]
    return 20 * np.log10(np.abs(np.exp(-2j * np.pi * k * f0 * t) @ (y * np.hanning(len(y)))) + 1e-12)


def _above_db(y: np.ndarray, hz: float) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    return float(10 * np.log10(spec[np.fft.rfftfreq(len(y), 1.0 / SR) > hz].sum() / spec.sum()))


def _spectra(e: Engine, ch: int = 0) -> tuple[np.ndarray, np.ndarray]:
    c = e.channels.table(ch).center()
    return np.array([c[n] for n in ONSET_NAMES]), np.array([c[n] for n in HELD_NAMES])


def test_set_spectrum_mid_note_glides_to_it_without_a_click():
    e = Engine(sample_rate=SR, max_voices=4)
    e.set_patch(0, KeyTable.flat(HELD), frame=0)
    e.note_on(0, 45, 60, frame=0)  # below the limiter's threshold
    before = e.render(4800)[:, 0]
    held = np.linspace(0.0, -12.0, N_HARMONICS)
    e.set_spectrum(0, held, onset_db=held, frame=e.frame + 37)
    after = e.render(9600)[:, 0]
    # The spectrum ends below 3.6 kHz (32 harmonics of 110 Hz): a switch of waveform at
    # one sample would spread a click's energy far above it.
    assert _above_db(np.r_[before, after][4800 + 37 - 2048 : 4800 + 37 + 2048], 6000.0) < -60.0
    lv = _levels_db(after[-8192:], midi_to_hz(45), 5)
    assert np.allclose(lv[1:] - lv[0], held[1:5], atol=0.5)  # the new spectrum sounds
    onset, got = _spectra(e)
    assert np.array_equal(got, held) and np.array_equal(onset, held)
    # A note started after it plays it from its onset on.
    e.note_on(0, 57, 60)
    y = e.render(9600)[:, 0]
    lv = _levels_db(y[-8192:], midi_to_hz(57), 5)
    assert np.allclose(lv[1:] - lv[0], held[1:5], atol=1.0)


def test_held_only_leaves_the_onset_spectrum_as_it_is():
    e = Engine(sample_rate=SR, max_voices=4)
    held = np.maximum(-6.0 * np.arange(N_HARMONICS), DB_FLOOR)
    e.set_spectrum(3, held)
    e.render(128)
    onset, got = _spectra(e, 3)
    assert np.array_equal(onset, SINE) and np.array_equal(got, held)
    assert np.array_equal(_spectra(e, 0)[1], SINE)  # the other channels untouched
    # A new patch drops it, as every set_param change.
    e.set_patch(3, KeyTable.flat(HELD))
    e.render(128)
    assert np.array_equal(_spectra(e, 3)[1], SINE)


@pytest.mark.parametrize(
    "held, onset, error, message",
    [
        (np.zeros(31), None, ValueError, "held spectrum must be 32 levels in dB (harmonic 1 first), each a number in range -80..0; got 31 values"),
        (np.r_[0.0, np.full(31, -90.0)], None, ValueError, "held spectrum: harmonic 2 must be in range -80..0 (dB), got -90.0"),
        (np.r_[np.zeros(4), np.nan, np.zeros(27)], None, ValueError, "held spectrum: harmonic 5 must be in range -80..0 (dB), got nan"),
        ([0.0] * 31 + ["loud"], None, TypeError, "held spectrum: harmonic 32 must be a number in range -80..0 (dB), got 'loud'"),
        ("-6 dB", None, TypeError, "held spectrum must be 32 levels"),
        (np.zeros(32), np.r_[np.zeros(31), 3.0], ValueError, "onset spectrum: harmonic 32 must be in range -80..0 (dB), got 3.0"),
    ],
)
def test_a_bad_spectrum_raises_and_changes_nothing(held, onset, error, message):
    e = Engine(sample_rate=SR, max_voices=4)
    ref = Engine(sample_rate=SR, max_voices=4)
    for x in (e, ref):
        x.set_patch(0, KeyTable.flat(HELD), frame=0)
        x.note_on(0, 45, 60, frame=0)
        x.render(1024)
    waiting = e.queue.pending_in_ring()
    with pytest.raises(error) as exc:
        e.set_spectrum(0, held, onset_db=onset)
    assert message in str(exc.value)
    assert e.queue.pending_in_ring() == waiting  # nothing sent
    assert np.array_equal(e.render(4800), ref.render(4800))
    with pytest.raises(ValueError, match="channel must be in range 0..15"):
        e.set_spectrum(16, np.zeros(32))


def test_a_group_cut_short_by_a_full_queue_changes_nothing_and_is_never_applied():
    """Staged levels change nothing until their switch: a group that a full queue cut
    short (its switch never sent) leaves the sound as it was, and a later group on the
    channel drops its levels."""
    e = Engine(sample_rate=SR, max_voices=4, queue=EventQueue(capacity=20, n_values=4))
    e.set_patch(0, KeyTable.flat(HELD), frame=0)
    e.render(128)
    with pytest.raises(QueueFull):
        e.set_spectrum(0, np.full(N_HARMONICS, -3.0), onset_db=np.full(N_HARMONICS, -3.0))
    e.render(128)  # its first 20 staging events arrive, never the switch
    assert np.array_equal(_spectra(e)[0], SINE) and np.array_equal(_spectra(e)[1], SINE)
    e.note_on(0, 69, 60)
    y = e.render(4800)[:, 0]
    assert _levels_db(y[-4096:], 440.0, 2)[1] - _levels_db(y[-4096:], 440.0, 1)[0] < -60.0  # a sine
    held = np.maximum(-2.0 * np.arange(N_HARMONICS), DB_FLOOR)
    e.set_spectrum(0, held)  # 16 staging events and the switch
    e.render(128)
    onset, got = _spectra(e)
    assert np.array_equal(got, held)
    assert np.array_equal(onset, SINE)  # the cut-short group's onset levels were dropped
