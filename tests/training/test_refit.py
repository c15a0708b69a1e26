"""The refit of schema 5's spectra: a measured start, then the gradient fit."""

from __future__ import annotations

import numpy as np
import pytest

from engine import TIMBRE_INDEX, Theta, render_notes
from engine.schema import HELD_NAMES, ONSET_NAMES
from training.notes import HOLD_S, SAMPLE_RATE, TAIL_S
from training.refit import FIT_FFT_SIZES, FREE_SETS, MEASURED, measured_start
from training.spectral import spectral_distance
from training.torchsynth import fit_batch


def _truth() -> np.ndarray:
    """Two notes with spectra: a bright one that darkens (a pluck, dB-shaped decay) and
    a hollow odd-harmonic one with a brighter onset."""
    k = np.arange(1, len(HELD_NAMES) + 1)
    pluck = dict(attack_s=0.005, decay_s=1.5, sustain=0.0, release_s=0.3, mod_ratio=1.0, mod_index=0.0,
                 darken_db=12.0, darken_s=0.8, env_curve=1.0)
    pluck.update({n: float(max(-6.0 * np.log2(h), -80.0)) for n, h in zip(HELD_NAMES, k)})
    pluck.update({n: pluck[m] for n, m in zip(ONSET_NAMES, HELD_NAMES)})
    reed = dict(attack_s=0.05, decay_s=0.2, sustain=0.8, release_s=0.2, mod_ratio=1.0, mod_index=0.0, onset_s=0.15)
    reed.update({n: float(max(-3.0 * h, -80.0) if h % 2 else -80.0) for n, h in zip(HELD_NAMES, k)})
    reed.update({n: float(max(-1.5 * h, -80.0)) for n, h in zip(ONSET_NAMES, k)})  # fmt: skip
    return np.stack([Theta.from_dict(r).timbre() for r in (pluck, reed)])


def _sine_start(truth: np.ndarray) -> np.ndarray:
    """The label before schema 5: the same envelope, a sine carrier, a linear decay."""
    default = Theta.from_dict({}).timbre()
    start = truth.copy()
    for name in (*MEASURED, "env_curve"):
        start[:, TIMBRE_INDEX[name]] = default[TIMBRE_INDEX[name]]
    return start


def _oracle(truth: np.ndarray, pitch: np.ndarray, error_db: float):
    """A stand-in for training.profiles.measured_timbre: the true spectra, each level
    off by up to ``error_db`` (a measurement's error), the times doubled."""
    rng = np.random.default_rng(0)

    def measure(y: np.ndarray, p: float, sample_rate: int) -> dict[str, float]:
        assert y.ndim == 1 and sample_rate == SAMPLE_RATE
        row = truth[int(np.flatnonzero(pitch == p)[0])]
        out = {n: float(row[TIMBRE_INDEX[n]]) for n in MEASURED}
        for n in (*ONSET_NAMES, *HELD_NAMES):
            if out[n] > -80.0:
                out[n] = min(out[n] + rng.uniform(-error_db, error_db), 0.0)
        out["onset_s"] *= 2.0
        out["darken_s"] *= 2.0
        out["darken_db"] *= 0.5
        return out

    return measure


def test_the_measured_spectra_start_where_they_render_nearer_and_the_fit_improves_them():
    truth = _truth()
    pitch, vel = np.array([45.0, 62.0]), np.array([100.0, 100.0])
    y = render_notes(truth, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S)
    start = _sine_start(truth)
    got = measured_start(y, pitch, vel, start, _oracle(truth, pitch, 6.0))
    for name in ("held_h2", "onset_h3", "darken_db"):
        assert not np.array_equal(got[:, TIMBRE_INDEX[name]], start[:, TIMBRE_INDEX[name]]), name
    assert got[0, TIMBRE_INDEX["env_curve"]] > 0.0  # the pluck's dB decay, from the grid

    def dist(t):
        return spectral_distance(y, render_notes(t, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S))

    d_start, d_measured = dist(start), dist(got)
    assert (d_measured < 0.8 * d_start).all(), (d_start, d_measured)
    res = fit_batch(y, pitch, vel, got, free=FREE_SETS["v5"], steps=25, lr=0.08, fft_sizes=FIT_FFT_SIZES)
    d_fit = dist(res.timbre)
    assert (d_fit < d_measured).all(), (d_measured, d_fit)
    # The levels moved towards the truth (the measurement was off by up to 6 dB).
    held = [TIMBRE_INDEX[n] for n in HELD_NAMES[:8]]
    err_before = np.abs(got[:, held] - truth[:, held])[truth[:, held] > -80].mean()
    err_after = np.abs(res.timbre[:, held] - truth[:, held])[truth[:, held] > -80].mean()
    assert err_after < err_before, (err_before, err_after)


def test_a_start_nearer_than_the_measurement_is_kept_and_bad_measurements_are_refused():
    truth = _truth()
    pitch, vel = np.array([45.0, 62.0]), np.array([100.0, 100.0])
    y = render_notes(truth, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S)
    # A measurement 40 dB off everywhere is further than the truth itself: kept as is.
    got = measured_start(y, pitch, vel, truth, _oracle(truth, pitch, 40.0))
    spectra = [TIMBRE_INDEX[n] for n in (*ONSET_NAMES, *HELD_NAMES)]
    assert np.array_equal(got[:, spectra], truth[:, spectra])

    def nan(y, p, sr):
        return dict.fromkeys(MEASURED, float("nan"))

    with pytest.raises(ValueError, match="gave onset_h1 = nan"):
        measured_start(y, pitch, vel, truth, nan)
    with pytest.raises(ValueError, match="lacks"):
        measured_start(y, pitch, vel, truth, lambda y, p, sr: {"onset_s": 0.1})


def test_refit_records_fits_the_spectra_of_real_files_and_is_never_worse(tmp_path):
    """The whole refit (files read, measured start, fit, the engine's verdict) on two
    notes whose labels have a sine carrier: the labels come back with spectra, nearer."""
    import soundfile as sf

    from engine import TIMBRE_NAMES
    from training.refit import refit_records

    truth = _truth()
    pitch, vel = np.array([45.0, 62.0]), np.array([100.0, 100.0])
    y = render_notes(truth, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S)
    start = _sine_start(truth)
    records = []
    for i in range(2):
        path = tmp_path / f"note{i}.wav"
        sf.write(path, y[i], SAMPLE_RATE, subtype="FLOAT")
        records.append(dict(audio_path=str(path), pitch=pitch[i], velocity=vel[i],
                            theta={n: float(v) for n, v in zip(TIMBRE_NAMES, start[i])}))  # fmt: skip
    timbres, after, before = refit_records(
        records, FREE_SETS["v2+spectra"], steps=5, measure=_oracle(truth, pitch, 3.0)
    )
    assert (after < 0.8 * before).all(), (before, after)
    assert (timbres[:, TIMBRE_INDEX["held_h3"]] != start[:, TIMBRE_INDEX["held_h3"]]).all()
    np.testing.assert_allclose(
        after, spectral_distance(y, render_notes(timbres, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S)), rtol=1e-6
    )


def test_the_profiles_measurement_gives_a_nearer_start():
    """With the real measurement (training.profiles.measured_timbre, the refit's
    default), the start of notes made with spectra renders nearer than their sine
    labels."""
    from training.profiles import measured_timbre

    truth = _truth()
    pitch, vel = np.array([45.0, 62.0]), np.array([100.0, 100.0])
    y = render_notes(truth, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S)
    start = _sine_start(truth)
    got = measured_start(y, pitch, vel, start, measured_timbre)
    d_start = spectral_distance(y, render_notes(start, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S))
    d_got = spectral_distance(y, render_notes(got, pitch, vel, SAMPLE_RATE, HOLD_S, TAIL_S))
    assert (d_got < 0.8 * d_start).all(), (d_start, d_got)
