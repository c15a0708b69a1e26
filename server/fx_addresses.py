"""The send effects' OSC addresses (docs/osc.md, "Effects"): per-channel sends and the
global settings, each checked before it acts, as every address of
:class:`server.addresses.AddressSpace`, which routes them.

- ``/send/reverb f:level [i:channel]`` (and ``/send/chorus``, ``/send/delay``): the
  channel's send, 0..1 (CC 91, 93 and 94 set the same, value / 127).
- ``/fx/<effect>/<setting> f:value``: a global setting (``engine.effects.EFFECT_SETTINGS``),
  answered with ``/fx/<effect>/<setting>.reply f:value``.
- ``/fx/list``: every setting, answered with ``/fx/list.reply`` and, per setting, its
  name, value, minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.effects import BUSES, EFFECT_SETTINGS
from server.oscargs import Arg

__all__ = ["effect_routes", "effect_status"]


def effect_routes(engine: Callable[[], object], engine_action: Callable) -> dict:
    """The effects' routes for the address space: ``{address: (spec, handler)}``.

    ``engine()``: the engine to send to (an :class:`engine.sender.EventSender`);
    ``engine_action(address, reply, call, done=None)``: the address space's one action
    that calls the engine at its frame (a full queue is /fail)."""

    def send(address, v, reply):
        level, ch = v
        effect = address.rsplit("/", 1)[1]
        return engine_action(address, reply, lambda f: engine().set_send(ch, effect, level, f))

    def setting(address, v, reply):
        (value,) = v
        name = _NAME_OF[address]
        return engine_action(
            address, reply, lambda f: engine().set_effect(name, value, f),
            lambda: reply.send(address + ".reply", float(value)),
        )

    def listing(address, v, reply):
        def answer(frame):
            values = engine().effect_settings()
            flat = []
            for s in EFFECT_SETTINGS:
                flat += [s.name, float(values[s.name]), float(s.minimum), float(s.maximum)]
            reply.send("/fx/list.reply", *flat)

        return [answer]

    routes: dict = {}
    for bus in BUSES:
        routes[f"/send/{bus}"] = ((Arg("level", "float", 0.0, 1.0), Arg("channel", "channel", default=0)), send)
    for s in EFFECT_SETTINGS:
        routes[s.address] = ((Arg(s.key, "float", s.minimum, s.maximum),), setting)
    routes["/fx/list"] = ((), listing)
    return routes


_NAME_OF = {s.address: s.name for s in EFFECT_SETTINGS}


def effect_status(engine) -> list[float]:
    """What ``/status.reply`` appends for the effects: each global setting's value in
    ``EFFECT_SETTINGS`` order, then each bus's send level for channels 1..16 (reverb,
    chorus, delay), as this host last sent them."""
    values = engine.effect_settings()
    out = [float(values[s.name]) for s in EFFECT_SETTINGS]
    for row in engine.sends().values():
        out += [float(x) for x in row]
    return out
