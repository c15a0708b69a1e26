"""The audio device side of the output: PortAudio and rtmixer loaded with a clear error,
the devices listed, the block size and render-ahead checked, PortAudio's JACK client
named."""

from __future__ import annotations

import math

__all__ = ["AudioError", "LATENCY_PRESETS", "check_blocksize", "list_devices", "parse_latency"]

#: Render-ahead presets, in blocks: ``low`` sounds /note 10.7 ms after it arrives at 128
#: frames and 48 kHz with JACK's own latency (2 + 1 blocks + 2.7 ms); ``high`` trades 5
#: more ms for a margin of 4 blocks. ``low`` was 1.5 blocks (4.0 ms of margin) until
#: 2026-12-07: on the 2-core development machine the render process then missed a block
#: in 3 of 8 full test runs, after its thread was held off the CPU for 4-15 ms
#: (docs/engine.md, "Real time").
LATENCY_PRESETS = {"low": 2.0, "high": 4.0}

class AudioError(RuntimeError):
    """The audio device could not be opened, or stopped working."""


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise AudioError(f"cannot load PortAudio ({exc}); install libportaudio2") from exc
    return sd


def _rtmixer():
    _sd()
    try:
        import rtmixer
    except ImportError as exc:
        raise AudioError(f"cannot load rtmixer ({exc}); pip install rtmixer") from exc
    return rtmixer


def list_devices() -> list[dict]:
    """Output devices PortAudio sees: index, name, host API, channels, default rate."""
    sd = _sd()
    apis = sd.query_hostapis()
    result = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_output_channels"] > 0:
            result.append({
                "index": i,
                "name": d["name"],
                "hostapi": apis[d["hostapi"]]["name"],
                "channels": d["max_output_channels"],
                "default_samplerate": d["default_samplerate"],
            })
    return result


def check_blocksize(blocksize: object) -> int:
    """Frames per block: an int in 16..8192, or ValueError saying so."""
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or not 16 <= blocksize <= 8192:
        raise ValueError(f"blocksize must be an int in range 16..8192, got {blocksize!r}")
    return blocksize


def parse_latency(value: float | str, blocksize: int, sample_rate: int) -> float:
    """Render-ahead in seconds from ``low``, ``high`` or seconds (half a block .. 0.5 s).

    Raises ValueError naming what is accepted."""
    period = blocksize / sample_rate
    if isinstance(value, str) and value in LATENCY_PRESETS:
        return LATENCY_PRESETS[value] * period
    try:
        s = float(value)
    except (TypeError, ValueError):
        s = math.nan
    if isinstance(value, bool) or not (0.5 * period <= s <= 0.5):
        raise ValueError(
            f"latency must be 'low', 'high' or seconds of render-ahead in range "
            f"{0.5 * period:.4f}..0.5 (half a block at least), got {value!r}"
        )
    return s


def _set_jack_client_name(sd, name: str) -> None:
    """Name PortAudio's JACK client (PaJack_SetClientName), which takes effect when
    PortAudio initialises: so restart it. Without PortAudio's JACK support, nothing."""
    import ctypes

    try:
        set_name = ctypes.CDLL(sd._libname).PaJack_SetClientName
    except (OSError, AttributeError):
        return
    # PortAudio keeps the pointer: the bytes must outlive the stream.
    global _JACK_NAME
    _JACK_NAME = name.encode()
    set_name(ctypes.c_char_p(_JACK_NAME))
    sd._terminate()
    sd._initialize()


_JACK_NAME = b""
