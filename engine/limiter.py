"""Soft limiter: a block-rate gain rider plus a soft knee that never passes 1.0."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Limiter", "soft_clip"]

#: Level above which the soft knee bends the signal towards 1.0.
KNEE = 0.9
#: Peak the gain rider aims for.
CEILING = 0.95


def soft_clip(x: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """In place: identity below ``knee``, a tanh curve to +-1 above it (slope 1 at the knee)."""
    mag = np.abs(x)
    over = mag > knee
    if over.any():
        width = 1.0 - knee
        bent = knee + width * np.tanh((mag[over] - knee) / width)
        x[over] = np.copysign(bent, x[over])
        # Rounding must not let tanh's asymptote reach 1.0 itself.
        np.clip(x, -1.0, 1.0, out=x)
    return x


class Limiter:
    """Rides the gain down when a block's peak would pass CEILING (instantly) and back up
    slowly (release_s), ramping within each block; the soft knee catches what is left.
    """

    def __init__(self, sample_rate: float, release_s: float = 0.2) -> None:
        self.sample_rate = float(sample_rate)
        self.release_s = float(release_s)
        self.gain = 1.0
        self.nonfinite_blocks = 0
        self._ramp = np.zeros(0, dtype=np.float32)
        self._steps = np.zeros(0, dtype=np.float32)

    def process(self, out: np.ndarray) -> None:
        """Limit ``out`` [frames, channels] float32 in place."""
        frames = out.shape[0]
        if frames == 0:
            return
        peak = float(np.max(np.abs(out)))
        if not math.isfinite(peak):
            # Never pass NaN or inf on to the speakers.
            out.fill(0.0)
            self.nonfinite_blocks += 1
            return
        need = CEILING / peak if peak * self.gain > CEILING else 1.0
        if need < self.gain:
            new = need
        else:
            alpha = 1.0 - math.exp(-frames / (self.release_s * self.sample_rate))
            new = self.gain + (min(need, 1.0) - self.gain) * alpha
        if new != 1.0 or self.gain != 1.0:
            if self._ramp.shape[0] < frames:
                self._ramp = np.empty(frames, dtype=np.float32)
                self._steps = np.arange(1, frames + 1, dtype=np.float32)
            ramp = self._ramp[:frames]
            # Ramp from the old gain to the new one across the block: no step.
            np.multiply(self._steps[:frames], (new - self.gain) / frames, out=ramp)
            ramp += self.gain
            out *= ramp[:, None]
            if new > 0.9999:
                new = 1.0
        old_gain = self.gain
        self.gain = new
        # The knee only bends samples above KNEE: skip it when the block stays below.
        if peak * max(old_gain, new) > KNEE:
            soft_clip(out)
