"""The note record every dataset yields, and audio loading."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["Note", "load_audio", "NOTE_SAMPLES", "SAMPLE_RATE", "HOLD_S", "TAIL_S"]

SAMPLE_RATE = 16000
HOLD_S = 3.0
TAIL_S = 1.0
NOTE_SAMPLES = int((HOLD_S + TAIL_S) * SAMPLE_RATE)


@dataclass
class Note:
    """One recorded or rendered note and its metadata.

    ``instrument`` identifies the instrument for splitting (NSynth ``instrument_str``,
    ``gm_<program>`` for SoundFont notes); ``family`` is one of NSynth's ten families where
    one fits (GM programs with no such family get their GM class, e.g. ``"synth pad"``);
    ``name`` is the instrument's own name in words ("nylon string guitar"); ``aliases``
    other names it goes by (a SoundFont preset's General MIDI program name).
    """

    note_id: str
    audio_path: str
    pitch: int
    velocity: int
    instrument: str
    family: str
    source: str
    name: str
    dataset: str
    qualities: list[str] = field(default_factory=list)
    sample_rate: int = SAMPLE_RATE
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Note:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def load_audio(
    path: str | os.PathLike, n_samples: int = NOTE_SAMPLES, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Mono float32 audio of ``path`` (WAV or FLAC), cut or zero-padded to ``n_samples``."""
    import soundfile as sf

    y, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    if sr != sample_rate:
        raise ValueError(f"{os.fspath(path)}: sample rate must be {sample_rate} Hz, got {sr}")
    y = y.mean(axis=1)
    if y.shape[0] >= n_samples:
        return np.ascontiguousarray(y[:n_samples])
    return np.pad(y, (0, n_samples - y.shape[0]))
