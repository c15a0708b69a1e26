"""Schema v4's noise band against the formula of docs/engine.md, evaluated directly in
float64 numpy, sample by sample; where its energy lies; and its live behaviour."""

import numpy as np
import pytest

from engine import (
    Engine,
    KeyTable,
    Theta,
    midi_to_hz,
    noise_start,
    render_note,
    render_notes,
    velocity_to_amp,
)
from engine.voices import NOISE, NOISE_LP, NOISE_TABLE_SIZE
from tests.engine.test_v2_sound import BASE, SR, held_envelope, two_sounding

BAND = BASE.replace(band_level=0.6, band_width=0.4, band_centre=2.0, noise_level=0.05)


def band_formula(theta: Theta, pitch: int, n: int, sr: int = SR) -> np.ndarray:
    """The noise band alone (before the envelope and amplitude), from the definition:
    the low-passed table read between entries from noise_start(pitch) at 8 * width * f_c
    entries a second, times sqrt(2) cos(2 pi * centre * f_c * t)."""
    t = np.arange(n) / sr
    fc = midi_to_hz(pitch)
    pos = np.mod(noise_start(pitch) + 8.0 * theta.band_width * fc * t, NOISE_TABLE_SIZE)
    lp = np.interp(pos, np.arange(NOISE_TABLE_SIZE + 1), NOISE_LP)
    return theta.band_level * np.sqrt(2.0) * np.cos(2 * np.pi * theta.band_centre * fc * t) * lp


def formula(theta: Theta, pitch: int, velocity: int, n: int, sr: int = SR) -> np.ndarray:
    """The voice held for n samples: the schema-2 tone and noise, and the band."""
    t = np.arange(n) / sr
    fc = midi_to_hz(pitch)
    index = theta.mod_index + theta.index_peak * np.maximum(0.0, 1 - t / theta.index_decay_s)
    tone = np.sin(2 * np.pi * fc * t + index * np.sin(2 * np.pi * theta.mod_ratio * fc * t))
    nz = NOISE[(noise_start(pitch) + np.arange(n)) % NOISE_TABLE_SIZE].astype(np.float64)
    noise = theta.noise_level * np.maximum(0.0, 1 - t / theta.noise_decay_s) * nz
    env = held_envelope(theta, t, sr)
    return velocity_to_amp(velocity) * env * (tone + noise + band_formula(theta, pitch, n, sr))


def test_the_band_table_is_the_white_table_low_passed():
    assert NOISE_LP.shape == (NOISE_TABLE_SIZE + 1,) and NOISE_LP[-1] == NOISE_LP[0]
    spec = np.abs(np.fft.rfft(NOISE_LP[:-1]))
    white = np.abs(np.fft.rfft(NOISE.astype(np.float64)))
    cut = NOISE_TABLE_SIZE // 16
    assert spec[cut:].max() < 1e-9 * spec.max()  # nothing above 1/16 cycle per entry
    assert np.allclose(spec[1:cut] / white[1:cut], spec[1] / white[1])  # below it, the white table's, scaled
    assert np.sqrt(np.mean(NOISE_LP[:-1] ** 2)) == pytest.approx(np.sqrt(np.mean(NOISE.astype(np.float64) ** 2)))


@pytest.mark.parametrize("centre, width, pitch", [(2.0, 0.4, 57), (0.0, 1.5, 48), (5.0, 0.05, 72), (1.3, 4.0, 84)])
def test_the_band_is_its_formula(centre, width, pitch):
    theta = BAND.replace(band_centre=centre, band_width=width)
    y = render_note(KeyTable.flat(theta), pitch, 110, SR, hold_s=0.5, tail_s=0.0)
    ref = formula(theta, pitch, 110, len(y))
    assert np.max(np.abs(y - ref)) < 1e-6
    # And the band does something: not the sound without it.
    plain = formula(theta.replace(band_level=0.0), pitch, 110, len(y))
    assert np.max(np.abs(ref - plain)) > 0.1


@pytest.mark.parametrize("centre, width", [(2.0, 0.4), (5.0, 1.0), (0.0, 1.0)])
def test_the_band_lies_where_its_values_put_it(centre, width):
    """Nine tenths of the band's energy within its band: centre x f_c, width x f_c wide
    (at centre 0, the low-pass half as wide); a slack of a tenth of the pitch each side."""
    theta = Theta.from_dict({"attack_s": 0.0, "sustain": 1.0, "mod_index": 0.0, "band_level": 1.0,
                             "band_width": width, "band_centre": centre})
    pitch, sr = 60, 48000
    with_band = render_note(KeyTable.flat(theta), pitch, 127, sr, 2.0, 0.0).astype(np.float64)
    tone = render_note(KeyTable.flat(theta.replace(band_level=0.0)), pitch, 127, sr, 2.0, 0.0)
    power = np.abs(np.fft.rfft(with_band - tone)) ** 2
    f = np.fft.rfftfreq(len(tone), 1 / sr) / midi_to_hz(pitch)
    lo, hi = max(centre - width / 2, 0.0) - 0.1, centre + width / 2 + 0.1
    assert power[(f >= lo) & (f <= hi)].sum() > 0.9 * power.sum()


@pytest.mark.parametrize("centre, width", [(0.0, 1.0), (3.0, 0.05)])
def test_a_band_that_is_off_is_the_schema_3_sound_exactly(centre, width):
    off = BASE.replace(index_peak=3.0, noise_level=0.1, op3_index=1.0, band_centre=centre, band_width=width)
    plain = BASE.replace(index_peak=3.0, noise_level=0.1, op3_index=1.0)
    a = render_note(KeyTable.flat(off), 64, 90, SR, 0.4, 0.2)
    b = render_note(KeyTable.flat(plain), 64, 90, SR, 0.4, 0.2)
    assert np.array_equal(a, b)


def test_a_block_of_voices_with_and_without_the_band_renders_each_as_alone():
    rows = [BAND, BASE, BAND.replace(band_centre=0.0, band_width=2.0), BAND.replace(op3_index=1.0, op3_layout=1)]
    timbres = np.stack([r.timbre() for r in rows])
    pitch = np.array([48.0, 60.0, 67.0, 72.0])
    vel = np.array([100.0, 80.0, 127.0, 60.0])
    together = render_notes(timbres, pitch, vel, SR, 0.3, 0.1)
    for i in range(len(rows)):
        alone = render_notes(timbres[i : i + 1], pitch[i : i + 1], vel[i : i + 1], SR, 0.3, 0.1)[0]
        assert np.max(np.abs(together[i] - alone)) < 1e-5, i
        assert np.max(np.abs(alone)) > 0.05


def test_turning_the_band_up_live_glides_and_back_down_turns_it_off():
    """A sounding tone gets band_level 1: it comes in over the 10 ms glide, not on the
    next sample (a click on stage); width and centre glide too; turned back down it glides
    out and is then off (0 exactly: the engine skips it again)."""
    theta = BASE.replace(attack_s=0.0, sustain=1.0, mod_index=0.0)
    a, b = two_sounding(theta)
    b.set_param(0, "band_level", 1.0)
    diff = np.abs(b.render(1024)[:, 0] - a.render(1024)[:, 0])
    assert diff[-128:].max() > 0.1  # it did come in
    assert diff[:16].max() < 0.1 * diff[-128:].max()  # but gradually
    b.render(4800)
    vb = b.voices
    assert vb.band_level[0] == pytest.approx(1.0, rel=1e-3)
    b.set_param(0, "band_width", 2.0)
    b.set_param(0, "band_centre", 3.0)
    y = b.render(4800)[:, 0]
    assert vb.band_width[0] == pytest.approx(2.0, rel=1e-3) and vb.band_centre[0] == pytest.approx(3.0, rel=1e-3)
    # No step in the signal while they glide: the largest sample-to-sample change stays
    # that of the sound itself.
    assert np.abs(np.diff(y)).max() < 0.2
    b.set_param(0, "band_level", 0.0)
    b.render(9600)
    assert vb.band_level[0] == 0.0
    a.render(4800 + 4800 + 9600)
    assert np.max(np.abs(b.render(512) - a.render(512))) < 1e-6  # the tone alone again
    with pytest.raises(ValueError, match="band_centre must be in range 0..8"):
        b.set_param(0, "band_centre", 9.0)


def test_a_retrigger_keeps_reading_the_band_where_it_was():
    """A key played again while its note sounds: the band's table read goes on (a jump
    in the low-passed noise would be a step), as the phases do."""
    e = Engine(48000, 4)
    e.set_patch(0, KeyTable.flat(BAND))
    e.note_on(0, 60, 100)
    e.render(2048)
    pos = e.voices.band_pos[0]
    e.note_on(0, 60, 100)
    assert e.voices.n == 1 and e.voices.band_pos[0] == pos


def test_the_fastest_read_of_the_table_is_still_the_formula():
    """The highest key at the widest band and the lowest sample rate reads the table
    fastest (50 entries a sample): still within the kernel's extended table, still the
    formula."""
    theta = BAND.replace(band_width=4.0, band_centre=0.0, mod_index=0.0, noise_level=0.0)
    y = render_note(KeyTable.flat(theta), 127, 100, 8000, hold_s=1.0, tail_s=0.0)
    assert np.max(np.abs(y - formula(theta, 127, 100, len(y), 8000))) < 1e-6
