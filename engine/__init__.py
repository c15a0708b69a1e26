"""promptsynth's voice engine: theta schema, FM/ADSR voices, event queue, audio output."""

from engine.engine import CC, N_CHANNELS, Engine
from engine.events import QueueFull
from engine.keytable import KEY_ANCHORS, VELOCITY_LAYERS, KeyTable
from engine.limiter import Limiter, soft_clip
from engine.output import AudioError, AudioOutput, Recorder, list_devices
from engine.render import render_midi_file, render_note, render_notes, write_wav
from engine.schema import (
    PARAM_NAMES,
    PARAMS,
    RATIO_GRID,
    SCHEMA_VERSION,
    TIMBRE_INDEX,
    TIMBRE_NAMES,
    Param,
    Theta,
    ThetaError,
    check_value,
    clamp_array,
    from_learning,
    learning_transforms,
    param,
    snap_ratio,
    to_learning,
    upgrade_theta_dict,
)
from engine.voices import (
    FADE_S,
    NOISE_TABLE_SIZE,
    VoiceBank,
    midi_to_hz,
    noise_start,
    velocity_to_amp,
)

__all__ = [
    "learning_transforms",
    "RATIO_GRID",
    "snap_ratio",
    "CC",
    "N_CHANNELS",
    "Engine",
    "QueueFull",
    "KEY_ANCHORS",
    "VELOCITY_LAYERS",
    "KeyTable",
    "Limiter",
    "soft_clip",
    "AudioError",
    "AudioOutput",
    "Recorder",
    "list_devices",
    "render_midi_file",
    "render_note",
    "render_notes",
    "write_wav",
    "FADE_S",
    "NOISE_TABLE_SIZE",
    "noise_start",
    "VoiceBank",
    "midi_to_hz",
    "velocity_to_amp",
    "PARAM_NAMES",
    "PARAMS",
    "SCHEMA_VERSION",
    "TIMBRE_INDEX",
    "TIMBRE_NAMES",
    "Param",
    "Theta",
    "ThetaError",
    "check_value",
    "clamp_array",
    "from_learning",
    "param",
    "to_learning",
    "upgrade_theta_dict",
]
