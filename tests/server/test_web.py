"""The page's server on its own (no JACK, no host): its files, the token, its messages
checked and routed, notices to every page, and the bounds a flood meets."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect

from server.osc import Refused
from server.web import MessageError, Watch, WebServer, decode
from server.web.server import MAX_FRAME_BYTES, MAX_QUEUED, MAX_SOCKETS

TOKEN = "s3cret-token"


class Router:
    """A small address space: /echo answers its arguments, /boom is a bug, the rest is
    unknown."""

    addresses = ["/echo", "/boom"]

    def __init__(self) -> None:
        self.seen: list[tuple[str, list]] = []

    def __call__(self, address, args, reply):
        self.seen.append((address, args))
        if address == "/echo":
            return [lambda f: reply.send("/echo.reply", *args)]
        if address == "/boom":
            raise ZeroDivisionError("a bug")
        raise Refused(address, "unknown address; see docs/osc.md")


@pytest.fixture
def server():
    s = WebServer(Router(), lambda: [("/web/ready", [16, 2])], "127.0.0.1", 0).start()
    yield s
    s.close()


@pytest.fixture
def guarded():
    s = WebServer(Router(), lambda: [("/web/ready", [16, 2])], "127.0.0.1", 0, token=TOKEN).start()
    yield s
    s.close()


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def recv(ws) -> dict:
    return json.loads(ws.recv(timeout=5))


def until(ws, address: str) -> list:
    while True:
        m = recv(ws)
        if m["address"] == address:
            return m["args"]


def until_changed(ws, address: str, old: list) -> list:
    """The next ``address`` message whose values are not ``old``."""
    while (got := until(ws, address)) == old:
        pass
    return got


def test_the_page_and_its_files_come_from_the_host(server):
    base = f"http://127.0.0.1:{server.port}"
    status, headers, body = get(base + "/")
    assert status == 200 and b"<title>promptsynth</title>" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name in ("/app.js", "/ui.js", "/effects.js", "/style.css", "/favicon.svg"):
        assert get(base + name)[0] == 200
    assert get(base + "/../pyproject.toml")[0] == 404
    assert get(base + "/nothing")[0] == 404
    # Nothing on the page comes from anywhere but the host.
    for name in ("/", "/app.js", "/ui.js", "/effects.js", "/style.css"):
        text = get(base + name)[2].decode().replace('"http://www.w3.org/2000/svg"', "")  # a name, not a fetch
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_messages_go_through_the_router_and_bad_ones_get_a_clear_fail(server):
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        assert until(ws, "/web/ready") == [16, 2]
        ws.send(json.dumps({"address": "/echo", "args": ["a soft flute", 1, 0.5]}))
        assert until(ws, "/echo.reply") == ["a soft flute", 1, 0.5]
        cases = {
            "not json": ("", "cannot parse message as JSON"),
            "[1, 2]": ("", "must be a JSON object"),
            '{"args": []}': ("", "address must be a string starting with /, got null"),
            '{"address": "/echo", "args": 3}': ("/echo", "args must be a list, got int 3"),
            '{"address": "/echo", "args": [true]}': ("/echo", "argument 1 must be a string or a number, got true"),
            '{"address": "/echo", "args": [[1]]}': ("/echo", "argument 1 must be a string or a number, got a list of 1"),
            '{"address": "/echo", "args": [NaN]}': ("", "NaN is not a number a message may carry"),
            '{"address": "/echo", "colour": 1}': ("/echo", "unknown field(s) colour"),
            '{"address": "/nope"}': ("/nope", "unknown address"),
            '{"address": "/boom"}': ("/boom", "internal error: ZeroDivisionError('a bug')"),
            '{"address": "/notify", "args": [9000]}': ("/notify", "every change notice already"),
            '{"address": "/fail", "args": ["x", "y"]}': ("/fail", "is a reply the host sends"),
        }
        for frame, (address, reason) in cases.items():
            ws.send(frame)
            fail = until(ws, "/fail")
            assert fail[0] == address and reason in fail[1], (frame, fail)
        ws.send(b"\x00\x01")
        assert "binary frame" in until(ws, "/fail")[1]
        ws.send("[" * 30_000 + "]" * 30_000)  # deeper than the parser's stack
        assert "cannot parse" in until(ws, "/fail")[1]
        ws.send(json.dumps({"address": "/echo", "args": ["still here"]}))
        assert until(ws, "/echo.reply") == ["still here"]
    assert server.errors == 1  # the /boom bug, counted; nothing else went wrong
    # A frame over the limit closes that socket (1009, message too big); the server goes on.
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        until(ws, "/web/ready")
        ws.send(json.dumps({"address": "/echo", "args": ["x" * MAX_FRAME_BYTES]}))
        with pytest.raises(ConnectionClosedError, match="1009"):
            until(ws, "/echo.reply")
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        until(ws, "/web/ready")


def test_a_change_notice_reaches_every_page(server):
    url = f"ws://127.0.0.1:{server.port}/ws"
    with connect(url) as a, connect(url) as b:
        until(a, "/web/ready")
        until(b, "/web/ready")
        server.notify("/patch/changed", 3, "a soft flute", 0.1, float("nan"), "Flute")
        for ws in (a, b):
            assert until(ws, "/patch/changed") == [3, "a soft flute", 0.1, None, "Flute"]


def test_a_watched_state_is_told_to_every_page_when_it_changes():
    state = [0.0, 0.5]
    watch = Watch("/web/effects", lambda: list(state), period_s=0.002)
    with WebServer(Router(), lambda: [("/web/ready", [16, 2])], "127.0.0.1", 0, watches=(watch,)) as s:
        with connect(f"ws://127.0.0.1:{s.port}/ws") as a, connect(f"ws://127.0.0.1:{s.port}/ws") as b:
            assert until(a, "/web/effects") == [0.0, 0.5]  # the first read, once a page is open
            state[0] = 0.4
            t0 = time.monotonic()
            # (the first read may reach a page twice, or the second page too, depending on
            # when it opened: the change follows it)
            assert until_changed(a, "/web/effects", [0.0, 0.5]) == [0.4, 0.5]
            assert time.monotonic() - t0 < 0.5
            assert until_changed(b, "/web/effects", [0.0, 0.5]) == [0.4, 0.5]
            time.sleep(0.05)
            assert watch.notices == 2  # no change, no notice
            watch.read = lambda: 1 / 0  # a read that raises: counted, and the watch goes on
            time.sleep(0.03)
            assert watch.errors > 0 and "ZeroDivisionError" in watch.last_error
            watch.read = lambda: [0.9, 0.5]
            assert until(a, "/web/effects") == [0.9, 0.5]
    assert watch.notices == 3


def test_the_effects_are_told_with_the_ranges_the_address_space_checks():
    from engine.effects import BUSES, EFFECT_SETTINGS
    from server.web import effect_messages

    rows = effect_messages()
    assert [a for m, a in rows if m == "/web/send"] == [[f"/send/{b}", b, 0.0, 1.0, 0.0] for b in BUSES]
    settings = [a for m, a in rows if m == "/web/effect"]
    assert [a[0] for a in settings] == [s.address for s in EFFECT_SETTINGS]
    for a, s in zip(settings, EFFECT_SETTINGS):
        assert a[1:8] == [s.name, s.bus, s.key, s.unit, s.minimum, s.maximum, s.default]
        assert a[8] in ("lin", "log") and (a[8] == "lin" or a[5] > 0)  # a log knob needs min > 0


def test_without_the_token_every_request_and_socket_is_refused(guarded):
    base = f"http://127.0.0.1:{guarded.port}"
    assert guarded.url.endswith(f":{guarded.port}/?token={TOKEN}")
    for path in ("/", "/app.js", "/ui.js", "/style.css", "/ws", "/nothing", f"/?token={TOKEN}x", "/?token="):
        status, _, body = get(base + path)
        assert status == 403 and b"token" in body, path
    for path in ("/ws", "/ws?token=wrong"):
        with pytest.raises(InvalidStatus, match="403"):
            connect(f"ws://127.0.0.1:{guarded.port}{path}")
    assert guarded.refused >= 10
    # With it: the page, and a cookie that carries it for the page's own files.
    status, headers, _ = get(f"{base}/?token={TOKEN}")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert get(base + "/app.js", {"Cookie": cookie})[0] == 200
    assert get(base + "/app.js", {"Cookie": cookie + "x"})[0] == 403
    with connect(f"ws://127.0.0.1:{guarded.port}/ws?token={TOKEN}") as ws:
        assert until(ws, "/web/ready") == [16, 2]


def test_another_sites_page_cannot_open_the_socket(server):
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"ws://127.0.0.1:{server.port}/ws", origin="http://evil.example")
    with connect(f"ws://127.0.0.1:{server.port}/ws", origin=f"http://127.0.0.1:{server.port}") as ws:
        until(ws, "/web/ready")


def test_on_this_machine_alone_only_a_loopback_name_gets_the_page(server):
    # A name an attacker's DNS points at 127.0.0.1 (rebinding) is not the page's origin.
    base = f"http://127.0.0.1:{server.port}"
    assert get(base + "/", {"Host": f"localhost:{server.port}"})[0] == 200
    assert get(base + "/", {"Host": f"evil.example:{server.port}"})[0] == 403
    for host in ("evil.example", f"evil.example:{server.port}"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as c:
            c.sendall(f"GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n".encode())
            assert c.recv(100).startswith(b"HTTP/1.1 403"), host
    # Two Host headers: refused, not a crash.
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers={"Host": "localhost"})


def test_sockets_are_bounded(server):
    url = f"ws://127.0.0.1:{server.port}/ws"
    with contextlib.ExitStack() as stack:
        for _ in range(MAX_SOCKETS):
            until(stack.enter_context(connect(url)), "/web/ready")
        with pytest.raises(InvalidStatus, match="503"):
            connect(url)


def test_a_page_that_floods_and_never_reads_grows_nothing_and_starves_no_one(server):
    url = f"ws://127.0.0.1:{server.port}/ws"
    flood = connect(url).__enter__()
    stop = threading.Event()
    sent = [0]

    def send_forever():
        # Replies of 8 kB: the socket's buffers fill within a second.
        frame = json.dumps({"address": "/echo", "args": ["x" * 8000]})
        try:
            while not stop.is_set():
                flood.send(frame)
                sent[0] += 1
        except Exception:  # noqa: BLE001 - closed at the end
            pass

    t = threading.Thread(target=send_forever, daemon=True)
    t.start()
    try:
        with connect(url) as page:
            until(page, "/web/ready")
            time.sleep(2.0)
            worst = 0.0
            for i in range(10):
                t0 = time.monotonic()
                page.send(json.dumps({"address": "/echo", "args": [i]}))
                assert until(page, "/echo.reply") == [i]
                worst = max(worst, time.monotonic() - t0)
            assert worst < 0.5, f"the page waited {worst:.3f} s behind the flood"
        # The flooder's replies wait in a bounded queue; the rest were dropped.
        socks = list(server._sockets)
        assert all(s.queue.qsize() <= MAX_QUEUED for s in socks)
        assert server.dropped > 0
        # Handled at most at the limit (5000 a second), not as fast as it came.
        assert server.messages < 5000 * 3.5, server.messages
    finally:
        stop.set()
        flood.close()
        t.join(timeout=5)


def test_close_is_safe_twice():
    s = WebServer(Router(), lambda: [], "127.0.0.1", 0).start()
    s.close()
    s.close()


def test_a_port_in_use_is_a_clear_error(server):
    with pytest.raises(OSError, match=f"cannot serve the page on 127.0.0.1:{server.port}"):
        WebServer(Router(), lambda: [], "127.0.0.1", server.port).start()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=50),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                              lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                              max_leaves=20).map(json.dumps)))
def test_decode_takes_any_frame_or_says_what_is_wrong(frame):
    try:
        address, args = decode(frame)
    except MessageError as exc:
        assert exc.reason
        return
    assert address.startswith("/") and isinstance(args, list)


def test_play_refuses_a_web_port_out_of_range():
    import subprocess
    import sys

    from tests.server.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "server", "play", "--no-model", "--web", "70000"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "--web must be a port in range 0..65535, got 70000" in r.stderr
