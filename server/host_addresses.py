"""The host itself: ``/status``, ``/notify``, ``/sync`` and ``/midi/list`` (docs/osc.md,
"The host"), routed by :class:`server.addresses.AddressSpace`."""

from __future__ import annotations

from server.osc import MAX_NOTIFY_TARGETS
from server.oscargs import Arg
from server.routing import Routes, spec

__all__ = ["HostAddresses"]


class HostAddresses:
    """The host's own addresses.

    Args:
        status: the status source (:class:`server.status.HostStatus`): ``fields()``,
            ``add_notify``, ``remove_notify``, ``midi_names()``, ``sync(then)``.
    """

    def __init__(self, status) -> None:
        self.status = status

    def routes(self) -> Routes:
        return {
            "/status": ((), self._status),
            "/notify": (spec(Arg("port", "int", 0, 65535)), self._notify),
            "/sync": (spec(Arg("id", "int", -(2**31), 2**31 - 1)), self._sync),
            "/midi/list": ((), self._midi_list),
        }

    def _status(self, address, v, reply):
        return [lambda frame: reply.send("/status.reply", *self.status.fields())]

    def _notify(self, address, v, reply):
        (port,) = v
        host = reply.sender[0]

        def notify(frame):
            if port == 0:
                self.status.remove_notify(host)
            elif not self.status.add_notify((host, port)):
                reply.fail(
                    address,
                    f"at most {MAX_NOTIFY_TARGETS} notify targets; send /notify 0 from a host to remove its targets",
                )
                return
            reply.send("/notify.reply", port)

        return [notify]

    def _midi_list(self, address, v, reply):
        def answer(frame):
            connected = self.status.midi_names()
            try:
                from server.midi_in import list_inputs

                others = [n for n in list_inputs() if n not in connected]
            except Exception as exc:  # noqa: BLE001 - no MIDI backend: say so
                reply.fail(address, f"cannot list MIDI inputs: {exc}")
                return
            reply.send("/midi/list.reply", len(connected), *connected, *others)

        return [answer]

    def _sync(self, address, v, reply):
        (sid,) = v
        return [lambda f: self.status.sync(lambda: reply.send("/synced", sid))]
