"""`promptsynth play --web` on JACK: the page's socket speaks the host's own address space
(the same checks and replies as OSC), hears changes made over OSC, and, off this machine,
refuses every request and socket without the token."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

import mido
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine import TIMBRE_NAMES
from engine.effects import BUSES, EFFECT_SETTINGS
from tests.server.conftest import HostProcess, OscClient
from tests.server.test_play_midi import open_out

pytestmark = [pytest.mark.jack]

N_TIMBRE = len(TIMBRE_NAMES)
N_FX = len(EFFECT_SETTINGS)
#: /status.reply: 16 host fields, the effect settings, then 16 sends per bus (docs/osc.md).
N_STATUS = 16 + N_FX + 16 * len(BUSES)
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
            assert len(status) == N_STATUS and status[3] == 48000
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
        # Its stderr is read on a thread of its own: the warning may come after the ready line.
        deadline = time.monotonic() + 5
        while "the page listens on 0.0.0.0" not in "".join(host.stderr) and time.monotonic() < deadline:
            time.sleep(0.05)
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
            assert len(until(ws, "/status.reply")) == N_STATUS
    finally:
        assert host.stop() == 0


def send_at(bus: str, channel: int) -> int:
    """Where ``bus``'s send of ``channel`` (1-16) is in ``/web/effects``."""
    return N_FX + 16 * BUSES.index(bus) + channel - 1


def test_the_pages_effects_follow_the_host_from_anywhere(jack, tmp_path):
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--web", "0",
                        "--midi-virtual", MIDI_PORT, "--delay-send", "0.25"])
    osc = OscClient(host.port)
    try:
        with connect(web_url(host).replace("http://", "ws://") + "ws") as ws:
            # On connect: what each knob sends, its range and unit, and the values now.
            sends, settings, values = [], [], None
            while (m := json.loads(ws.recv(timeout=10)))["address"] != "/web/ready":
                if m["address"] == "/web/send":
                    sends.append(m["args"])
                elif m["address"] == "/web/effect":
                    settings.append(m["args"])
                elif m["address"] == "/web/effects":
                    values = m["args"]
            assert [a[0] for a in sends] == [f"/send/{b}" for b in BUSES]
            assert [a[0] for a in settings] == [s.address for s in EFFECT_SETTINGS]
            assert settings[EFFECT_SETTINGS.index(next(s for s in EFFECT_SETTINGS if s.name == "chorus_rate"))][4:7] \
                == ["Hz", 0.0, 20.0]
            assert len(values) == N_FX + 48
            assert values[:N_FX] == pytest.approx([s.default for s in EFFECT_SETTINGS])
            assert values[send_at("delay", 9)] == pytest.approx(0.25)  # --delay-send: every channel

            # A send and a setting from the page reach the host (/status over OSC says so).
            ws.send(json.dumps({"address": "/send/reverb", "args": [0.4, 3]}))
            ws.send(json.dumps({"address": "/fx/reverb/room", "args": [0.8]}))
            assert until(ws, "/fx/reverb/room.reply") == [pytest.approx(0.8)]
            status = osc.ask("/status", reply="/status.reply")
            assert len(status) == N_STATUS
            assert status[16 + send_at("reverb", 3)] == pytest.approx(0.4)
            assert status[16] == pytest.approx(0.8)  # reverb_room, the first setting
            ws.send(json.dumps({"address": "/send/chorus", "args": [1.5, 3]}))
            assert "level must be a number in range 0..1, got 1.5" in until(ws, "/fail", lambda a: a[0] == "/send/chorus")[1]

            # Changes made elsewhere reach the page as a notice, without it asking.
            osc.send("/send/reverb", 0.6, 4)
            got = until(ws, "/web/effects", lambda a: a[send_at("reverb", 4)] == pytest.approx(0.6), timeout=2)
            assert got[send_at("reverb", 3)] == pytest.approx(0.4)
            osc.send("/fx/delay/time", 0.5)
            until(ws, "/web/effects", lambda a: a[N_FX - 3] == pytest.approx(0.5), timeout=2)
            out = open_out(MIDI_PORT)  # a MIDI keyboard's CC 91 (reverb send) on channel 5
            try:
                out.send(mido.Message("control_change", channel=4, control=91, value=64))
                until(ws, "/web/effects", lambda a: a[send_at("reverb", 5)] == pytest.approx(64 / 127), timeout=2)
            finally:
                out.close()
        assert host.proc.poll() is None
    finally:
        osc.close()
        assert host.stop() == 0
