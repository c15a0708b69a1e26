"""Controllers mapped to what the host does beyond the engine: a button (a controller
sent 64 or more) that plays the channel's next or previous bank patch (``play
--bank-next-cc N --bank-prev-cc N``), as ``/bank/next`` and ``/bank/prev`` do."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from engine import CC

__all__ = ["SWITCH_ON", "bank_steps", "check_bank_cc"]

#: A switch controller (a pedal, a button) is on from this value up.
SWITCH_ON = 64
#: Controllers the engine acts on (``engine.CC``, and the data entry and parameter
#: numbers of RPNs and NRPNs): none of them may step the bank.
_ENGINE_CCS = {v: k.lower() for k, v in vars(CC).items() if isinstance(v, int) and not k.startswith("_")}


def check_bank_cc(option: str, number: object) -> int:
    """A controller number for ``--bank-next-cc`` / ``--bank-prev-cc``: 0..127 and none
    the engine acts on (a button there would also sustain, pan, reset...)."""
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
        raise ValueError(f"{option} must be a controller number in range 0..127, got {number!r}")
    if number >= CC.ALL_SOUND_OFF:
        raise ValueError(f"{option}: CC {number} is a channel mode message (120..127); choose a "
                         "controller in range 0..119 the engine does not act on (for example 3, 9, 14-31, "
                         "85-90, 102-119)")
    if number in _ENGINE_CCS:
        free = "3, 9, 14-31, 85-90, 102-119"
        raise ValueError(
            f"{option}: CC {number} is the engine's {_ENGINE_CCS[number].replace('_', ' ')}; choose a "
            f"controller it does not act on (for example {free})"
        )
    return number


def bank_steps(next_cc: int | None, prev_cc: int | None) -> Mapping[int, str]:
    """Controller number -> ``/bank/next`` or ``/bank/prev``, checked
    (:func:`check_bank_cc`); the two must differ."""
    steps: dict[int, str] = {}
    for option, number, address in (("--bank-next-cc", next_cc, "/bank/next"),
                                     ("--bank-prev-cc", prev_cc, "/bank/prev")):
        if number is not None:
            steps[check_bank_cc(option, number)] = address
    if next_cc is not None and next_cc == prev_cc:
        raise ValueError(f"--bank-next-cc and --bank-prev-cc must differ, both are {next_cc}")
    return MappingProxyType(steps)
