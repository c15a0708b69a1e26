"""The page's server: HTTP for the page's files and a WebSocket for its messages.

One asyncio loop (``websockets``) on a thread of its own in the host process; the render
runs in its own process (engine.live), so nothing here can hold a block off. Each frame
is turned into ``(address, args)`` (:mod:`server.web.messages`) and goes through the
router, the same address space OSC and the prompt line use: on the loop, or for the few
addresses that may take long (a MIDI scan, patch files) on a dispatch thread, so that
they never stall the loop. Replies and the host's change notices go
back through a bounded queue per socket. State without a notice of its own (the effect
sends and settings) is watched (:mod:`server.web.watch`) and told to every page on change.

What bounds a flood: at most :data:`MAX_MESSAGES_PER_S` frames a second per socket (the
reader waits, and TCP holds the sender back), frames of at most :data:`MAX_FRAME_BYTES`,
at most :data:`MAX_SOCKETS` sockets, and :data:`MAX_QUEUED` replies queued per socket
(more are dropped and counted: a page that does not read cannot grow the host).

With a token (``--web-host`` off this machine) every request and socket must carry it:
``?token=`` in the URL, or the cookie the page gets with it.
"""

from __future__ import annotations

import asyncio
import hmac
import http
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from server.osc import REPLY_ADDRESSES, Refused, is_loopback
from server.web.messages import MessageError, decode, encode
from server.web.watch import Watch

__all__ = ["WebServer", "MAX_MESSAGES_PER_S", "MAX_SOCKETS", "MAX_QUEUED", "MAX_FRAME_BYTES"]

#: Most messages handled per second per socket (in 10 ms windows), as for OSC packets.
MAX_MESSAGES_PER_S = 5000
#: Most sockets open at once; more are refused (503).
MAX_SOCKETS = 8
#: Most replies waiting to go out on one socket; more are dropped (and counted).
MAX_QUEUED = 256
#: Largest frame; a larger one closes the socket (code 1009).
MAX_FRAME_BYTES = 64 * 1024
COOKIE = "promptsynth_token"
#: The page's files: path -> (file in server/web/static, content type).
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/ui.js": ("ui.js", "text/javascript; charset=utf-8"),
    "/effects.js": ("effects.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
#: Nothing from anywhere but the host itself.
_CSP = ("default-src 'self'; connect-src 'self'; img-src 'self' data:; script-src 'self'; "
        "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
#: Addresses whose checks or actions may take long (a scan of the MIDI system, files read
#: or written): they go to the dispatch thread, the rest are handled on the loop.
_SLOW = frozenset(["/midi/list", "/patch/list", "/patch/load", "/patch/save", "/patch/from-audio",
                   "/tuning/scl", "/program", "/bank/next", "/bank/prev"])
#: Addresses of the address space that mean nothing to a page.
_NOT_HERE = {
    "/notify": "the page's socket gets every change notice already; /notify is for OSC clients",
}
_MAX_ECHO = 128
_MAX_REASON = 300


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


class _Socket:
    """One page's socket: its queue of replies, drained by one task."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(MAX_QUEUED)
        self.dropped = 0

    def push(self, text: str) -> None:
        """The loop's thread only."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.dropped += 1

    async def drain(self) -> None:
        try:
            while True:
                text = await self.queue.get()
                await self.ws.send(text)
        except ConnectionClosed:
            pass  # the page went away: its reader ends too


class WebReply:
    """Where the answers to one page's message go (as :class:`server.osc.Reply`); any
    thread may answer (the model's answers come on the worker's)."""

    sender = ("web", 0)

    def __init__(self, server: WebServer, sock: _Socket) -> None:
        self.server = server
        self.sock = sock

    def send(self, address: str, *args) -> None:
        self.server._send(self.sock, encode(address, args))

    def fail(self, address: str, reason: str, *extra) -> None:
        self.server.failed += 1
        self.send("/fail", _clip(address, _MAX_ECHO), _clip(reason, _MAX_REASON), *extra)


class WebServer:
    """The page and its WebSocket on ``host:port``.

    Args:
        router: ``router(address, args, reply) -> list[Action]`` (the address space);
            raises :class:`server.osc.Refused`.
        hello: what a new socket is told first: a list of ``(address, args)``.
        host, port: where to listen (port 0 picks a free one; see :attr:`port`).
        token: when given, every request and socket must carry it.
        watches: states the pages follow (:class:`server.web.watch.Watch`).
    """

    def __init__(
        self,
        router: Callable,
        hello: Callable[[], list[tuple[str, list]]],
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        watches: tuple[Watch, ...] = (),
    ) -> None:
        self.router = router
        self.hello = hello
        self.host, self.port = host, port
        self.token = token
        self.watches = watches
        self.messages = 0
        self.failed = 0  # /fail replies sent
        self.refused = 0  # requests and sockets without the token, or from another site
        self.errors = 0  # internal errors (bugs): should stay 0
        self.last_error: str | None = None
        self._sockets: set[_Socket] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="promptsynth-web-dispatch")
        self._files = {path: (resources.files("server.web").joinpath("static", name).read_bytes(), kind)
                       for path, (name, kind) in FILES.items()}
        self._thread = threading.Thread(target=self._run, name="promptsynth-web", daemon=True)
        self._loop_thread = -1

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> WebServer:
        """Listen; raises OSError when the address cannot be had."""
        self._thread.start()
        self._started.wait(10.0)
        if self._start_error is not None:
            raise OSError(f"cannot serve the page on {self.host}:{self.port}: "
                          f"{getattr(self._start_error, 'strerror', None) or self._start_error}")
        return self

    def close(self) -> None:
        """Close every socket and stop listening; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=3.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The page's address (with the token, when there is one)."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else _this_host()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    @property
    def dropped(self) -> int:
        """Replies dropped, over the sockets open now, because a page did not read them."""
        return sum(s.dropped for s in list(self._sockets))

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - told to start(), which raises it
            self._start_error = exc
            self._started.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stop = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            max_size=MAX_FRAME_BYTES,
            max_queue=16,
            compression=None,
            server_header=None,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            watching = [asyncio.create_task(w.run(self._notice, lambda: len(self._sockets)))
                        for w in self.watches]
            self._started.set()
            await self._stop.wait()
            for task in watching:
                task.cancel()

    # -- notices and replies (any thread) ------------------------------------------------

    def notify(self, address: str, *args) -> None:
        """A change notice to every page."""
        loop = self._loop
        if loop is None or self._closed or not self._sockets:
            return
        text = encode(address, args)
        if threading.get_ident() == self._loop_thread:
            self._broadcast(text)
            return
        try:
            loop.call_soon_threadsafe(self._broadcast, text)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _notice(self, address: str, args: list) -> None:
        """A notice to every page, from the loop's thread."""
        self._broadcast(encode(address, args))

    def _broadcast(self, text: str) -> None:
        for sock in list(self._sockets):
            sock.push(text)

    def _send(self, sock: _Socket, text: str) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        if threading.get_ident() == self._loop_thread:
            sock.push(text)
            return
        try:
            loop.call_soon_threadsafe(sock.push, text)
        except RuntimeError:
            pass

    # -- HTTP ----------------------------------------------------------------------------

    def _authorised(self, request: Request, query: dict) -> bool:
        if self.token is None:
            # Without a token (this machine only) the page must be asked for by a loopback
            # name: a site whose name an attacker points at 127.0.0.1 (DNS rebinding) is
            # not this page's origin.
            host = urlsplit("//" + _one(request.headers, "Host")).hostname or ""
            return is_loopback(host)
        given = query.get("token", [""])[0] or _cookie(request.headers, COOKIE)
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = parse_qs(parts.query)
        if not self._authorised(request, query):
            self.refused += 1
            return connection.respond(http.HTTPStatus.FORBIDDEN, "403 Forbidden: this page needs the "
                                      "token printed by promptsynth play (the whole URL)\n")
        if parts.path == "/ws":
            origins = request.headers.get_all("Origin")
            if origins and (len(origins) > 1 or urlsplit(origins[0]).netloc != _one(request.headers, "Host")):
                # Another site's page in the player's browser must not play the host.
                self.refused += 1
                return connection.respond(http.HTTPStatus.FORBIDDEN, "403 Forbidden: another site's page\n")
            if len(self._sockets) >= MAX_SOCKETS:
                return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE,
                                          f"503: at most {MAX_SOCKETS} pages at once\n")
            return None
        found = self._files.get(parts.path)
        if found is None:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "404 Not Found\n")
        body, kind = found
        headers = Headers([
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            ("Content-Security-Policy", _CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ])
        if self.token is not None and parts.path == "/":
            # The page's own files and socket carry the token from here on.
            headers["Set-Cookie"] = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        return Response(200, "OK", headers, body)

    # -- the socket ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        sock = _Socket(ws)
        self._sockets.add(sock)
        drain = asyncio.create_task(sock.drain())
        loop = asyncio.get_running_loop()
        reply = WebReply(self, sock)
        try:
            for address, args in await loop.run_in_executor(self._pool, self.hello):
                sock.push(encode(address, args))
            # A token bucket: MAX_MESSAGES_PER_S a second, bursts of 10 ms' worth; a
            # sleep that overshoots costs no tokens.
            burst = MAX_MESSAGES_PER_S / 100
            tokens, last = burst, time.monotonic()
            async for frame in ws:
                now = time.monotonic()
                tokens = min(burst, tokens + (now - last) * MAX_MESSAGES_PER_S)
                last = now
                if tokens < 1.0:
                    await asyncio.sleep((1.0 - tokens) / MAX_MESSAGES_PER_S + 0.005)
                    now = time.monotonic()
                    tokens = min(burst, tokens + (now - last) * MAX_MESSAGES_PER_S)
                    last = now
                tokens -= 1.0
                self.messages += 1
                try:
                    address, args = decode(frame)
                except MessageError as exc:
                    reply.fail(exc.address, exc.reason)
                    continue
                if address in _SLOW:  # awaited: a socket's messages apply in order
                    await loop.run_in_executor(self._pool, self._dispatch, address, args, reply)
                else:
                    self._dispatch(address, args, reply)
        except ConnectionClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - one page's trouble never stops the server
            self.errors += 1
            self.last_error = repr(exc)
        finally:
            self._sockets.discard(sock)
            drain.cancel()

    def _dispatch(self, address: str, args: list, reply: WebReply) -> None:
        """One message: checked by the address space, then applied."""
        if address in REPLY_ADDRESSES:
            reply.fail(address, "is a reply the host sends, not a message it takes")
            return
        if address in _NOT_HERE:
            reply.fail(address, _NOT_HERE[address])
            return
        try:
            actions = self.router(address, args, reply)
            for action in actions:
                action(None)
        except Refused as exc:
            reply.fail(exc.address or address, exc.reason)
        except Exception as exc:  # noqa: BLE001 - a bug answers /fail and is counted
            self.errors += 1
            self.last_error = repr(exc)
            reply.fail(address, f"internal error: {exc!r}")


def _one(headers: Headers, name: str) -> str:
    """The header's value; "" where it is missing or given twice."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else ""


def _cookie(headers: Headers, name: str) -> str:
    for header in headers.get_all("Cookie"):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
    return ""


def _this_host() -> str:
    import socket

    return socket.gethostname()

