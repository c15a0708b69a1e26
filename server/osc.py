"""The OSC server: a UDP socket, packet parsing, dispatch, replies and notify targets.

python-osc's own server sleeps on its thread until a bundle's timetag; here a plain
socket thread parses each packet, asks the router to turn every message into an action
(checking all arguments first) and hands the actions either to ``run_now`` or, for a
bundle with a future timetag, to ``run_at(timetag, actions)``. A bundle is all or
nothing: if one of its messages is refused, none of it applies.

Replies go to the sender's address and port, and also to every ``/notify`` target.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pythonosc import osc_bundle, osc_message, osc_message_builder
from pythonosc.parsing import osc_types

__all__ = ["OscServer", "Refused", "Reply"]

Address = tuple[str, int]
#: What the router returns for a message: a list of callables taking an engine frame
#: (or None for "next block") and the sender's address.
Action = Callable[[int | None], None]


class Refused(Exception):
    """A message that cannot be applied; becomes ``/fail s:address s:reason``."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address}: {reason}")
        self.address = address
        self.reason = reason


class Reply:
    """Where the answers to one message go; handed to the router with each message."""

    def __init__(self, server: OscServer, sender: Address) -> None:
        self.server = server
        self.sender = sender

    def send(self, address: str, *args: Any) -> None:
        self.server.send(self.sender, address, *args)

    def fail(self, address: str, reason: str, *extra: Any) -> None:
        self.server.send(self.sender, "/fail", address, reason, *extra)


def build(address: str, args: tuple) -> bytes:
    """One OSC message; floats go as f, ints as i, str as s (numpy numbers converted)."""
    b = osc_message_builder.OscMessageBuilder(address=address)
    for a in args:
        if isinstance(a, bool):
            b.add_arg(int(a), "i")
        elif isinstance(a, int):
            b.add_arg(a, "i" if -(2**31) <= a < 2**31 else "h")
        elif isinstance(a, float):
            b.add_arg(a, "f")
        elif isinstance(a, str):
            b.add_arg(a, "s")
        elif hasattr(a, "item"):  # numpy scalar
            v = a.item()
            b.add_arg(v, "f" if isinstance(v, float) else "i")
        else:
            b.add_arg(str(a), "s")
    return b.build().dgram


class OscServer:
    """UDP OSC server.

    Args:
        router: ``router(address, args, reply) -> list[Action]``; raises :class:`Refused`.
        run_at: ``run_at(timetag, actions)`` for bundles tagged in the future.
        host, port: where to listen (port 0 picks a free one; see :attr:`port`).
    """

    def __init__(
        self,
        router: Callable[[str, list, Reply], list[Action]],
        run_at: Callable[[float, list[Action]], None],
        host: str = "127.0.0.1",
        port: int = 9000,
    ) -> None:
        self.router = router
        self.run_at = run_at
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise OSError(f"cannot listen for OSC on {host}:{port}: {exc.strerror or exc}") from exc
        self.host, self.port = self.sock.getsockname()[:2]
        self.sock.settimeout(0.25)
        self._send_lock = threading.Lock()
        self._notify: set[Address] = set()
        self._closed = False
        self.packets = 0
        self.errors = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="promptsynth-osc", daemon=True)

    def start(self) -> OscServer:
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        self.sock.close()

    def __enter__(self) -> OscServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- notify targets and sending ------------------------------------------------------

    def add_notify(self, target: Address) -> None:
        with self._send_lock:
            self._notify.add(target)

    def remove_notify(self, host: str) -> None:
        with self._send_lock:
            self._notify = {t for t in self._notify if t[0] != host}

    @property
    def notify_targets(self) -> list[Address]:
        return sorted(self._notify)

    def send(self, target: Address | None, address: str, *args: Any) -> None:
        """Send to ``target`` (None: only notify targets) and to every notify target."""
        data = build(address, args)
        with self._send_lock:
            targets = set(self._notify)
        if target is not None:
            targets.add(target)
        for t in targets:
            try:
                self.sock.sendto(data, t)
            except OSError:
                pass  # a client that went away must not stop the host

    def notify(self, address: str, *args: Any) -> None:
        """A change notice: only to the notify targets."""
        self.send(None, address, *args)

    # -- receiving -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            try:
                data, sender = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._closed:
                    return
                continue
            self.packets += 1
            try:
                self.handle_packet(data, sender[:2])
            except Exception as exc:  # noqa: BLE001 - the server thread never dies
                self.errors += 1
                self.last_error = repr(exc)

    def handle_packet(self, data: bytes, sender: Address) -> None:
        """Parse, check and apply (or schedule) one UDP datagram from ``sender``."""
        reply = Reply(self, sender)
        try:
            timed = _parse(data)
        except ValueError as exc:
            reply.fail("", f"cannot parse OSC packet: {exc}")
            return
        is_bundle = osc_bundle.OscBundle.dgram_is_bundle(data)
        planned: list[tuple[float | None, list[Action]]] = []
        for when, msg in timed:
            try:
                actions = self.router(msg.address, list(msg.params), reply)
            except Refused as exc:
                if is_bundle:
                    reply.fail(exc.address, f"{exc.reason} (the whole bundle was ignored)")
                else:
                    reply.fail(exc.address, exc.reason)
                return
            except Exception as exc:  # noqa: BLE001
                reply.fail(msg.address, f"internal error: {exc!r}")
                self.errors += 1
                return
            planned.append((when, actions))
        now = time.time()
        for when, actions in planned:
            if when is None or when <= now:
                for action in actions:
                    action(None)
            else:
                self.run_at(when, actions)


def _parse(data: bytes) -> list[tuple[float | None, osc_message.OscMessage]]:
    """(timetag or None for immediate, message) for each message, in packet order."""
    try:
        if osc_bundle.OscBundle.dgram_is_bundle(data):
            out: list = []
            _walk(osc_bundle.OscBundle(data), out)
            return out
        if osc_message.OscMessage.dgram_is_message(data):
            return [(None, osc_message.OscMessage(data))]
    except (
        osc_bundle.ParseError,
        osc_message.ParseError,
        osc_types.ParseError,
        IndexError,
        ValueError,
    ) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    raise ValueError("not an OSC message or bundle")


def _walk(bundle: osc_bundle.OscBundle, out: list) -> None:
    ts = bundle.timestamp
    when = None if ts == osc_types.IMMEDIATELY else float(ts)
    for content in bundle:
        if isinstance(content, osc_bundle.OscBundle):
            _walk(content, out)
        else:
            out.append((when, content))
