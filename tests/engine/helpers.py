"""Measurement helpers for engine tests."""

from __future__ import annotations

import numpy as np


def peak_frequency(x: np.ndarray, sample_rate: float, lo: float = 20.0, hi: float | None = None) -> float:
    """Frequency (Hz) of the strongest spectral peak of ``x``, zero-padded and refined by
    parabolic interpolation of the log magnitude (accurate to ~0.01% for a sine)."""
    n = 1 << 22
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    band = (freqs >= lo) & (freqs <= (hi or sample_rate / 2))
    i = int(np.flatnonzero(band)[np.argmax(spec[band])])
    a, b, c = np.log(spec[i - 1 : i + 2] + 1e-30)
    delta = 0.5 * (a - c) / (a - 2 * b + c)
    return float((i + delta) * sample_rate / n)


def cents(f: float, ref: float) -> float:
    return float(1200.0 * np.log2(f / ref))


def envelope_from_sine(y: np.ndarray, freq_hz: float, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Envelope samples of y = env * sin(2 pi f n / sr): (sample indices, env) where |sin| > 0.3."""
    n = np.arange(len(y))
    s = np.sin(2.0 * np.pi * freq_hz * n / sample_rate)
    ok = np.abs(s) > 0.3
    return n[ok], y[ok] / s[ok]
