"""A channel set to a steady sine (no attack, full sustain, no FM, no noise, a short
release): what the tests that measure a live host's pitch or level play."""

from __future__ import annotations

STEADY_SINE = [("attack_s", 0.0), ("sustain", 1.0), ("release_s", 0.01), ("mod_index", 0.0),
               ("index_peak", 0.0), ("noise_level", 0.0)]


def steady_sine(osc, channel: int = 1) -> None:
    """Set ``channel`` (1-16) of the host ``osc`` talks to to a steady sine, and wait
    until the host has it."""
    for name, value in STEADY_SINE:
        osc.send(f"/param/{name}", value, channel)
    osc.ask("/sync", 1, reply="/synced")
