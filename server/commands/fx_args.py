"""The send effects' command-line options, shared by `promptsynth play` and `promptsynth
render --midi`: one flag per global setting (``engine.effects.EFFECT_SETTINGS``, e.g.
``--reverb-room``) and a send level for every channel per effect (``--reverb-send``)."""

from __future__ import annotations

import argparse

from engine.effects import BUSES, EFFECT_SETTINGS
from server.commands.render import number_arg

__all__ = ["add_effect_args", "effect_values", "send_values"]


def add_effect_args(parser: argparse.ArgumentParser, where: str = "") -> None:
    """Add the effects' options to ``parser`` (their group's title ends with ``where``)."""
    g = parser.add_argument_group(
        "effects" + where,
        "a reverb, a chorus and a delay on send buses; each channel's send is 0 (dry) "
        "unless set here, by CC 91 (reverb), 93 (chorus), 94 (delay) or OSC /send/...",
    )
    for bus, cc in zip(BUSES, (91, 93, 94)):
        g.add_argument(
            f"--{bus}-send", metavar="LEVEL", type=number_arg(float, 0.0, 1.0, f"--{bus}-send"), default=None,
            help=f"every channel's {bus} send, 0..1, until CC {cc} or /send/{bus} changes it (default 0)",
        )
    for s in EFFECT_SETTINGS:
        unit = f" {s.unit}" if s.unit else ""
        g.add_argument(
            s.flag, metavar="X", type=number_arg(float, s.minimum, s.maximum, s.flag), default=None,
            help=f"{s.doc}, {s.minimum:g}..{s.maximum:g}{unit} (default {s.default:g})",
        )


def effect_values(args: argparse.Namespace) -> dict[str, float]:
    """The settings given on the command line, by name (``reverb_room``)."""
    return {s.name: getattr(args, s.name) for s in EFFECT_SETTINGS if getattr(args, s.name) is not None}


def send_values(args: argparse.Namespace) -> dict[str, float]:
    """The sends given on the command line, by effect (``reverb``)."""
    return {b: getattr(args, f"{b}_send") for b in BUSES if getattr(args, f"{b}_send") is not None}
