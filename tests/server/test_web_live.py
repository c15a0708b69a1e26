"""`promptsynth play --web` on JACK: the page's socket speaks the host's own address space
(the same checks and replies as OSC), hears changes made over OSC, and, off this machine,
refuses every request and socket without the token."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import mido
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine import TIMBRE_NAMES
from tests.server.conftest import HostProcess, OscClient
from tests.server.test_play_midi import open_out

pytestmark = [pytest.mark.jack]

N_TIMBRE = len(TIMBRE_NAMES)
MIDI_PORT = "ps-web-in"


def web_url(host: HostProcess) -> str:
    m = re.search(r"\| web (http://\S+)", host.ready_line)
    assert m, host.ready_line
    return m.group(1)


def until(ws, address: str, where=None, timeout: float = 10.0) -> list:
    while True:
        m = json.loads(ws.recv(timeout=timeout))
        if m["address"] == address and (where is None or where(m["args"])):
            return m["args"]


def test_the_page_speaks_the_address_space_and_hears_osc_changes(jack, tmp_path):
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--web", "0",
                        "--midi-virtual", MIDI_PORT])
    osc = OscClient(host.port)
    try:
        url = web_url(host)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url)  # no token on this machine alone
        ws_url = url.replace("http://", "ws://") + "ws"
        with connect(ws_url) as ws:
            # First: the parameters (the knobs) and every channel's patch.
            params = []
            while (m := json.loads(ws.recv(timeout=10)))["address"] != "/web/ready":
                if m["address"] == "/web/param":
                    params.append(m["args"][0])
            assert params == list(TIMBRE_NAMES)

            # The same checks and replies as OSC.
            ws.send(json.dumps({"address": "/note", "args": [200, 100]}))
            assert until(ws, "/fail") == ["/note", "pitch must be an int in range 0..127, got 200"]
            ws.send(json.dumps({"address": "/param/attack_s", "args": [99.0, 2]}))
            assert "attack_s must be in range 0..2, got 99" in until(ws, "/fail")[1]
            ws.send(json.dumps({"address": "/note", "args": [60, 100, 3]}))
            ws.send(json.dumps({"address": "/sync", "args": [1]}))
            assert until(ws, "/synced") == [1]
            ws.send(json.dumps({"address": "/status"}))
            status = until(ws, "/status.reply")
            assert len(status) == 16 and status[3] == 48000
            assert osc.ask("/status", reply="/status.reply")[0] >= 1  # the page's note sounds
            ws.send(json.dumps({"address": "/panic"}))

            # A change made over OSC (a bank patch, a program change as from MIDI) reaches
            # the page as the notice OSC's notify targets get.
            osc.send("/patch/load", "cello", 5)
            changed = until(ws, "/patch/changed", where=lambda a: a[0] == 5)
            assert changed[1] == "cello" and len(changed) == 2 + N_TIMBRE + 1
            osc.send("/program", 0, 6)
            assert until(ws, "/patch/changed", where=lambda a: a[0] == 6)[1]
            # And a program change from a MIDI keyboard (JACK MIDI, another process's port).
            out = open_out(MIDI_PORT)
            try:
                out.send(mido.Message("program_change", channel=6, program=4))
                assert until(ws, "/patch/changed", where=lambda a: a[0] == 7)[1] == "electric piano"
            finally:
                out.close()

            # The page's /param is the channel's state for everyone: a new page sees it.
            ws.send(json.dumps({"address": "/param/mod_index", "args": [3, 5]}))
            ws.send(json.dumps({"address": "/sync", "args": [7]}))
            assert until(ws, "/synced") == [7]
        with connect(ws_url) as ws2:
            ch5 = until(ws2, "/patch/changed", where=lambda a: a[0] == 5)
            assert ch5[2 + TIMBRE_NAMES.index("mod_index")] == pytest.approx(3.0)
        assert host.proc.poll() is None
    finally:
        osc.close()
        assert host.stop() == 0


def test_off_this_machine_every_request_and_socket_needs_the_token(jack, tmp_path):
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--web", "0",
                        "--web-host", "0.0.0.0"])
    try:
        url = web_url(host)
        m = re.fullmatch(r"http://[^:/]+:(\d+)/\?token=([\w-]{16,})", url)
        assert m, url
        port, token = m.groups()
        # Printed once: on the ready line, nowhere else.
        assert token not in "".join(host.stderr)
        assert "the page listens on 0.0.0.0" in "".join(host.stderr)
        base = f"http://127.0.0.1:{port}"
        for path in ("/", "/app.js", "/ui.js", "/style.css", "/ws", "/?token=nope"):
            with pytest.raises(urllib.error.HTTPError, match="403"):
                urllib.request.urlopen(base + path, timeout=5)
        with pytest.raises(InvalidStatus, match="403"):
            connect(f"ws://127.0.0.1:{port}/ws")
        with urllib.request.urlopen(f"{base}/?token={token}", timeout=5) as r:
            assert r.status == 200
        with connect(f"ws://127.0.0.1:{port}/ws?token={token}") as ws:
            ws.send(json.dumps({"address": "/status"}))
            assert len(until(ws, "/status.reply")) == 16
    finally:
        assert host.stop() == 0
