# ruff: noqa: F811 - the tests take the imported fixture rig as their argument
"""The bank's next and previous patch (issue 32): ``/bank/next`` and ``/bank/prev`` over
real UDP, the MIDI input's mapped controllers (``play --bank-next-cc``, ``--bank-prev-cc``)
through the same route table, and, in a live host under JACK, a button's CC in real JACK
MIDI bytes, OSC and the page's socket stepping one list together, in both render modes."""

from __future__ import annotations

import json

import pytest

from engine import KeyTable
from server.addresses import AddressSpace
from server.osc import Refused
from tests.server.conftest import HostProcess, OscClient, message
from tests.server.test_osc_unit import replies, rig  # noqa: F401 - rig: the fixture

NAMES = ("alto", "bass", "cello")


def _fill(bank) -> None:
    from patches import Patch

    for i, name in enumerate(NAMES):
        bank.save(Patch(name, KeyTable.flat({"mod_ratio": 1.0 + i})))


def _step(server, client, address: str, *args) -> list:
    server.handle_packet(message(address, *args), client.getsockname())
    return replies(client)


def test_next_and_prev_step_round_the_list_from_the_channels_last_bank_patch(rig):
    host, server, client = rig
    _fill(host.bank)
    assert _step(server, client, "/bank/next", 2) == [("/patch/loaded", ["alto", 2])]
    assert _step(server, client, "/bank/next", 2) == [("/patch/loaded", ["bass", 2])]
    assert _step(server, client, "/bank/prev", 2) == [("/patch/loaded", ["alto", 2])]
    assert _step(server, client, "/bank/prev", 2) == [("/patch/loaded", ["cello", 2])]  # round
    # Each channel has its own place; back from none is the last.
    assert _step(server, client, "/bank/prev") == [("/patch/loaded", ["cello", 1])]
    # /patch/load and /program (a MIDI program change's way) set the place too.
    _step(server, client, "/patch/load", "alto", 2)
    assert _step(server, client, "/bank/next", 2) == [("/patch/loaded", ["bass", 2])]
    _step(server, client, "/program", 2, 2)  # the folder's patches by name: 2 is cello
    assert _step(server, client, "/bank/next", 2) == [("/patch/loaded", ["alto", 2])]
    # Words in between do not move it: the next bank patch follows the last one.
    host.channels.apply(1, KeyTable.flat(), "a reed", "a reed")
    assert _step(server, client, "/bank/next", 2) == [("/patch/loaded", ["bass", 2])]
    labels = [label for ch, label, _ in host.applied if ch == 1]
    assert labels == ["alto", "bass", "alto", "cello", "alto", "bass", "cello", "alto", "a reed", "bass"]
    # Steps in one bundle each move on from the one before.
    from tests.server.conftest import bundle

    server.handle_packet(bundle(0, message("/bank/next", 5), message("/bank/next", 5)), client.getsockname())
    assert replies(client) == [("/patch/loaded", ["alto", 5]), ("/patch/loaded", ["bass", 5])]


def test_bad_steps_fail_clearly_and_change_nothing(rig):
    host, server, client = rig
    before = host.engine.queue.pending_in_ring()
    assert _step(server, client, "/bank/next") == [
        ("/fail", ["/bank/next", "the bank has no patches: save one with /patch/save first"])
    ]
    _fill(host.bank)
    for args, reason in [
        ((17,), "channel must be an int in range 1..16, got 17"),
        (("two",), "channel must be an int in range 1..16, got str 'two'"),
        ((1.5,), "channel must be an int in range 1..16 (a whole number), got 1.5"),
        ((1, 2), "takes [channel]"),
    ]:
        ((address, (where, why)),) = _step(server, client, "/bank/prev", *args)
        assert (address, where) == ("/fail", "/bank/prev") and reason in why, why
    assert host.engine.queue.pending_in_ring() == before and host.applied == []
    space = AddressSpace(host.engine, host.channels, bank=None, bank_reason="cannot read ~/bank: denied")
    with pytest.raises(Refused, match="no patch bank: cannot read ~/bank: denied"):
        space("/bank/next", [1], None)


class _Engine:
    """What a MIDI input queues, noted."""

    def __init__(self) -> None:
        self.events = []

    def control_change(self, ch, control, value, frame=None):
        self.events.append(("cc", ch, control, value))

    def remember_control(self, ch, control, value):
        self.events.append(("remember", ch, control, value))


@pytest.mark.parametrize("in_cycle", [False, True])
def test_a_mapped_controller_press_steps_the_bank_in_both_render_modes(rig, in_cycle):
    """A press (64 or more) of a mapped controller is ``/bank/next`` (``/bank/prev``) on
    its channel, through the address space; its release and other controllers are not.
    In JACK's cycle the render process queued the CC already: the input only steps."""
    from server.midi_in import MidiInput
    from server.midimap import bank_steps

    host, server, client = rig
    _fill(host.bank)
    port = MidiInput.__new__(MidiInput)
    port.engine = _Engine()
    port.held, port.pedals, port.channels, port.errors = set(), set(), set(), 0
    port.in_cycle = in_cycle
    port.route = host.address_space().run
    port.bank_steps = bank_steps(20, 21)
    for control, value in [(20, 127), (20, 0), (20, 64), (21, 100), (21, 63), (22, 127), (21, 127)]:
        port.handle(0xB0, 3, (control, value), None)
    assert [label for ch, label, _ in host.applied] == ["alto", "bass", "alto", "cello"]
    assert {ch for ch, _, _ in host.applied} == {3}
    queued = [e for e in port.engine.events if e[0] == "cc"]
    assert len(queued) == (0 if in_cycle else 7)  # the CC itself goes on to the engine either way
    port.handle(0xC0, 3, (1,), None)  # a program change: /program, the same table
    port.handle(0xB0, 3, (20, 127), None)
    assert [label for _, label, _ in host.applied][-2:] == ["bass", "cello"]
    port.handle(0xC0, 3, (99,), None)  # no patch at 99: nothing, and no error (as before)
    assert port.errors == 0 and len(host.applied) == 6


@pytest.mark.parametrize(
    "next_cc, prev_cc, words",
    [
        (64, None, "--bank-next-cc: CC 64 is the engine's sustain; choose a controller it does not act on"),
        (None, 7, "--bank-prev-cc: CC 7 is the engine's volume"),
        (20, 123, "--bank-prev-cc: CC 123 is a channel mode message (120..127)"),
        (128, None, "--bank-next-cc must be a controller number in range 0..127, got 128"),
        (-1, None, "--bank-next-cc must be a controller number in range 0..127, got -1"),
        (20, 20, "--bank-next-cc and --bank-prev-cc must differ, both are 20"),
    ],
)
def test_bank_controllers_are_checked(next_cc, prev_cc, words):
    from server.midimap import bank_steps

    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        bank_steps(next_cc, prev_cc)
    assert dict(bank_steps(20, 21)) == {20: "/bank/next", 21: "/bank/prev"}


# -- a live host under JACK ---------------------------------------------------------------


def _until(ws, address: str, where=None, timeout: float = 10.0) -> list:
    while True:
        m = json.loads(ws.recv(timeout=timeout))
        if m["address"] == address and (where is None or where(m["args"])):
            return m["args"]


@pytest.mark.jack
@pytest.mark.parametrize("render", ["cycle", "ahead"])
def test_a_button_osc_and_the_page_step_one_list(jack, tmp_path, render):
    """Real JACK MIDI bytes from another client (a button on CC 20 and 21 of MIDI channel
    2), /bank/next over UDP and over the page's WebSocket: each step moves on from the
    one before, whoever sent it, and every change is told as /patch/changed."""
    from websockets.sync.client import connect

    from patches import Bank
    from tests.server.jackprobe import JackProbe, jack_port
    from tests.server.test_web_live import web_url

    _fill(Bank(tmp_path / "bank"))
    port = "ps-bank-steps"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--midi-virtual", port, "--render", render,
                        "--bank-next-cc", "20", "--bank-prev-cc", "21", "--web", "0"])
    osc = OscClient(host.port)
    probe = None
    try:
        osc.ask("/notify", osc.port, reply="/notify.reply")
        names = osc.ask("/patch/list", reply="/patch/list.reply")
        assert names[:3] == list(NAMES)  # the folder's own first, then the factory's
        probe = JackProbe(jack_port(f".*:{port}$", midi=True), None, name="ps-bank-probe")

        def changed() -> str:
            return osc.expect("/patch/changed", where=lambda p: p[0] == 2)[1]

        probe.send([bytes([0xB1, 20, 127])])  # pressed
        assert changed() == names[0]
        probe.send([bytes([0xB1, 20, 0])])  # released: no step
        assert osc.ask("/bank/next", 2, reply="/patch/loaded") == [names[1], 2]
        assert changed() == names[1]
        with connect(web_url(host).replace("http://", "ws://") + "ws") as ws:
            _until(ws, "/web/ready")
            ws.send(json.dumps({"address": "/bank/next", "args": [2]}))
            assert _until(ws, "/patch/loaded") == [names[2], 2]
            assert changed() == names[2]
            probe.send([bytes([0xB1, 21, 127])])  # the other button: back
            assert _until(ws, "/patch/changed", where=lambda a: a[0] == 2)[1] == names[1]
            assert changed() == names[1]
        probe.send([bytes([0xC1, 0])])  # a program change sets the place: program 0 is alto
        assert changed() == "alto"
        probe.send([bytes([0xB1, 20, 127]), bytes([0xB1, 20, 0]), bytes([0xB1, 20, 127])])
        assert [changed(), changed()] == [names[1], names[2]]
        assert osc.ask("/sync", 1, reply="/synced") == [1]
        assert not [p for a, p in osc.replies if a == "/patch/changed"], osc.replies  # nothing more
        status = osc.ask("/status", reply="/status.reply")
        assert status[10] == 0  # midi_errors
    finally:
        if probe is not None:
            probe.close()
        osc.close()
        host.stop()
