"""The shipped default model (model/checkpoints/default) in a live host on JACK: a prompt
is answered, its patch is applied to the channel, and a note played on that channel
sounds with the patch's pitch and decay, read back from the recording.

Every other host test runs a small random checkpoint; this one runs what users get,
with the model's own timing (the host is ready in ~5 s, the prompt answered in ~50 ms).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import TIMBRE_NAMES
from engine.render import render_note
from patches import load_patch
from tests.server.conftest import (
    ROOT,
    SR,
    HostProcess,
    OscClient,
    onsets,
    recorded_frames,
    wait_recorded,
)

pytestmark = [pytest.mark.jack, pytest.mark.slow]

SHIPPED = ROOT / "model" / "checkpoints" / "default"


def envelope_db(x: np.ndarray, frame: int = 480) -> np.ndarray:
    """RMS level of each 10 ms of ``x`` (mono), in dB."""
    n = len(x) // frame
    return 20 * np.log10(np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)


def test_the_shipped_model_answers_a_prompt_and_its_patch_plays(jack, tmp_path):
    wav = tmp_path / "out.wav"
    host = HostProcess(["--model", str(SHIPPED), "--bank", str(tmp_path / "bank"), "--record", str(wav)])
    osc = OscClient(host.port)
    try:
        assert "model: ready" in host.ready_line
        osc.send("/prompt", "a guitar note", 2, 7)
        reply = osc.expect("/prompt/done", timeout=60, where=lambda q: q[0] == 7)
        assert reply[:2] == [7, "a guitar note"] and len(reply) == 2 + len(TIMBRE_NAMES) + 1
        # Applied: the channel's patch, as /patch/save writes it, is the prompt's.
        assert osc.ask("/patch/save", "guitar", 2, reply="/patch/saved") == ["guitar", 2]
        patch = load_patch(tmp_path / "bank" / "guitar.json")
        assert patch.prompt == "a guitar note"
        centre = patch.table.center()
        assert [centre[name] for name in TIMBRE_NAMES] == pytest.approx(reply[2:-1], rel=1e-5)
        # A note on that channel, held ~1.5 s (the time between the two sends, measured).
        start = recorded_frames(wav)
        osc.send("/note", 57, 100, 2)
        t_on = time.monotonic()
        time.sleep(1.5)
        osc.send("/note/off", 57, 2)
        held_s = time.monotonic() - t_on
        osc.ask("/sync", 1, reply="/synced")
        audio = wait_recorded(wav, start, held_s + 0.5)
    finally:
        osc.close()
        assert host.stop() == 0, "".join(host.stderr)
    ons = onsets(audio, min_gap=2000)
    assert len(ons) == 1, ons
    played = audio[ons[0][0]:, 0]
    # The same note of the same patch rendered offline by the engine: the reference.
    reference = render_note(patch.table, 57, 100, SR, hold_s=held_s, tail_s=0.5)
    reference = reference[np.flatnonzero(reference)[0]:]
    # Pitch: the strongest partial is the played key's, as in the reference.
    assert ons[0][1] == 57 and onsets(reference)[0][1] == 57
    # Decay: over the held part, the recorded level follows the reference's to within
    # 1.5 dB, less one constant (the host's output gain); the patch decays by several
    # dB over that time, so a patch without its decay, or another patch, would not.
    n = int((held_s - 0.1) * 100)
    played_db, reference_db = envelope_db(played)[:n], envelope_db(reference)[:n]
    assert reference_db[0] - reference_db[-1] > 6.0, reference_db
    difference = played_db - reference_db
    assert difference.max() - difference.min() < 1.5, np.round(difference, 1)
