"""Velocity curves in the live host: `play --velocity-curve` and OSC /velocity/curve,
heard in the host's recording (real OSC over UDP, a real JACK server)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.server.conftest import HostProcess, OscClient, recorded_frames, wait_recorded
from tests.server.playing import steady_sine


def levels(osc: OscClient, wav, velocities: list[int]) -> list[float]:
    """Each velocity's note (a steady sine, 0.3 s) in the recording: its peak level."""
    start = recorded_frames(wav)
    t0 = time.monotonic()
    for v in velocities:
        osc.send("/note", 60, v, 1)
        time.sleep(0.3)
        osc.send("/note/off", 60, 1)
        time.sleep(0.3)
    audio = wait_recorded(wav, start, time.monotonic() - t0 + 0.2)[:, 0]
    loud = np.abs(audio) > 1e-4
    # The notes' stretches: runs of sound with at least 0.1 s of silence between them.
    idx = np.flatnonzero(loud)
    cuts = np.flatnonzero(np.diff(idx) > 4800)
    runs = np.split(idx, cuts + 1)
    assert len(runs) == len(velocities), f"{len(runs)} notes heard, {len(velocities)} played"
    # The middle of each held note: past the attack, before the release.
    return [float(np.max(np.abs(audio[r[0] + 2400: r[0] + 9600]))) for r in runs]


@pytest.mark.jack
@pytest.mark.slow
def test_velocity_curves_from_the_command_line_and_over_osc(jack, tmp_path):
    wav = tmp_path / "rec.wav"
    host = HostProcess(["--no-model", "--bank", str(tmp_path / "bank"), "--record", str(wav),
                        "--velocity-curve", "linear"])
    osc = OscClient(host.port)
    try:
        steady_sine(osc)
        soft, hard = levels(osc, wav, [40, 100])
        assert soft / hard == pytest.approx(40 / 100, rel=0.01)  # linear, from --velocity-curve
        assert osc.ask("/velocity/curve", "hard", reply="/velocity/curve.reply") == [2.5]
        soft, hard = levels(osc, wav, [40, 100])
        assert soft / hard == pytest.approx((40 / 100) ** 2.5, rel=0.01)
        fail = osc.ask("/velocity/curve", "loud", reply="/fail")
        assert fail[0] == "/velocity/curve" and "soft, linear, medium, hard" in fail[1]
    finally:
        osc.close()
        assert host.stop() == 0


def test_a_bad_velocity_curve_stops_play_with_what_is_accepted(tmp_path):
    import subprocess
    import sys

    from tests.server.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "server", "play", "--no-model", "--bank", str(tmp_path / "b"),
                        "--velocity-curve", "loud"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "velocity curve must be soft, linear, medium, hard or an exponent in range 0.25..4, got 'loud'" in r.stderr
