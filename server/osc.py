"""The OSC server: a UDP socket, packet parsing, dispatch, replies and notify targets.

python-osc's own server sleeps on its thread until a bundle's timetag; here a plain
socket thread parses each packet, asks the router to turn every message into an action
(checking all arguments first) and hands the actions either to ``run_now`` or, for a
bundle with a future timetag, to ``run_at(timetag, actions)``. A bundle is all or
nothing: if one of its messages is refused, none of it applies.

Replies go to the sender's address and port, and also to every ``/notify`` target.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from pythonosc import osc_message_builder

from server.oscparse import OscParseError, parse_packet

__all__ = ["OscServer", "Refused", "Reply", "parse_networks", "is_loopback"]

#: Most ``/notify`` targets at once: each reply goes to every one of them.
MAX_NOTIFY_TARGETS = 8
#: Bundles tagged further ahead than this are refused (they would sit in the scheduler).
MAX_AHEAD_S = 60.0
#: Addresses the host itself sends. A packet carrying one is ignored unanswered: two
#: hosts that are each other's notify target would otherwise bounce /fail forever.
REPLY_ADDRESSES = frozenset(
    [
        "/fail",
        "/status.reply",
        "/notify.reply",
        "/synced",
        "/prompt/done",
        "/prompt/choice",
        "/prompt/choices.reply",
        "/morph/done",
        "/patch/loaded",
        "/patch/saved",
        "/patch/list.reply",
        "/patch/changed",
        "/midi/list.reply",
        "/midi/connected",
        "/midi/lost",
        "/patch/from-audio/done",
    ]
)
#: Most packets handled per second (in 10 ms windows); more wait in the socket buffer.
MAX_PACKETS_PER_S = 5000
#: Longest address echoed back in a ``/fail`` and longest reason, in characters.
_MAX_ECHO = 128
_MAX_REASON = 300

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
        self.server.failed += 1
        self.server.send(
            self.sender, "/fail", _clip(address, _MAX_ECHO), _clip(reason, _MAX_REASON), *extra
        )


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def parse_networks(specs: Iterable[str]) -> list:
    """``--allow`` values (``127.0.0.1``, ``192.168.1.0/24``, ``::1``) as networks;
    raises ValueError naming the bad one."""
    nets = []
    for spec in specs:
        try:
            nets.append(ipaddress.ip_network(spec.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"--allow must be an address or CIDR network such as 192.168.1.0/24, got {spec!r}"
            ) from None
    return nets


def is_loopback(host: str) -> bool:
    """True when listening on ``host`` only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        run_at: ``run_at(timetag, actions)`` for bundles tagged in the future; may raise
            :class:`Refused` (e.g. the scheduler is full).
        host, port: where to listen (port 0 picks a free one; see :attr:`port`).
        allow: networks (:func:`parse_networks`) whose packets are accepted; None accepts
            every sender. Packets from elsewhere are dropped unanswered and counted in
            :attr:`dropped`.
    """

    def __init__(
        self,
        router: Callable[[str, list, Reply], list[Action]],
        run_at: Callable[[float, list[Action]], None],
        host: str = "127.0.0.1",
        port: int = 9000,
        allow: list | None = None,
        frame_at: Callable[[float], int] | None = None,
    ) -> None:
        self.router = router
        self.allow = list(allow) if allow is not None else None
        self.run_at = run_at
        #: The output's ``frame_at``: an unbundled message applies at the frame of its
        #: arrival (a fixed time after it, so that notes keep their spacing to the
        #: sample); None: at the next block.
        self.frame_at = frame_at
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
        self.dropped = 0  # from senders outside ``allow``
        self.failed = 0  # /fail replies sent
        self.ignored = 0  # replies (/fail ...) sent to us: never answered
        self.errors = 0  # internal errors (bugs): should stay 0
        self.last_error: str | None = None
        self._allowed: dict[str, bool] = {}
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

    def add_notify(self, target: Address) -> bool:
        """Add a notify target; False (nothing added) when there are too many already."""
        with self._send_lock:
            if target not in self._notify and len(self._notify) >= MAX_NOTIFY_TARGETS:
                return False
            self._notify.add(target)
            return True

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
        # Ordinary priority (not server.rt's): a flood keeps this thread busy, and at a
        # real-time priority that starved JACK's own client threads (the kernel's
        # real-time throttling): 53 JACK xruns in 16 s of fuzz at 64 voices.
        window_start, in_window = time.monotonic(), 0
        while not self._closed:
            try:
                data, sender = self.sock.recvfrom(65536)
                arrived = time.monotonic()
            except TimeoutError:
                continue
            except OSError:
                if self._closed:
                    return
                continue
            self.packets += 1
            # Rate limit: a flood waits in the socket buffer (and beyond it is dropped by
            # the kernel) instead of keeping this thread, and the GIL, busy.
            in_window += 1
            if in_window >= MAX_PACKETS_PER_S // 100:
                wait = window_start + 0.01 - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                window_start, in_window = time.monotonic(), 0
            if self.allow is not None and not self._is_allowed(sender[0]):
                self.dropped += 1  # no reply: nothing goes back to a stranger
                continue
            try:
                self.handle_packet(data, sender[:2], arrived)
            except Exception as exc:  # noqa: BLE001 - the server thread never dies
                self.errors += 1
                self.last_error = repr(exc)

    def _is_allowed(self, host: str) -> bool:
        ok = self._allowed.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host)
                ok = any(ip in net for net in self.allow if net.version == ip.version)
            except ValueError:
                ok = False
            if len(self._allowed) > 4096:  # bounded under a spoofed-source flood
                self._allowed.clear()
            self._allowed[host] = ok
        return ok

    def handle_packet(self, data: bytes, sender: Address, arrived: float | None = None) -> None:
        """Parse, check and apply (or schedule) one UDP datagram from ``sender`` that
        arrived at monotonic time ``arrived`` (None: now)."""
        reply = Reply(self, sender)
        try:
            is_bundle, timed = parse_packet(data)
        except OscParseError as exc:
            reply.fail(exc.address, f"cannot parse OSC packet: {exc.reason}")
            return
        if timed and timed[0][1] in REPLY_ADDRESSES:
            self.ignored += 1
            return
        now = time.time()
        planned: list[tuple[float | None, str, list[Action]]] = []
        for when, address, args in timed:
            try:
                if when is not None and when > now + MAX_AHEAD_S:
                    raise Refused(
                        address,
                        f"bundle timetag is {when - now:.0f} s ahead; at most {MAX_AHEAD_S:g} s "
                        "ahead is accepted",
                    )
                actions = self.router(address, args, reply)
            except Refused as exc:
                if is_bundle:
                    reply.fail(exc.address, f"{exc.reason} (the whole bundle was ignored)")
                else:
                    reply.fail(exc.address, exc.reason)
                return
            except Exception as exc:  # noqa: BLE001
                reply.fail(address, f"internal error: {exc!r}")
                self.errors += 1
                self.last_error = repr(exc)
                return
            planned.append((when, address, actions))
        frame = None
        if self.frame_at is not None:
            frame = self.frame_at(time.monotonic() if arrived is None else arrived)
        for when, address, actions in planned:
            if when is None or when <= now:
                for action in actions:
                    action(frame)
            else:
                try:
                    self.run_at(when, actions)
                except Refused as exc:
                    reply.fail(exc.address or address, exc.reason)
