"""What every part of the address space shares (docs/osc.md): the shape of a route, the
one action that calls the engine at its frame, the common arguments, and the folders a
sender may name files in.

A part (:mod:`server.note_addresses`, :mod:`server.patch_addresses`,
:mod:`server.prompt_addresses`, :mod:`server.host_addresses`,
:mod:`server.fx_addresses`) gives :class:`server.addresses.AddressSpace` its routes,
``{address: (spec, handler)}``: ``spec`` is a tuple of :class:`Arg` for
:func:`server.oscargs.parse_args`, or a function that checks the arguments itself;
``handler(address, values, reply)`` checks everything else and returns the actions, or
raises :class:`Refused`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from engine import QueueFull
from server.osc import Action, Refused, Reply
from server.oscargs import Arg

__all__ = ["CH", "MIDI", "Folders", "Handler", "Routes", "Spec", "engine_action", "file_in", "spec"]

#: The optional channel argument: 1-16 from outside, 0-15 here, 1 by default.
CH = Arg("channel", "channel", default=0)
#: A MIDI data byte's range, for ``Arg(..., "int", **MIDI)``.
MIDI = {"lo": 0, "hi": 127}

Spec = tuple[Arg, ...] | Callable[[list], list]
Handler = Callable[[str, list, Reply], list[Action]]
Routes = dict[str, tuple[Spec, Handler]]


def spec(*args: Arg) -> tuple[Arg, ...]:
    return args


@dataclass
class Folders:
    """The folders whose files a sender may name: ``--tuning-dir`` (.scl and .kbm files,
    ``/tuning/scl``) and ``--audio-dir`` (recordings, ``/patch/from-audio``); None: none."""

    tuning_dir: str | None = None
    audio_dir: str | None = None


def engine_action(
    address: str, reply: Reply, call: Callable[[int | None], None], done: Callable[[], None] | None = None
) -> list[Action]:
    """One action that calls the engine at its frame: a full queue is /fail, else
    ``done()`` (a reply), if given."""

    def action(frame: int | None) -> None:
        try:
            call(frame)
        except QueueFull as exc:
            reply.fail(address, str(exc))
            return
        if done is not None:
            done()

    return [action]


def file_in(address: str, folder: str | None, option: str, what: str, file: str) -> str:
    """``file`` inside ``folder`` (the host's ``option``), or Refused saying why not: a
    sender names files there and nowhere else."""
    if folder is None:
        raise Refused(address, f"the host was started without {option} DIR: {what} are read from that folder only")
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, file))
    if os.path.commonpath([root, path]) != root or path == root:
        raise Refused(address, f"file must be inside the {option} folder, got {file!r}")
    if not os.path.isfile(path):
        raise Refused(address, f"no file {file!r} in the {option} folder")
    return path
