"""What a page is told when its socket opens: the parameters and every channel's patch.

As OSC-shaped messages, so that the page reads one form: ``/web/param`` for each timbre
parameter (name, unit, range, default, scale and its offset: what its knob shows), ``/patch/changed``
for each channel (the notice the host sends on every change); then the effects:
``/web/send`` for each send bus and ``/web/effect`` for each global setting (what their
knobs send, range, unit), and their values now as ``/web/effects`` (the notice the page
gets on every change of them, :mod:`server.web.watch`); then ``/web/ready``.
"""

from __future__ import annotations

from collections.abc import Callable

from engine import N_CHANNELS, TIMBRE_NAMES, param
from engine.effects import BUSES, EFFECT_SETTINGS
from server.fx_addresses import effect_routes
from server.state import timbre_values

__all__ = ["hello_messages", "effect_messages", "EFFECTS_NOTICE"]

#: The notice of the effects' values: the 12 settings then the 48 sends, as ``/status``
#: appends them (docs/osc.md).
EFFECTS_NOTICE = "/web/effects"
#: Settings whose knobs turn as they sound (a ratio of times, not a difference); the
#: rest turn linearly. Their ranges are positive, so no offset is needed.
_LOG_SETTINGS = frozenset(["chorus_delay_ms", "delay_time"])


def effect_messages() -> list[tuple[str, list]]:
    """``/web/send s:address s:bus f:min f:max f:default`` per send bus and ``/web/effect
    s:address s:name s:bus s:key s:unit f:min f:max f:default s:scale`` per setting, in
    ``EFFECT_SETTINGS`` order; ranges as the address space checks them."""
    routes = effect_routes(lambda: None, lambda *a: [])  # only their argument specs are read
    out: list[tuple[str, list]] = []
    for bus in BUSES:
        address = f"/send/{bus}"
        level = routes[address][0][0]
        out.append(("/web/send", [address, bus, float(level.lo), float(level.hi), 0.0]))
    for s in EFFECT_SETTINGS:
        arg = routes[s.address][0][0]
        out.append(("/web/effect", [s.address, s.name, s.bus, s.key, s.unit, float(arg.lo), float(arg.hi),
                                    float(s.default), "log" if s.name in _LOG_SETTINGS else "lin"]))
    return out


def hello_messages(
    channels, addresses: list[str], effects: Callable[[], list[float]] | None = None
) -> list[tuple[str, list]]:
    """The messages a new page gets first.

    Args:
        channels: the host's :class:`server.state.ChannelStates`.
        addresses: the address space's addresses (the page may send any of them).
        effects: the effects' values now (``server.fx_addresses.effect_status``); None:
            the page is told of no effects.
    """
    out: list[tuple[str, list]] = []
    for name in TIMBRE_NAMES:
        p = param(name)
        out.append(("/web/param", [p.name, p.unit, float(p.minimum), float(p.maximum),
                                   float(p.default), p.scale, float(p.offset)]))
    for ch in range(N_CHANNELS):
        s = channels.state(ch)
        out.append(("/patch/changed", [ch + 1, s.label, *timbre_values(s.table), s.instrument]))
    if effects is not None:
        out += effect_messages()
        out.append((EFFECTS_NOTICE, effects()))
    out.append(("/web/ready", [N_CHANNELS, len(addresses)]))
    return out
