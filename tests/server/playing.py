"""What the live-host tests set a channel to, and how they read the host's state."""

from __future__ import annotations

import time

STEADY_SINE = [("attack_s", 0.0), ("sustain", 1.0), ("release_s", 0.01), ("mod_index", 0.0),
               ("index_peak", 0.0), ("noise_level", 0.0)]


def steady_sine(osc, channel: int = 1) -> None:
    """Set ``channel`` (1-16) of the host ``osc`` talks to to a steady sine (no attack,
    full sustain, no FM, no noise, a short release), and wait until the host has it:
    what the tests that measure a live host's pitch or level play."""
    for name, value in STEADY_SINE:
        osc.send(f"/param/{name}", value, channel)
    osc.ask("/sync", 1, reply="/synced")


def short_envelopes(osc) -> None:
    """No attack and a 10 ms release on all 16 channels, so that "all released" soon
    means "no voice left"; waits until the host has them."""
    for ch in range(1, 17):
        osc.send("/param/release_s", 0.01, ch)
        osc.send("/param/attack_s", 0.0, ch)
    osc.ask("/sync", 1, reply="/synced")


def status(osc) -> list:
    """The host's /status.reply."""
    return osc.ask("/status", reply="/status.reply")


def wait_silent(osc, timeout: float = 2.0) -> None:
    """Wait until no voice sounds; fails naming the status if one still does after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while (s := status(osc))[0] != 0:
        assert time.monotonic() < deadline, f"stuck voices: {s}"
        time.sleep(0.02)
