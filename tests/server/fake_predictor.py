"""A predictor stand-in for the worker tests: instant, deterministic, and able to die.

Loaded inside the worker process by ``ModelWorker(loader="tests.server.fake_predictor:load")``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from engine import KEY_ANCHORS, TIMBRE_INDEX, TIMBRE_NAMES, KeyTable


@dataclass(frozen=True)
class FakeChoice:
    table: KeyTable
    title: str
    instrument: str = ""


#: How many choices the stand-in has for any words (fewer than the host asks for, as a
#: library whose pool holds few instruments).
N_CHOICES = 3


class FakePredictor:
    """A text-only stand-in: flat patches whose ratio depends on the prompt's length."""

    def patch(self, prompt: str, temperature: float = 0.0, seed: int | None = None) -> KeyTable:
        if prompt == "crash":
            os._exit(3)  # a worker killed mid-prediction
        if prompt == "slow":
            time.sleep(0.5)
        if prompt == "bad":
            raise ValueError("prompt 'bad' is refused")
        return KeyTable.flat({"mod_ratio": 1.0 + len(prompt) % 8})

    def morph(self, prompt_a: str, prompt_b: str, t: float) -> KeyTable:
        return KeyTable.flat({"sustain": float(t)})

    def choices(self, prompt: str, n: int = 8) -> list[FakeChoice]:
        """The patch, then ones whose sustain tells their place: "instrument 2 of 'x'"."""
        first = FakeChoice(self.patch(prompt), f"instrument 1 of {prompt!r}", "fake-1")
        rest = [
            FakeChoice(KeyTable.flat({"sustain": i / 10}), f"instrument {i + 1} of {prompt!r}", f"fake-{i + 1}")
            for i in range(1, N_CHOICES)
        ]
        return ([first] + rest)[:n]


class FakeKeyedPredictor(FakePredictor):
    """A key-tracked stand-in: low keys decay slowly, high keys fast (as a piano)."""

    def patch(self, prompt: str, temperature: float = 0.0, seed: int | None = None) -> KeyTable:
        base = super().patch(prompt, temperature, seed).values[0, 0]
        values = np.tile(base, (len(KEY_ANCHORS), 1, 1))
        values[:, 0, TIMBRE_INDEX["decay_s"]] = np.linspace(4.0, 0.2, len(KEY_ANCHORS))
        return KeyTable(KEY_ANCHORS, (100,), values, names=TIMBRE_NAMES)

    def morph(self, prompt_a: str, prompt_b: str, t: float) -> KeyTable:
        return self.patch(prompt_a)


def load(path):
    return FakePredictor()


def load_keyed(path):
    return FakeKeyedPredictor()


def load_broken(path):
    raise RuntimeError(f"no checkpoint at {path}")
