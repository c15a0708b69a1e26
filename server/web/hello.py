"""What a page is told when its socket opens: the parameters and every channel's patch.

As OSC-shaped messages, so that the page reads one form: ``/web/param`` for each timbre
parameter (name, unit, range, default, scale and its offset: what its knob shows), ``/patch/changed``
for each channel (the notice the host sends on every change), then ``/web/ready``.
"""

from __future__ import annotations

from engine import N_CHANNELS, TIMBRE_NAMES, param
from server.state import timbre_values

__all__ = ["hello_messages"]


def hello_messages(channels, addresses: list[str]) -> list[tuple[str, list]]:
    """The messages a new page gets first.

    Args:
        channels: the host's :class:`server.state.ChannelStates`.
        addresses: the address space's addresses (the page may send any of them).
    """
    out: list[tuple[str, list]] = []
    for name in TIMBRE_NAMES:
        p = param(name)
        out.append(("/web/param", [p.name, p.unit, float(p.minimum), float(p.maximum),
                                   float(p.default), p.scale, float(p.offset)]))
    for ch in range(N_CHANNELS):
        s = channels.state(ch)
        out.append(("/patch/changed", [ch + 1, s.label, *timbre_values(s.table), s.instrument]))
    out.append(("/web/ready", [N_CHANNELS, len(addresses)]))
    return out
