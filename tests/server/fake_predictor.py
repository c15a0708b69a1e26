"""A predictor stand-in for the worker tests: instant, deterministic, and able to die.

Loaded inside the worker process by ``ModelWorker(loader="tests.server.fake_predictor:load")``.
"""

from __future__ import annotations

import os
import time

from engine import Theta


class FakePredictor:
    def predict(self, prompt: str, temperature: float = 0.0, seed: int | None = None) -> Theta:
        if prompt == "crash":
            os._exit(3)  # a worker killed mid-prediction
        if prompt == "slow":
            time.sleep(0.5)
        if prompt == "bad":
            raise ValueError("prompt 'bad' is refused")
        return Theta().replace(mod_ratio=1.0 + len(prompt) % 8)

    def interpolate(self, prompt_a: str, prompt_b: str, t: float) -> Theta:
        return Theta().replace(sustain=float(t))


def load(path):
    return FakePredictor()


def load_broken(path):
    raise RuntimeError(f"no checkpoint at {path}")
