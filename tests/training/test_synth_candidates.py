"""benchmarks/synth_candidates.py: every candidate voice, its additions off, is the
schema-2 voice (training.torchsynth.render, itself held to the engine), so that the
screening compares additions and nothing else; with an addition on, the sound changes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import Theta
from training.torchsynth import render as render_v2

_PATH = Path(__file__).parents[2] / "benchmarks" / "synth_candidates.py"
_spec = importlib.util.spec_from_file_location("synth_candidates", _PATH)
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)

PITCH = [48.0, 67.0]
VEL = [100.0, 60.0]
ON = {
    "index-env": {"index_env": 0.8},
    "vibrato": {"vib_depth": 40.0, "vib_delay": 0.0},
    "bandnoise": {"bp_level": 0.5, "bp_width": 0.5},
    "op3": {"idx3": 2.0, "peak3": 0.0},
    "feedback": {"fb": 0.7},
}
DISC = {"bandnoise": {"bp_centre": [2.0, 0.0]}, "op3": {"layout": ["stack", "carrier2"], "r3": [3.0, 2.0]}}


def _timbre():
    t = Theta.from_dict({"mod_ratio": 2.0, "mod_index": 1.5, "index_peak": 2.0, "noise_level": 0.1})
    return torch.from_numpy(np.stack([t.timbre(), t.timbre()]))


@pytest.mark.parametrize("cand", sorted(ON))
def test_a_candidate_with_its_additions_off_is_the_schema_2_voice(cand):
    timbre = _timbre()
    b = S.Batch(PITCH, VEL, [2.0, 2.0], DISC.get(cand, {}), dtype=torch.float64)
    off = {k: torch.from_numpy(v) for k, v in S._off(cand, 2).items()}
    want = render_v2(b.nb, timbre).numpy()
    got = S.render(b, cand, timbre, off).numpy()
    # The vibrato prototype sums its phase (rounding ~1e-8), the others are exact.
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    on = {k: torch.full((2, 1), v, dtype=torch.float64) for k, v in ON[cand].items()}
    changed = S.render(b, cand, timbre, on).numpy()
    assert np.abs(changed - want).max() > 0.05, cand
