"""The OSC address space (docs/osc.md): the one route table, for OSC packets, the play
command's prompt line, the page's WebSocket and MIDI's program changes and bank steps.

Each address has one checking function (its part: :mod:`server.note_addresses`,
:mod:`server.prompt_addresses`, :mod:`server.patch_addresses`,
:mod:`server.host_addresses`, :mod:`server.fx_addresses`). It checks every argument and
everything it needs (a patch that exists, a model that runs) and returns the actions
that apply the message; it raises :class:`Refused` otherwise, so nothing is ever
half-applied. An action takes the engine frame the message is for (None: the next block).
"""

from __future__ import annotations

from engine import TIMBRE_NAMES
from server.fx_addresses import effect_routes
from server.gateway import MAX_PENDING
from server.host_addresses import HostAddresses
from server.note_addresses import MAX_ID_NOTES, NoteAddresses
from server.osc import Action, Refused, Reply
from server.oscargs import ArgError, parse_args
from server.patch_addresses import PatchAddresses
from server.prompt_addresses import PromptAddresses, join_words
from server.routing import Folders, Routes, engine_action

__all__ = ["AddressSpace", "MAX_ID_NOTES", "MAX_PENDING"]


class AddressSpace:
    """Router for :class:`server.osc.OscServer` (and the prompt line, the page, MIDI).

    Args:
        engine: where events go (an :class:`engine.sender.EventSender`).
        channels: the channels' patches (:class:`server.state.ChannelStates`).
        bank: the patch bank (``patches.Bank``), or None, ``bank_reason`` saying why.
        model: the model gateway (:class:`server.gateway.ModelGateway`), or None.
        status: the status source (:class:`server.status.HostStatus`), or None.
        folders: where senders may name files (:class:`server.routing.Folders`).

    Every one may be left out where nothing will be sent (to list the addresses).
    """

    def __init__(
        self,
        engine=None,
        channels=None,
        *,
        bank=None,
        bank_reason: str = "",
        model=None,
        status=None,
        folders: Folders | None = None,
    ) -> None:
        folders = folders if folders is not None else Folders()
        self._routes: Routes = {}
        for part in (
            NoteAddresses(engine, channels, folders),
            PromptAddresses(channels, model),
            PatchAddresses(engine, channels, bank, bank_reason, model, folders),
            HostAddresses(status),
        ):
            self._routes.update(part.routes())
        self._routes.update(effect_routes(lambda: engine, engine_action))

    @property
    def addresses(self) -> list[str]:
        return sorted(self._routes)

    def __call__(self, address: str, args: list, reply: Reply) -> list[Action]:
        """The actions that apply one message, every argument checked; raises
        :class:`Refused` saying what is wrong and what is accepted."""
        route = self._routes.get(address)
        if route is None:
            hint = " (timbre parameters: " + ", ".join(TIMBRE_NAMES) + ")" if address.startswith("/param/") else ""
            raise Refused(address, f"unknown address{hint}; see docs/osc.md")
        spec, fn = route
        if address == "/prompt":
            args = join_words(args)
        try:
            values = spec(args) if callable(spec) else parse_args(spec, args)
        except ArgError as exc:
            raise Refused(address, str(exc)) from None
        return fn(address, values, reply)

    def run(self, address: str, args: list, reply: Reply, frame: int | None = None) -> None:
        """Check one message and apply it now, at ``frame`` (None: the next block): the
        way in of a part that has no scheduler (MIDI). Raises :class:`Refused`."""
        for action in self(address, args, reply):
            action(frame)


# Every reply that carries a patch carries its centre's timbre values, in schema order.
N_TIMBRE = len(TIMBRE_NAMES)
