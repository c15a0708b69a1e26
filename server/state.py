"""Each channel's patch as the host knows it: one owner, one typed interface.

The engine plays its own copy of each channel's patch (in the render process); what the
host needs to know (for /patch/save, replies and notices) lives here, and every change
goes through here: a prompt's or a morph's answer, a bank patch (OSC /patch/load,
/program, a MIDI program change, ``play --patch``), a /param change.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine import N_CHANNELS, TIMBRE_INDEX, TIMBRE_NAMES, KeyTable
from engine.schema import HELD_NAMES, ONSET_NAMES

__all__ = ["ChannelState", "ChannelStates", "PatchTicket", "timbre_values"]


def timbre_values(table: KeyTable) -> list[float]:
    """What replies and notices carry of a patch: its timbre at key 60, velocity 100,
    the ten values in schema order (``TIMBRE_NAMES``)."""
    return [float(v) for v in table.center().values()]


@dataclass(frozen=True)
class PatchTicket:
    """Who asked for a patch from the model, and for which channel: ``on_done(made)``
    (a ``server.worker.ModelPatch``) once it plays there, ``on_fail(reason)`` if the
    model could not make it."""

    channel: int
    label: str
    prompt: str | None
    on_done: Callable[[object], None]
    on_fail: Callable[[str], None]


@dataclass(frozen=True)
class ChannelState:
    """One channel's patch: ``table`` (``/param`` changes included), ``label`` (the
    prompt or the patch's name), the prompt it came from, if any, the instrument the
    words picked (its name as a person reads it; "" where none did), its place in the
    words' list of choices (0: the words' own; /prompt/next walks on from it) and the
    names of that list, where the model has ranked it for these words (() until then:
    /prompt/choices asks it once)."""

    table: KeyTable
    label: str
    prompt: str | None = None
    instrument: str = ""
    choice: int = 0
    choices: tuple[str, ...] = ()


class ChannelStates:
    """The 16 channels' patches.

    Args:
        engine: what plays them (``set_patch``, ``set_param``).
        notify: ``notify(address, *args)`` for change notices (``/patch/changed``).
    """

    def __init__(self, engine, notify: Callable[..., None] | None = None) -> None:
        self.engine = engine
        self.notify = notify
        self._lock = threading.Lock()
        self._states = [ChannelState(KeyTable.flat(), "default")] * N_CHANNELS
        # The bank patch each channel played last (a patch from words in between does
        # not move it): where /bank/next and /bank/prev step from.
        self._bank_patches: list[str | None] = [None] * N_CHANNELS

    def state(self, channel: int) -> ChannelState:
        """``channel``'s patch now."""
        with self._lock:
            return self._states[channel]

    def apply(
        self,
        channel: int,
        table: KeyTable,
        label: str,
        prompt: str | None = None,
        frame: int | None = None,
        *,
        instrument: str = "",
        choice: int = 0,
        choices: tuple[str, ...] = (),
    ) -> None:
        """Play ``table`` for new notes on ``channel`` (0-15) from ``frame`` on (None: the
        next block), remember it, and tell the notify targets (the instrument the words
        picked last, after the timbre: new fields go at the end)."""
        self.engine.set_patch(channel, table, frame)
        with self._lock:
            self._states[channel] = ChannelState(table, label, prompt, instrument, choice, tuple(choices))
        if self.notify is not None:
            self.notify("/patch/changed", channel + 1, label, *timbre_values(table), instrument)

    def set_choices(self, channel: int, prompt: str, choices: tuple[str, ...]) -> bool:
        """Remember the names of ``prompt``'s list of choices for ``channel``, if its
        patch still comes from those words (a later patch's words keep their own list);
        True if kept."""
        with self._lock:
            s = self._states[channel]
            if s.prompt != prompt:
                return False
            self._states[channel] = dataclasses.replace(s, choices=tuple(choices))
            return True

    def apply_bank_patch(self, channel: int, patch, frame: int | None = None) -> None:
        """A patch of the bank (``patches.Patch``) on ``channel``: its name is the label;
        its expression amounts (what pressure, CC 74 and the mod wheel do) apply too."""
        self.apply(channel, patch.table, patch.name, patch.prompt, frame)
        with self._lock:
            self._bank_patches[channel] = patch.name
        expression = getattr(patch, "expression", None)
        if expression is not None:
            self.engine.set_expression(channel, expression, frame)

    def bank_patch(self, channel: int) -> str | None:
        """The name of the bank patch ``channel`` played last, or None."""
        with self._lock:
            return self._bank_patches[channel]

    def set_spectrum(self, channel: int, held_db, onset_db=None, frame: int | None = None) -> None:
        """The carrier's held spectrum (and the onset one, where given: 32 levels in dB
        each) of ``channel``'s patch, flat on every key, sounding notes included, applied
        at once (``Engine.set_spectrum``)."""
        self.engine.set_spectrum(channel, held_db, onset_db, frame)
        with self._lock:
            s = self._states[channel]
            table = s.table
            for names, levels in ((HELD_NAMES, held_db), (ONSET_NAMES, onset_db)):
                if levels is not None:
                    vals = table.values.copy()
                    vals[:, :, [TIMBRE_INDEX[n] for n in names]] = np.asarray(levels, dtype=np.float64)
                    table = KeyTable(table.keys, table.velocities, vals)
            self._states[channel] = dataclasses.replace(s, table=table)

    def set_param(self, channel: int, name: str, value: float, frame: int | None = None) -> None:
        """One timbre value of ``channel``'s patch, flat on every key, sounding notes
        included (``Engine.set_param``)."""
        if name not in TIMBRE_NAMES:
            raise ValueError(f"{name} is not a timbre parameter; timbre parameters: {', '.join(TIMBRE_NAMES)}")
        self.engine.set_param(channel, name, value, frame)
        with self._lock:
            s = self._states[channel]
            self._states[channel] = dataclasses.replace(s, table=s.table.with_param(name, value))
