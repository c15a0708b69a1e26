"""The send effects: a stereo reverb, a chorus and a delay on three send buses.

Each MIDI channel sends its voices (after volume and pan) to each bus at its own level
(CC 91 reverb, CC 93 chorus, CC 94 delay, or ``EventSender.set_send``); the voice
kernel sums them into the buses (:mod:`engine.kernel`), and :class:`Effects` runs each
bus through its plugin, JUCE's ``Reverb``, ``Chorus`` and ``Delay`` from pedalboard,
called block by block with ``reset=False`` so that each keeps its state (its tail) from
block to block, and adds the wet return to the engine's output before the master gain
and the limiter. The global settings are declared once, in :data:`EFFECT_SETTINGS`:
name, unit, range, default, what they set; the command line, OSC and ``/status`` read
that table.

Costs: a bus that nothing sends to and whose tail has rung out is not processed at all
(no call into the plugin); with no send anywhere the voices skip the buses too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.voice_layout import MAX_CHUNK

__all__ = [
    "BUSES",
    "EFFECT_SETTINGS",
    "EFFECT_INDEX",
    "EffectSetting",
    "Effects",
    "N_BUSES",
    "SendBuses",
    "SEND_CC",
    "effect_setting",
    "send_bus",
]

#: The send buses, in bus order.
BUSES = ("reverb", "chorus", "delay")
N_BUSES = len(BUSES)
#: The controller that sets each bus's send (General MIDI's 91 and 93; 94 for the delay).
SEND_CC = {91: 0, 93: 1, 94: 2}
#: Seconds a stop (panic, all sound off, System Reset) fades the returns over.
STOP_FADE_S = 0.005
#: A return below this (about -100 dB) counts as silent.
QUIET = 1e-5
#: How long a bus that nothing sends to must stay silent before it is skipped: longer
#: than any delay inside the reverb (Freeverb's combs: under 40 ms) or the chorus (its
#: centre delay plus depth), plus the delay's own time for the delay.
QUIET_HOLD_S = 0.2


@dataclass(frozen=True)
class EffectSetting:
    """One global effect setting: its bus, its name there, unit, range and default."""

    bus: str
    key: str
    unit: str
    minimum: float
    maximum: float
    default: float
    doc: str

    @property
    def name(self) -> str:
        """``reverb_room``: the setting's one name (``--reverb-room``, ``/fx/reverb/room``)."""
        return f"{self.bus}_{self.key}"

    @property
    def address(self) -> str:
        return f"/fx/{self.bus}/{self.key}"

    @property
    def flag(self) -> str:
        return f"--{self.bus}-{self.key.replace('_', '-')}"

    def check(self, value: object) -> float:
        """``value`` as a float, or an error naming the setting, its range and the value."""
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{self.name} must be a number, got {type(value).__name__}")
        if not self.minimum <= value <= self.maximum:  # NaN too
            raise ValueError(f"{self.name} must be in range {self.minimum:g}..{self.maximum:g}, got {value}")
        return float(value)


EFFECT_SETTINGS: tuple[EffectSetting, ...] = (
    EffectSetting("reverb", "room", "", 0.0, 1.0, 0.5, "room size (longer tail)"),
    EffectSetting("reverb", "damping", "", 0.0, 1.0, 0.5, "high-frequency damping of the tail"),
    EffectSetting("reverb", "width", "", 0.0, 1.0, 1.0, "stereo width of the tail"),
    EffectSetting("reverb", "level", "", 0.0, 1.0, 0.33, "the reverb's return (JUCE's wet level)"),
    EffectSetting("chorus", "rate", "Hz", 0.0, 20.0, 1.0, "the chorus's LFO rate"),
    EffectSetting("chorus", "depth", "", 0.0, 1.0, 0.25, "the chorus's modulation depth"),
    EffectSetting("chorus", "delay_ms", "ms", 1.0, 50.0, 7.0, "the chorus's centre delay"),
    EffectSetting("chorus", "feedback", "", 0.0, 0.95, 0.0, "the chorus's feedback"),
    EffectSetting("chorus", "level", "", 0.0, 1.0, 0.5, "the chorus's return"),
    EffectSetting("delay", "time", "s", 0.001, 2.0, 0.35, "the delay's time between echoes"),
    EffectSetting("delay", "feedback", "", 0.0, 0.95, 0.35, "each echo's level from the one before"),
    EffectSetting("delay", "level", "", 0.0, 1.0, 0.5, "the delay's return"),
)
EFFECT_INDEX = {s.name: i for i, s in enumerate(EFFECT_SETTINGS)}
# What each setting sets on its plugin (None: the return's gain, applied here).
_PLUGIN_ATTR = (
    "room_size", "damping", "width", "wet_level",
    "rate_hz", "depth", "centre_delay_ms", "feedback", None,
    "delay_seconds", "feedback", None,
)
_BUS_OF = tuple(BUSES.index(s.bus) for s in EFFECT_SETTINGS)
_LEVEL_INDEX = tuple(EFFECT_INDEX[f"{b}_level"] for b in BUSES)


def effect_setting(name: str) -> EffectSetting:
    """The setting called ``name`` (``reverb_room``), or an error listing them all."""
    i = EFFECT_INDEX.get(name) if isinstance(name, str) else None
    if i is None:
        raise ValueError(f"unknown effect setting {name!r}; settings: {', '.join(EFFECT_INDEX)}")
    return EFFECT_SETTINGS[i]


def send_bus(effect: object) -> int:
    """The bus of ``effect`` (``reverb``, ``chorus`` or ``delay``), or an error naming them."""
    if not isinstance(effect, str) or effect not in BUSES:
        raise ValueError(f"effect must be one of {', '.join(BUSES)}, got {effect!r}")
    return BUSES.index(effect)


class SendBuses:
    """The send buses' arrays the kernel writes (``engine.effects``): preallocated,
    one set per engine.

    Args:
        n_buses: buses (0: none, the kernel skips them).
        n_channels: channels with a send level each.
        frames: the longest block the buses hold (``grow`` makes room for longer).
    """

    def __init__(self, n_buses: int, n_channels: int, frames: int) -> None:
        #: [now, target] x bus x channel: each channel's send level (0..1), gliding.
        self.send = np.zeros((2, n_buses, n_channels), dtype=np.float64)
        self.mix = np.zeros((2 * n_buses, MAX_CHUNK), dtype=np.float64)
        self.bus = np.zeros((n_buses, 2, frames), dtype=np.float32)
        #: Per bus: nonzero where a voice sent to it since ``clear``.
        self.fed = np.zeros(n_buses, dtype=np.float64)

    def grow(self, frames: int) -> None:
        if frames > self.bus.shape[2]:
            self.bus = np.zeros((self.bus.shape[0], 2, frames), dtype=np.float32)

    def clear(self, frames: int) -> None:
        """Empty the first ``frames`` frames of each bus and the ``fed`` flags."""
        self.bus[:, :, :frames] = 0.0
        self.fed[:] = 0.0

    @property
    def sending(self) -> bool:
        """Whether some channel sends (or glides) to some bus."""
        return bool(self.send.any())


class Effects:
    """The three send effects of one engine (render thread only).

    Args:
        sample_rate: Hz.
    """

    def __init__(self, sample_rate: int) -> None:
        # Imported here, not with the engine: a process that never makes an Engine
        # (training's note renders) does not pay for JUCE.
        from pedalboard import Chorus, Delay, Reverb

        self.sample_rate = int(sample_rate)
        self.values = np.array([s.default for s in EFFECT_SETTINGS], dtype=np.float64)
        self.plugins = (
            Reverb(dry_level=0.0, freeze_mode=0.0),
            Chorus(mix=1.0),
            Delay(mix=1.0),
        )
        for i in range(len(EFFECT_SETTINGS)):
            self._apply(i)
        #: Whether each bus is processed (it has input, or its tail still rings).
        self.running = np.zeros(N_BUSES, dtype=bool)
        self._quiet = np.zeros(N_BUSES, dtype=np.int64)  # frames its return has been silent
        # Each return's gain as of the last block.
        self._gain = self.values[list(_LEVEL_INDEX)].copy()
        self._gain[0] = 1.0  # the reverb's level is its plugin's wet level (JUCE smooths it)
        self._fade = 0  # frames of a stop's fade left (0: none)
        self._fade_len = max(1, int(round(STOP_FADE_S * self.sample_rate)))
        self._block = 0
        self._ramp = np.zeros(0)
        self._silence = np.zeros((2, 0), dtype=np.float32)
        # Warm up: JUCE prepares (allocates its delay lines) on the first call; that call
        # belongs here, not on the render thread's first note with a send.
        self._ensure(512)
        for p in self.plugins:
            p.process(self._silence[:, :512], self.sample_rate, buffer_size=512, reset=False)
            p.reset()

    @property
    def active(self) -> bool:
        """Whether some bus still runs (a tail rings, or a stop's fade is under way)."""
        return bool(self.running.any()) or self._fade > 0

    def set(self, index: int, value: float) -> None:
        """Setting ``index`` (``EFFECT_SETTINGS`` order) to ``value`` (checked by the sender),
        from the next block on."""
        self.values[index] = value
        self._apply(index)

    def _apply(self, index: int) -> None:
        attr = _PLUGIN_ATTR[index]
        if attr is not None:
            setattr(self.plugins[_BUS_OF[index]], attr, float(self.values[index]))

    def stop(self) -> None:
        """Silence every tail: the returns fade out over ``STOP_FADE_S``, then each
        plugin's state is cleared."""
        if self.running.any():
            self._fade = self._fade_len

    def _ensure(self, frames: int) -> None:
        if frames > self._block:
            # Once per larger block size (a live host's is fixed): not per block.
            self._block = max(frames, 512)
            self._ramp = np.zeros(self._block)
            self._silence = np.zeros((2, self._block), dtype=np.float32)

    def process(self, out: np.ndarray, bus: np.ndarray | None, fed: np.ndarray) -> None:
        """Run the buses and add their returns into ``out``.

        Args:
            out: ``[frames, 2]`` float32, the voices' mix; the returns are added to it.
            bus: ``[N_BUSES, 2, >= frames]`` float32, what the voices sent this block
                (None: nothing was sent).
            fed: ``[N_BUSES]``, nonzero where a voice sent something to that bus.
        """
        frames = out.shape[0]
        self._ensure(frames)
        sr = self.sample_rate
        fading = self._fade > 0
        for b in range(N_BUSES):
            has_input = bus is not None and fed[b] != 0.0
            if not (has_input or self.running[b]):
                continue
            src = bus[b, :, :frames] if has_input else self._silence[:, :frames]
            wet = self.plugins[b].process(src, sr, buffer_size=self._block, reset=False)
            peak = float(np.abs(wet).max())
            if not math.isfinite(peak):
                # Never pass a broken tail on: clear it (the limiter guards the rest).
                self.plugins[b].reset()
                self.running[b] = False
                continue
            self.running[b] = True
            if has_input or peak > QUIET:
                self._quiet[b] = 0
            else:
                self._quiet[b] += frames
            self._add(out, wet, b, frames, fading)
            hold = QUIET_HOLD_S + (self.values[EFFECT_INDEX["delay_time"]] if b == 2 else 0.0)
            if not has_input and self._quiet[b] >= hold * sr:
                self.running[b] = False  # rung out: skipped until something is sent again
                self._quiet[b] = 0
        if fading:
            self._fade = max(0, self._fade - frames)
            if self._fade == 0:
                for p in self.plugins:
                    p.reset()
                self.running[:] = False
                self._quiet[:] = 0

    def _add(self, out: np.ndarray, wet: np.ndarray, b: int, frames: int, fading: bool) -> None:
        """``out += wet.T`` times the return's gain, which glides over the block when it
        changed, times a stop's fade."""
        g0 = self._gain[b]
        g1 = 1.0 if b == 0 else self.values[_LEVEL_INDEX[b]]
        self._gain[b] = g1
        if g0 == g1 and not fading:
            if g1 != 1.0:
                wet *= np.float32(g1)  # the plugin's new array: ours to scale
            out += wet.T
            return
        ramp = self._ramp[:frames]
        ramp[:] = np.arange(frames)
        ramp *= (g1 - g0) / frames
        ramp += g0
        if fading:
            # From the fade's current gain towards 0, a straight line over what is left.
            n = self._fade_len
            f0 = self._fade / n
            ramp *= np.clip(f0 - np.arange(frames) / n, 0.0, 1.0)
        wet *= ramp.astype(np.float32)
        out += wet.T
