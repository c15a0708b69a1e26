"""OSC /spectrum, /spectrum/held, /spectrum/onset: a whole carrier spectrum (32 levels in
dB) for a channel's patch, checked before anything is sent, applied at once; through the
host's address space with real UDP packets, and in a live host (real JACK server) whose
recording plays the spectrum."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest

from engine.schema import DB_FLOOR, HELD_NAMES, N_HARMONICS, ONSET_NAMES
from tests.server.conftest import (
    ROOT,
    SR,
    HostProcess,
    OscClient,
    message,
    recorded_frames,
    wait_recorded,
)
from tests.server.playing import steady_sine
from tests.server.test_osc_unit import replies, rig  # noqa: F401 - the fixture

SINE = [0.0] + [DB_FLOOR] * (N_HARMONICS - 1)
#: Odd harmonics only, falling 3 dB a harmonic (a clarinet-like shape).
ODD = [max(-3.0 * k, DB_FLOOR) if k % 2 == 0 else DB_FLOOR for k in range(N_HARMONICS)]
BRIGHT = [max(-2.0 * k, DB_FLOOR) for k in range(N_HARMONICS)]

#: (arguments, the /fail's reason): every one leaves the channel as it was.
BAD = [
    (ODD[:31], "takes 32 levels in dB (harmonic 1 first, each a number in range -80..0) [channel]; got 31 argument(s)"),
    (ODD + [1, 2], "takes 32 levels in dB (harmonic 1 first, each a number in range -80..0) [channel]; got 34 argument(s)"),
    ([], "takes 32 levels in dB"),
    (ODD[:4] + [float("nan")] + ODD[5:], "harmonic 5's level must be a number in range -80..0, got nan"),
    (ODD[:2] + [3.0] + ODD[3:], "harmonic 3's level must be a number in range -80..0, got 3"),
    (ODD[:31] + [-90.0], "harmonic 32's level must be a number in range -80..0, got -90"),
    (["loud"] + ODD[1:], "harmonic 1's level must be a number in range -80..0, got str 'loud'"),
    (ODD[:7] + [float("-inf")] + ODD[8:], "harmonic 8's level must be a number in range -80..0, got -inf"),
    (ODD + [17], "channel must be an int in range 1..16, got 17"),
]


def _center(host, ch: int) -> tuple[list, list]:
    c = host.channels.state(ch).table.center()
    return [c[n] for n in ONSET_NAMES], [c[n] for n in HELD_NAMES]


def test_spectrum_addresses_set_one_or_both_spectra(rig):  # noqa: F811
    host, server, client = rig
    sender = client.getsockname()
    server.handle_packet(message("/spectrum/held", *ODD, 3), sender)
    host.engine.render(128)
    assert _center(host, 2) == (SINE, pytest.approx(ODD))
    assert np.allclose([host.engine.channels.table(2).center()[n] for n in HELD_NAMES], ODD)
    server.handle_packet(message("/spectrum/onset", *BRIGHT, 3), sender)
    assert _center(host, 2) == (pytest.approx(BRIGHT), pytest.approx(ODD))
    server.handle_packet(message("/spectrum", *BRIGHT), sender)  # channel 1 by default
    host.engine.render(128)
    assert _center(host, 0) == (pytest.approx(BRIGHT), pytest.approx(BRIGHT))
    engine_ch0 = host.engine.channels.table(0).center()
    assert np.allclose([engine_ch0[n] for n in ONSET_NAMES + HELD_NAMES], BRIGHT + BRIGHT)
    assert replies(client) == []  # as /param: no reply when it is done


@pytest.mark.parametrize("address", ["/spectrum", "/spectrum/held", "/spectrum/onset"])
def test_bad_spectra_fail_and_queue_nothing(rig, address):  # noqa: F811
    host, server, client = rig
    sender = client.getsockname()
    before = host.engine.queue.pending_in_ring()
    for args, _ in BAD:
        server.handle_packet(message(address, *args), sender)
    assert host.engine.queue.pending_in_ring() == before
    got = replies(client)
    assert [a for a, _ in got] == ["/fail"] * len(BAD)
    for (_, reason), (_, params) in zip(BAD, got):
        assert params[0] == address and params[1].startswith(reason), params
    assert _center(host, 0) == (SINE, SINE)


# -- a live host ------------------------------------------------------------------------


def _levels_db(y: np.ndarray, f0: float, n: int) -> np.ndarray:
    t = np.arange(len(y)) / SR
    k = np.arange(1, n + 1)[:, None]
    return 20 * np.log10(np.abs(np.exp(-2j * np.pi * k * f0 * t) @ (y * np.hanning(len(y)))) + 1e-12)


def _played(osc: OscClient, wav, key: int, seconds: float = 0.5) -> np.ndarray:
    """A note of ``key`` on channel 1 as the host recorded it, from its start."""
    start = recorded_frames(wav)
    t0 = time.monotonic()
    osc.send("/note", key, 90, 1)
    time.sleep(seconds)
    osc.send("/note/off", key, 1)
    audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.1)[:, 0]
    on = np.flatnonzero(np.abs(audio) > 1e-3)
    assert on.size, "no note heard"
    return audio[on[0] :]


@pytest.mark.jack
@pytest.mark.slow
def test_spectrum_over_osc_in_a_live_host(jack, tmp_path):
    wav = tmp_path / "rec.wav"
    bank = tmp_path / "bank"
    host = HostProcess(["--no-model", "--bank", str(bank), "--record", str(wav)])
    osc = OscClient(host.port)
    f0 = 440.0 * 2 ** ((57 - 69) / 12)
    try:
        steady_sine(osc)
        osc.send("/spectrum", *ODD, 1)
        osc.ask("/sync", 1, reply="/synced")
        y = _played(osc, wav, 57)
        lv = _levels_db(y[SR // 5 : SR // 5 + 8192], f0, 5)
        # Odd harmonics at -3 dB a harmonic, even ones silent.
        assert abs(lv[2] - lv[0] - ODD[2]) < 1.0 and abs(lv[4] - lv[0] - ODD[4]) < 1.0, lv
        assert lv[1] - lv[0] < -50.0 and lv[3] - lv[0] < -50.0, lv
        # Every bad message: /fail with its reason, and the channel plays as before.
        for address in ("/spectrum", "/spectrum/held", "/spectrum/onset"):
            osc.clear()
            for args, reason in BAD:
                osc.send(address, *args)
                fail = osc.expect("/fail", where=lambda p, a=address: p[0] == a)
                assert fail[1].startswith(reason), fail
        assert osc.ask("/patch/save", "after bad", 1, reply="/patch/saved") == ["after bad", 1]
        saved = json.loads((bank / "after-bad.json").read_text())["keytable"]["spectra"]
        assert saved == {"onset_db": ODD, "held_db": ODD}
        y = _played(osc, wav, 57)
        lv2 = _levels_db(y[SR // 5 : SR // 5 + 8192], f0, 5)
        assert np.allclose(lv2 - lv2[0], lv - lv[0], atol=1.0), (lv, lv2)
        # /spectrum/held alone: the note starts on the onset spectrum (odd harmonics)
        # and ends on the held one (every harmonic).
        osc.send("/param/onset_s", 0.05, 1)
        osc.send("/spectrum/held", *BRIGHT, 1)
        osc.ask("/sync", 2, reply="/synced")
        y = _played(osc, wav, 57)
        lv = _levels_db(y[SR // 5 : SR // 5 + 8192], f0, 4)
        assert abs(lv[1] - lv[0] - BRIGHT[1]) < 1.0 and abs(lv[3] - lv[0] - BRIGHT[3]) < 1.0, lv
        assert osc.ask("/patch/save", "bright", 1, reply="/patch/saved") == ["bright", 1]
        saved = json.loads((bank / "bright.json").read_text())["keytable"]["spectra"]
        assert saved == {"onset_db": ODD, "held_db": BRIGHT}
        # liblo's oscsend, the line docs/osc.md gives.
        line = next(t for t in (ROOT / "docs" / "osc.md").read_text().splitlines()
                    if t.startswith("oscsend localhost 9000 /spectrum/held"))
        words = line.split()
        subprocess.run(["oscsend", "localhost", str(host.port), *words[3:]], check=True, timeout=10)
        osc.ask("/sync", 3, reply="/synced")
        assert osc.ask("/patch/save", "odd", 1, reply="/patch/saved") == ["odd", 1]
        saved = json.loads((bank / "odd.json").read_text())["keytable"]["spectra"]
        assert saved["held_db"] == [float(w) for w in words[5:-1]] and saved["onset_db"] == ODD
    finally:
        osc.close()
        host.stop()
