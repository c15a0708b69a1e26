"""Stage-proof OSC: more than 10,000 hostile packets against a real `promptsynth play` on
JACK. Raw malformed datagrams (each with the /fail it is owed, checked in order) and
hypothesis-generated messages; the host must stay up, answer every addressable packet,
count nothing as an internal error, underrun never, and end with no stuck note.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import XrunControl, assert_no_underruns
from tests.server.conftest import HostProcess, OscClient
from tests.server.oscfuzz import ANY, msg, raw_cases, timed_bundle

pytestmark = [pytest.mark.jack, pytest.mark.slow]

N_RAW = 7000
N_HYPOTHESIS_EXAMPLES = 160
#: Bytes in flight before the test waits for the host: the host's socket buffer (the
#: kernel's default, about 200 KB) must never overflow, or the kernel drops packets
#: before the host sees them and the reply count cannot be checked.
WINDOW_BYTES = 96_000
WINDOW_PACKETS = 128

sent = {"raw": 0, "hypothesis": 0, "fails": 0, "status": 0, "barriers": 0}


@pytest.fixture(scope="module")
def host(jack, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stage")
    # The control counts JACK's xruns over the same window as the host's underruns: the
    # host's whole life.
    control = XrunControl()
    h = HostProcess(["--no-model", "--bank", str(tmp / "bank")])
    h.tmp = tmp
    h.control = control
    yield h
    h.stop()
    control.close()


@pytest.fixture(scope="module")
def osc(host):
    c = OscClient(host.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    yield c
    c.close()


def status(osc) -> list:
    sent["status"] += 1
    return osc.ask("/status", reply="/status.reply", timeout=10)


def barrier(osc) -> list:
    """The /fail replies to everything sent so far, in order. The host handles packets in
    order on one thread and loopback UDP keeps their order, so once the /fail for a
    unique unknown address has come back, every earlier reply has too."""
    sent["barriers"] += 1
    mark = f"/test/barrier/{sent['barriers']}"
    osc.send(mark)
    osc.expect("/fail", where=lambda p: p[0] == mark)
    with osc._cond:
        fails = [p for a, p in osc.replies if a == "/fail"]
        osc.replies.clear()
    sent["fails"] += len(fails)
    return fails


def test_status_has_the_stage_fields_at_the_end(osc):
    s = status(osc)
    # voices underruns cpu sr block latency | dropped failed errors restarts midi_errors |
    # render-ahead, headroom, ring underruns, device underflows, MIDI inputs | the effects'
    # settings, then each effect's send on each of the 16 channels (docs/osc.md)
    from engine.effects import BUSES, EFFECT_SETTINGS

    assert len(s) == 16 + len(EFFECT_SETTINGS) + 16 * len(BUSES), s
    assert s[6:11] == [0, 0, 0, 0, 0]


def test_raw_malformed_datagrams_each_get_their_fail(osc, host):
    window: list = []
    size = 0

    def check():
        fails = barrier(osc)
        expected = [e for _, e in window if e is not None]
        assert len(fails) == len(expected), (
            f"{len(fails)} /fail replies for {len(expected)} bad packets: "
            f"{[(d[:40], e[:40] if e else e) for d, e in window]} -> {fails}"
        )
        for (address, reason, *_), want in zip(fails, expected):
            assert reason and "internal error" not in reason, reason
            if want == ANY:
                continue
            if len(want) <= 128:
                assert address == want, (address, want, reason)
            else:  # long addresses come back clipped
                assert address.startswith(want[:100]) and len(address) <= 128

    for data, expected in raw_cases(N_RAW):
        osc.send_raw(data)
        sent["raw"] += 1
        window.append((data, expected))
        size += len(data)
        if size > WINDOW_BYTES or len(window) >= WINDOW_PACKETS:
            check()
            window, size = [], 0
    check()
    assert host.proc.poll() is None


# -- hypothesis: well-formed OSC with any address and any arguments ----------------------

ADDRESSES = [
    "/prompt",
    "/note",
    "/note/off",
    "/cc",
    "/bend",
    "/program",
    "/param/sustain",
    "/param/release_s",
    "/param/mod_index",
    "/patch/load",
    "/patch/save",
    "/patch/list",
    "/morph",
    "/panic",
    "/status",
    "/sync",
]

_atoms = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-1, 130),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(-2, 200),
    st.text(max_size=30).filter(lambda s: "\x00" not in s),
    st.sampled_from(["../../etc/passwd", "/tmp/x", "..", "a/b", "CON", " ", "ok name", "é"]),
    st.booleans(),
    st.none(),
    st.binary(min_size=1, max_size=16),
)


def _build(address: str, args: list) -> bytes:
    types = ""
    for a in args:
        if isinstance(a, bool) or a is None:
            types += "T" if a is True else "F" if a is False else "N"
        elif isinstance(a, int):
            types += "i" if -(2**31) <= a < 2**31 else "h"
        elif isinstance(a, float):
            types += "f"
        elif isinstance(a, str):
            types += "s"
        else:
            types += "b"
    return msg(address, *args, types=types)


_messages = st.builds(
    _build,
    st.one_of(
        st.sampled_from(ADDRESSES),
        st.text(min_size=1, max_size=20).map(lambda s: "/" + s.replace("\x00", "")),
    ),
    st.lists(_atoms, max_size=5),
)
_packets = st.one_of(
    _messages,
    st.lists(_messages, min_size=1, max_size=5).map(lambda ms: timed_bundle(0, *ms)),
)


@settings(
    max_examples=N_HYPOTHESIS_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(_packets, min_size=20, max_size=60))
def test_hypothesis_messages_never_hurt_the_host(osc, host, batch):
    for data in batch:
        osc.send_raw(data)
        sent["hypothesis"] += 1
    for _, reason, *_ in barrier(osc):
        assert "internal error" not in reason, reason
    assert host.proc.poll() is None


def test_after_the_fuzz_it_still_plays_no_stuck_note_no_underrun(osc, host):
    total = sent["raw"] + sent["hypothesis"]
    assert total >= 10_000, sent
    s = status(osc)
    # Counted since the host started (the fuzz is all it did).
    # The render side's own underruns (s[13]); the device's (s[14]) are JACK's xruns.
    assert_no_underruns(s[13], host.control.count, f"during {total} fuzz packets")
    assert s[8] == 0, "internal errors in the OSC server"
    # Every /fail the host sent arrived here: none lost.
    assert s[7] == sent["fails"] + sent["barriers"], (s, sent)
    # All notes off on every channel (pedals up first): the voices must die out within
    # the longest release time (4 s) a fuzzed /param/release_s can have set.
    for ch in range(1, 17):
        osc.send("/cc", 64, 0, ch)
        osc.send("/cc", 123, 0, ch)
    deadline = time.monotonic() + 5.0
    while status(osc)[0] != 0:
        assert time.monotonic() < deadline, f"stuck voices: {status(osc)}"
        time.sleep(0.1)
    # Still playing.
    osc.send("/param/attack_s", 0.0, 1)
    osc.send("/note", 60, 100, 1)
    time.sleep(0.1)
    assert status(osc)[0] == 1
    osc.send("/note/off", 60, 1)
    # No patch name reached outside the bank folder.
    assert sorted(os.listdir(host.tmp)) == ["bank"]
    assert host.stop() == 0, "".join(host.stderr)
