"""The OSC layer without audio: argument checks, all-or-nothing bundles, timetag frames,
and that no packet, however malformed, escapes the server thread as an exception."""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc import osc_message

from engine import Engine, KeyTable
from server.addresses import AddressSpace
from server.gateway import ModelGateway
from server.osc import OscServer
from server.oscargs import Arg, ArgError, parse_args
from server.routing import Folders
from server.scheduler import Clock, Scheduler
from server.state import ChannelStates
from server.status import HostStatus
from tests.server.conftest import bundle, message

SR = 48000


class FakeOutput:
    """frame_at as AudioOutput's, on a clock the test moves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.blocksize = 128
        self.underflows = 0
        self.cpu_load = 0.0
        self.latency_ms = 2.7
        self.ahead_ms = 4.0
        self.ring_underruns = 0
        self.device_underflows = 0
        self.active = False
        self.t0 = time.monotonic()
        self.skew = 1.0

    def headroom_ms(self):
        return {"min": 3.0}

    def frame_at(self, when=None):
        t = time.monotonic() if when is None else when
        return int(round((t - self.t0) * SR * self.skew)) + self.blocksize


class RecordingChannels(ChannelStates):
    """The host's real channel state, noting each patch applied."""

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.applied: list[tuple] = []

    def apply(self, channel, table, label, prompt=None, frame=None):
        super().apply(channel, table, label, prompt, frame)
        self.applied.append((channel, label, frame))


class FakeHost:
    """The collaborators a host gives its address space: an offline engine, the real
    channel states, bank, model gateway (no model) and status source."""

    def __init__(self, tmp) -> None:
        from patches import Bank

        self.engine = Engine(SR, 32)
        self.output = FakeOutput(self.engine)
        self.bank = Bank(tmp / "bank")
        self.channels = RecordingChannels(self.engine)
        self.applied = self.channels.applied
        self.model = ModelGateway(self.channels, "no model: test")
        self.status = HostStatus(self.engine, self.output, self.model)
        self.folders = Folders()
        self.scheduled = []

    def address_space(self) -> AddressSpace:
        return AddressSpace(
            self.engine, self.channels, bank=self.bank, model=self.model, status=self.status, folders=self.folders
        )


@pytest.fixture
def rig(tmp_path):
    host = FakeHost(tmp_path)
    server = OscServer(
        host.address_space(), lambda when, actions: host.scheduled.append((when, actions)), port=0
    )
    host.osc = host.status.osc = server
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(1.0)
    yield host, server, client
    client.close()
    server.close()


def replies(client) -> list[tuple[str, list]]:
    out = []
    client.settimeout(0.05)
    while True:
        try:
            data, _ = client.recvfrom(65536)
        except (TimeoutError, OSError):
            return out
        m = osc_message.OscMessage(data)
        out.append((m.address, list(m.params)))


def test_arg_checks_name_the_argument_and_range():
    spec = (Arg("pitch", "int", 0, 127), Arg("channel", "channel", default=0))
    assert parse_args(spec, [60.0]) == [60, 0]
    assert parse_args(spec, [60, 16.0]) == [60, 15]
    for bad, words in [
        ([128], "pitch must be an int in range 0..127, got 128"),
        ([1, 0], "channel must be an int in range 1..16"),
        ([True], "pitch must be an int"),
        ([float("nan")], "got nan"),
        ([], "takes pitch [channel]"),
    ]:
        with pytest.raises(
            ArgError, match=words.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
        ):
            parse_args(spec, bad)


def test_refused_messages_queue_nothing(rig):
    host, server, client = rig
    sender = client.getsockname()
    before = host.engine.queue.pending_in_ring()
    for data in [
        message("/note", 60, 128),
        message("/param/sustain", 2.0),
        message("/cc", 1, 2, 3, 4),
        message("/bend", float("inf")),
        message("/fnote", 5.0, 100.0),
    ]:
        server.handle_packet(data, sender)
    assert host.engine.queue.pending_in_ring() == before
    got = replies(client)
    assert [a for a, _ in got] == ["/fail"] * 5
    assert got[0][1] == ["/note", "velocity must be an int in range 0..127, got 128"]
    assert got[4][1] == ["/fnote", "hz must be a number in range 8..20000, got 5"]


def test_a_bundle_is_all_or_nothing(rig):
    host, server, client = rig
    server.handle_packet(
        bundle(0, message("/note", 60, 100), message("/note", 61, 100, 17)), client.getsockname()
    )
    assert host.engine.queue.pending_in_ring() == 0
    ((addr, params),) = replies(client)
    assert addr == "/fail" and params[0] == "/note" and "whole bundle" in params[1]
    server.handle_packet(
        bundle(0, message("/note", 60, 100), message("/note", 61, 100, 16)), client.getsockname()
    )
    assert host.engine.queue.pending_in_ring() == 2


def test_future_bundles_go_to_the_scheduler_past_ones_apply_now(rig):
    host, server, client = rig
    future = time.time() + 5
    server.handle_packet(bundle(future, message("/note", 60, 100)), client.getsockname())
    assert len(host.scheduled) == 1 and host.scheduled[0][0] == pytest.approx(future, abs=1e-6)
    assert host.engine.queue.pending_in_ring() == 0
    server.handle_packet(bundle(time.time() - 5, message("/note", 60, 100)), client.getsockname())
    assert host.engine.queue.pending_in_ring() == 1


def test_program_and_patch_load_use_the_bank(rig):
    from patches import Patch

    host, server, client = rig
    host.bank.save(Patch("keys", KeyTable.flat({"mod_ratio": 3.0})))
    server.handle_packet(message("/program", 0, 2), client.getsockname())
    server.handle_packet(message("/patch/load", "keys", 3), client.getsockname())
    assert host.applied == [(1, "keys", None), (2, "keys", None)]
    assert ("/patch/loaded", ["keys", 3]) in replies(client)


def test_clock_keeps_timetag_spacing_exact_and_reanchors_on_drift():
    engine = Engine(SR, 4)
    out = FakeOutput(engine)
    clock = Clock(out)
    t = time.time()
    f0 = clock.frame_for(t + 1.0)
    for k in range(1, 200):
        dt = k * 37 / SR  # a whole number of samples apart: exactly that many frames
        assert clock.frame_for(t + 1.0 + dt) - f0 == k * 37
    out.skew = 1.5  # the audio clock runs away from the wall clock
    out.t0 -= 1.0
    clock.frame_for(t)
    assert clock.reanchors == 1



def test_clock_places_ntp_timetags_by_their_exact_value():
    """Timetags as bundles carry them (NTP, 2**-32 s) land exactly as many frames apart
    as their NTP values lie on the sample grid, even where their float seconds (good to
    ~0.2 us at today's dates) would round the other way: 2,000 pairs 50 ms apart, from
    starts spread over a frame, the float rounding against the anchor flipped some."""
    from server.oscparse import Timetag

    engine = Engine(SR, 4)
    clock = Clock(FakeOutput(engine))
    base = (int(time.time()) + 2208988800 + 1) << 32
    step = round(0.05 * 2**32)
    for i in range(2000):
        a = base + i * (2**32 // (SR * 2000)) * 1000 + 7 * i
        b = a + step
        grid_a, grid_b = ((x * SR + (1 << 31)) >> 32 for x in (a, b))
        fa, fb = clock.frame_for(Timetag.from_ntp(a)), clock.frame_for(Timetag.from_ntp(b))
        assert fb - fa == grid_b - grid_a, i
        assert grid_b - grid_a in (2400, 2401)

def test_scheduler_runs_actions_in_time_order_with_their_frame():
    s = Scheduler(lead_s=0.0)
    got = []
    now = time.time()
    s.at(now + 0.2, 20, [lambda f: got.append(("b", f))])
    s.at(now + 0.1, 10, [lambda f: got.append(("a", f)), lambda f: 1 / 0])
    time.sleep(0.4)
    s.close()
    s.close()
    assert got == [("a", 10), ("b", 20)] and s.errors == 1


_atoms = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    # Surrogates are no text: no OSC client can encode them in UTF-8.
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
    st.booleans(),
    st.none(),
    st.binary(min_size=1, max_size=8),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    address=st.sampled_from(
        [
            "/prompt",
            "/note",
            "/note/off",
            "/cc",
            "/bend",
            "/program",
            "/param/sustain",
            "/patch/load",
            "/patch/save",
            "/bank/next",
            "/bank/prev",
            "/morph",
            "/sync",
            "/notify",
            "/nope",
        ]
    ),
    args=st.lists(_atoms, max_size=5),
    junk=st.binary(max_size=40),
)
def test_no_packet_escapes_as_an_exception(rig, address, args, junk):
    host, server, client = rig
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    server.handle_packet(b.build().dgram, client.getsockname())
    server.handle_packet(junk, client.getsockname())
    server.handle_packet(b"#bundle\x00" + junk, client.getsockname())
    assert server.errors == 0


def test_velocity_curve_by_name_or_exponent_and_clear_refusals(rig):
    host, server, client = rig
    sender = client.getsockname()
    server.handle_packet(message("/velocity/curve", "hard"), sender)
    server.handle_packet(message("/velocity/exponent", 1.0), sender)
    assert host.engine.queue.pending_in_ring() == 2
    assert replies(client) == [("/velocity/curve.reply", [2.5]), ("/velocity/curve.reply", [1.0])]
    for data in [message("/velocity/curve", "loud"), message("/velocity/exponent", 9.0),
                 message("/velocity/exponent", float("nan")), message("/velocity/curve", 2)]:
        server.handle_packet(data, sender)
    assert host.engine.queue.pending_in_ring() == 2  # nothing queued for those
    got = replies(client)
    assert [a for a, _ in got] == ["/fail"] * 4
    assert got[0][1] == ["/velocity/curve", "velocity curve must be soft, linear, medium, hard or an "
                         "exponent in range 0.25..4, got 'loud'"]
    assert got[1][1] == ["/velocity/exponent", "exponent must be a number in range 0.25..4, got 9"]


def test_tunings_from_the_tuning_folder_only_and_bad_files_change_nothing(rig, tmp_path):
    import shutil
    from pathlib import Path

    host, server, client = rig
    sender = client.getsockname()
    host.folders.tuning_dir = None
    server.handle_packet(message("/tuning/scl", "19edo.scl"), sender)
    assert replies(client) == [("/fail", ["/tuning/scl", "the host was started without --tuning-dir DIR: "
                                          ".scl and .kbm files are read from that folder only"])]
    folder = tmp_path / "tunings"
    folder.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "tuning" / "19edo.scl", folder)
    (folder / "broken.scl").write_text("desc\n 2\n 100.0\n two hundred\n")
    host.folders.tuning_dir = str(folder)
    for data in [message("/tuning/scl", "broken.scl"), message("/tuning/scl", "../19edo.scl"),
                 message("/tuning/scl", "none.scl"), message("/tuning/scl", "19edo.scl", "none.kbm")]:
        server.handle_packet(data, sender)
    assert host.engine.queue.pending_in_ring() == 0  # the tuning in use stays
    got = replies(client)
    assert [p[1] for _, p in got] == [
        "broken.scl, line 4: expected a pitch (cents with a '.', like 701.955, or a ratio, like 3/2), got 'two hundred'",
        "file must be inside the --tuning-dir folder, got '../19edo.scl'",
        "no file 'none.scl' in the --tuning-dir folder",
        "no file 'none.kbm' in the --tuning-dir folder",
    ]
    server.handle_packet(message("/tuning/scl", "19edo.scl"), sender)
    server.handle_packet(message("/tuning/reset"), sender)
    assert replies(client) == [("/tuning.reply", ["19edo.scl"]), ("/tuning.reply", ["equal temperament"])]
    assert host.engine.queue.pending_in_ring() == 2 * 65
