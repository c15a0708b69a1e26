"""The bank: ``/program``, ``/patch/load``, ``/patch/save``, ``/patch/list``,
``/bank/next``, ``/bank/prev`` and ``/patch/from-audio`` (docs/osc.md, "Sound"), each
checked before it acts, routed by :class:`server.addresses.AddressSpace`. A MIDI program
change and a controller mapped to the bank's steps (``play --bank-next-cc``) come here
too, through the same table."""

from __future__ import annotations

from server.osc import Refused
from server.oscargs import Arg
from server.routing import CH, MIDI, Folders, Routes, engine_action, file_in, spec
from server.state import PatchTicket

__all__ = ["PatchAddresses", "neighbour"]


def neighbour(names: list[str], current: str | None, step: int) -> str:
    """The name ``step`` places from ``current`` in ``names``, round the list; from
    outside it (no bank patch yet, or one since removed) the first going forward, the
    last going back."""
    if current in names:
        return names[(names.index(current) + step) % len(names)]
    return names[0] if step > 0 else names[-1]


class PatchAddresses:
    """The bank's addresses.

    Args:
        engine: the engine (the expression amounts a saved patch keeps).
        channels: the channels' patches (:class:`server.state.ChannelStates`).
        bank: the bank (``patches.Bank``), or None.
        bank_reason: why there is no bank, where there is none.
        model: the model gateway (``from_audio``), for fits of recordings.
        folders: where ``/patch/from-audio`` may read (:class:`server.routing.Folders`).
    """

    def __init__(self, engine, channels, bank, bank_reason: str, model, folders: Folders) -> None:
        self.engine = engine
        self.channels = channels
        self.bank = bank
        self.bank_reason = bank_reason
        self.model = model
        self.folders = folders

    def routes(self) -> Routes:
        return {
            "/program": (spec(Arg("program", "int", **MIDI), CH), self._program),
            "/patch/load": (spec(Arg("name", "str"), CH), self._patch_load),
            "/patch/save": (spec(Arg("name", "str"), CH), self._patch_save),
            "/patch/list": ((), self._patch_list),
            "/bank/next": (spec(CH), self._bank_step),
            "/bank/prev": (spec(CH), self._bank_step),
            "/patch/from-audio": (spec(Arg("file", "str"), Arg("name", "str"), CH), self._from_audio),
        }

    def _bank(self, address: str):
        if self.bank is None:
            raise Refused(address, f"no patch bank: {self.bank_reason}")
        return self.bank

    def _read(self, address, read):
        """``read(bank)``'s patch; a patch file that cannot be read refuses the message."""
        from patches import PatchError

        try:
            return read(self._bank(address))
        except PatchError as exc:
            raise Refused(address, str(exc)) from None

    def _program(self, address, v, reply):
        number, ch = v
        patch = self._read(address, lambda bank: bank.program(number))
        if patch is None:
            raise Refused(address, f"no patch at program {number} in the bank")
        return engine_action(address, reply, lambda f: self.channels.apply_bank_patch(ch, patch, f))

    def _patch_load(self, address, v, reply):
        name, ch = v
        patch = self._read(address, lambda bank: bank.load(name))

        def apply(frame):
            self.channels.apply_bank_patch(ch, patch, frame)
            reply.send("/patch/loaded", patch.name, ch + 1)

        return engine_action(address, reply, apply)

    def _bank_step(self, address, v, reply):
        """/bank/next and /bank/prev: the bank patch after (before) the one the channel
        played last, in ``/patch/list``'s order, round the list. Which one is decided when
        the step applies, so that steps in a row (a bundle, a button pressed fast) each
        move on from the one before."""
        (ch,) = v
        from patches import PatchError

        bank = self._bank(address)
        if not bank.names():
            raise Refused(address, "the bank has no patches: save one with /patch/save first")
        step = 1 if address == "/bank/next" else -1

        def apply(frame):
            name = neighbour(bank.names(), self.channels.bank_patch(ch), step)
            try:
                patch = bank.load(name)
            except (PatchError, OSError) as exc:
                reply.fail(address, f"cannot load bank patch {name!r}: {exc}")
                return
            self.channels.apply_bank_patch(ch, patch, frame)
            reply.send("/patch/loaded", patch.name, ch + 1)

        return engine_action(address, reply, apply)

    def _patch_save(self, address, v, reply):
        name, ch = v
        from patches import Patch, PatchError, check_name

        bank = self._bank(address)
        try:
            name = check_name(name)
        except PatchError as exc:
            raise Refused(address, str(exc)) from None

        def save(frame):
            state = self.channels.state(ch)
            try:
                expression = self.engine.expression(ch)
                saved = bank.save(Patch(name, state.table, prompt=state.prompt, expression=expression), name)
            except (PatchError, OSError) as exc:
                reply.fail(address, f"could not save {name!r}: {exc}")
                return
            reply.send("/patch/saved", saved, ch + 1)

        return [save]

    def _from_audio(self, address, v, reply):
        from patches import PatchError, check_name

        file, name, ch = v
        path = file_in(address, self.folders.audio_dir, "--audio-dir", "recordings", file)
        self._bank(address)
        try:
            name = check_name(name)
        except PatchError as exc:
            raise Refused(address, str(exc)) from None
        ticket = PatchTicket(
            ch,
            name,
            None,
            on_done=lambda patch: reply.send(
                "/patch/from-audio/done", patch.name, ch + 1, float(patch.source.get("fit_distance", 0.0))
            ),
            on_fail=lambda reason: reply.fail(address, reason),
        )
        return [lambda f: self.model.from_audio(path, name, ticket)]

    def _patch_list(self, address, v, reply):
        bank = self._bank(address)
        return [lambda f: reply.send("/patch/list.reply", *bank.names())]
