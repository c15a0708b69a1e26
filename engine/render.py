"""Offline rendering with the live engine's own voices: one note, a batch, a MIDI file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from engine.engine import N_CHANNELS, Engine
from engine.keytable import KeyTable
from engine.schema import TIMBRE_NAMES
from engine.voices import VoiceBank, midi_to_hz, velocity_to_amp

__all__ = ["render_note", "render_notes", "render_midi_file", "write_wav"]


def render_notes(
    timbres: np.ndarray,
    pitch: float | np.ndarray,
    velocity: float | np.ndarray,
    sample_rate: int = 16000,
    hold_s: float = 3.0,
    tail_s: float = 1.0,
) -> np.ndarray:
    """Render a batch of single notes, one voice each, with the engine's VoiceBank.

    Args:
        timbres: [batch, n_timbre] timbre values in schema order (physical units; schema
            v2: 10 values, ``TIMBRE_NAMES``).
        pitch: MIDI note, scalar or [batch] (fractional allowed).
        velocity: 1..127, scalar or [batch].
        sample_rate: Hz.
        hold_s: seconds from note-on to note-off.
        tail_s: seconds rendered after the note-off.

    Returns:
        [batch, round((hold_s + tail_s) * sample_rate)] float32, mono, not normalised.
    """
    t = np.atleast_2d(np.asarray(timbres, dtype=np.float64))
    b = t.shape[0]
    if t.shape[1] != len(TIMBRE_NAMES):
        raise ValueError(f"timbres must have shape [batch, {len(TIMBRE_NAMES)}], got {t.shape}")
    pitch = np.broadcast_to(np.asarray(pitch, dtype=np.float64), (b,))
    velocity = np.broadcast_to(np.asarray(velocity, dtype=np.float64), (b,))
    hold = int(round(hold_s * sample_rate))
    total = hold + int(round(tail_s * sample_rate))
    vb = VoiceBank(b, sample_rate)
    for _ in range(b):
        vb.add()
    vb.start(slice(None), t, pitch, velocity_to_amp(velocity), 2.0 * np.pi * midi_to_hz(pitch) / sample_rate)
    out = np.empty((b, total), dtype=np.float32)
    out[:, :hold] = vb.render_voices(hold)
    vb.start_release(np.arange(b))
    out[:, hold:] = vb.render_voices(total - hold)
    return out


def render_note(
    patch: KeyTable,
    pitch: float,
    velocity: float,
    sample_rate: int = 16000,
    hold_s: float = 3.0,
    tail_s: float = 1.0,
) -> np.ndarray:
    """One NSynth-style note of ``patch``: held ``hold_s``, then ``tail_s`` of release.

    The note takes the patch's timbre at the nearest key and velocity (``lookup``); pitch,
    velocity, sample rate and length are the render's, not the patch's.
    Returns a 1-D float32 array of round((hold_s + tail_s) * sample_rate) samples.
    """
    if not isinstance(patch, KeyTable):
        raise TypeError(f"patch must be a KeyTable (KeyTable.flat(values) for one timbre), got {type(patch).__name__}")
    key = min(max(int(round(pitch)), 0), 127)
    timbre = patch.lookup(key, min(max(int(round(velocity)), 1), 127))
    return render_notes(timbre[None, :], pitch, velocity, sample_rate, hold_s, tail_s)[0]


def render_midi_file(
    path: str | os.PathLike,
    patches: KeyTable | Mapping[int, KeyTable],
    sample_rate: int = 48000,
    max_voices: int = 64,
    tail_s: float = 2.0,
    block: int = 256,
    program_patches: Sequence[KeyTable | None] | None = None,
    effects: Mapping[str, float] | None = None,
    sends: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Bounce a standard MIDI file through the engine, offline.

    Args:
        path: .mid file.
        patches: one patch for every channel, or {channel 0-15: patch}.
        program_patches: optional 128 entries; a program change selects entry N if set.
        tail_s: seconds rendered after the last event, for releases (and the effects'
            tails) to ring out.
        effects: global effect settings by name (``engine.effects.EFFECT_SETTINGS``:
            ``{"reverb_room": 0.8}``).
        sends: every channel's starting send level by effect (``{"reverb": 0.3}``); the
            file's CC 91, 93 and 94 change them.

    Returns:
        [frames, 2] float32 stereo.
    """
    import mido

    try:
        mid = mido.MidiFile(os.fspath(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"cannot read MIDI file {os.fspath(path)!r}: {exc}") from exc
    eng = Engine(sample_rate=sample_rate, max_voices=max_voices)
    if isinstance(patches, KeyTable):
        patches = {ch: patches for ch in range(N_CHANNELS)}
    for ch, patch in patches.items():
        eng.set_patch(ch, patch, frame=0)
    for name, value in (effects or {}).items():
        eng.set_effect(name, value, frame=0)
    for effect, level in (sends or {}).items():
        for ch in range(N_CHANNELS):
            eng.set_send(ch, effect, level, frame=0)
    chunks = []
    now = 0.0
    for msg in mid:  # yields messages with delta time in seconds, tempo applied
        now += msg.time
        frame = int(round(now * sample_rate))
        while eng.frame + block <= frame:
            chunks.append(eng.render(block))
        _send(eng, msg, frame, program_patches)
    end = int(round((now + tail_s) * sample_rate))
    while eng.frame < end:
        chunks.append(eng.render(min(block, end - eng.frame)))
    return np.concatenate(chunks) if chunks else np.zeros((0, 2), dtype=np.float32)


def _send(eng: Engine, msg, frame: int, program_patches) -> None:
    t = msg.type
    if t == "note_on":
        eng.note_on(msg.channel, msg.note, msg.velocity, frame)
    elif t == "note_off":
        eng.note_off(msg.channel, msg.note, frame)
    elif t == "control_change":
        eng.control_change(msg.channel, msg.control, msg.value, frame)
    elif t == "pitchwheel":
        eng.pitch_bend(msg.channel, msg.pitch, frame)
    elif t == "program_change" and program_patches is not None:
        patch = program_patches[msg.program]
        if patch is not None:
            eng.set_patch(msg.channel, patch, frame)


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write float32 audio ([frames] or [frames, channels]) as a 32-bit float WAV."""
    import soundfile as sf

    sf.write(os.fspath(path), np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="FLOAT")
