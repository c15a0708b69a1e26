"""The send effects' events (``engine.effects``): per-channel send levels and the global
settings, checked and queued like every other event (:class:`engine.sender.EventSender`
inherits them), and remembered on the sending side, so that a host can say what it set
(``/status``) without asking the render process.
"""

from __future__ import annotations

import numpy as np

from engine.checks import _check_float, _check_frame, _check_int
from engine.effects import (
    BUSES,
    EFFECT_INDEX,
    EFFECT_SETTINGS,
    N_BUSES,
    SEND_CC,
    effect_setting,
    send_bus,
)
from engine.events import EventQueue

__all__ = ["EffectEvents", "SEND", "FX"]

#: Event kinds, after :mod:`engine.sender`'s: a channel's send level (bus, level) and a
#: global setting (index in ``EFFECT_SETTINGS``, value).
SEND, FX = 24, 25
_N_CHANNELS = 16


class EffectEvents:
    """The event methods of the send effects; a subclass provides ``self.queue``."""

    queue: EventQueue

    def set_send(self, channel: int, effect: str, level: float, frame: int | None = None) -> None:
        """Send ``channel``'s notes (after volume and pan) to ``effect`` (``reverb``,
        ``chorus`` or ``delay``) at ``level`` 0..1 (0: dry), from ``frame`` on, sounding
        notes included; as CC 91, 93 and 94 (``level`` = value / 127)."""
        ch = _check_int("channel", channel, 0, 15)
        b = send_bus(effect)
        v = _check_float("level", level, 0.0, 1.0)
        self.queue.push(SEND, ch, _check_frame(frame), (float(b), v))
        self._sent_sends()[b, ch] = v

    def set_effect(self, name: str, value: float, frame: int | None = None) -> None:
        """Set the global effect setting ``name`` (``engine.effects.EFFECT_SETTINGS``,
        e.g. ``reverb_room``) to ``value``, from the block of ``frame`` on."""
        s = effect_setting(name)
        v = s.check(value)
        self.queue.push(FX, 0, _check_frame(frame), (float(EFFECT_INDEX[s.name]), v))
        self._sent_effects()[EFFECT_INDEX[s.name]] = v

    def effect_settings(self) -> dict[str, float]:
        """The global effect settings as last sent (the defaults where none was)."""
        return {s.name: float(v) for s, v in zip(EFFECT_SETTINGS, self._sent_effects().tolist())}

    def sends(self) -> dict[str, list[float]]:
        """Each channel's send level per effect as last sent (CC 91/93/94 included)."""
        return {name: [float(x) for x in row] for name, row in zip(BUSES, self._sent_sends().tolist())}

    def remember_control(self, channel: int, control: int, value: int) -> None:
        """A controller that reached the engine another way (the render process queued it
        from JACK MIDI): what :meth:`sends` reports follows it, nothing is queued."""
        self._note_send_cc(channel, control, value)

    def remember_reset(self, channels: list[int]) -> None:
        """A System Reset of ``channels`` that reached the engine another way: their sends
        are 0 again in :meth:`sends`, nothing is queued."""
        self._note_reset(list(channels))

    def _note_send_cc(self, channel: int, control: int, value: int) -> None:
        """A controller that was sent: CC 91, 93 and 94 are sends (``SEND_CC``)."""
        b = SEND_CC.get(control)
        if b is not None:
            self._sent_sends()[b, channel] = value / 127.0

    def _note_reset(self, channels: list[int]) -> None:
        """A System Reset of ``channels``: their sends are back at 0."""
        self._sent_sends()[:, channels] = 0.0

    def _sent_sends(self) -> np.ndarray:
        sent = self.__dict__.get("_sends_sent")
        if sent is None:
            sent = self.__dict__.setdefault("_sends_sent", np.zeros((N_BUSES, _N_CHANNELS)))
        return sent

    def _sent_effects(self) -> np.ndarray:
        sent = self.__dict__.get("_effects_sent")
        if sent is None:
            defaults = np.array([s.default for s in EFFECT_SETTINGS])
            sent = self.__dict__.setdefault("_effects_sent", defaults)
        return sent
