"""The model worker process: answers in order, survives a crash, reports a failed load."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import TIMBRE_INDEX, KeyTable
from server.worker import ModelWorker, MorphRequest, PatchRequest, SyncRequest
from tests.server.fake_predictor import FakeKeyedPredictor

LOADER = "tests.server.fake_predictor:load"


class Results:
    def __init__(self) -> None:
        self.items: list[tuple[str, bool, object]] = []
        self.cond = threading.Condition()

    def cb(self, tag: str):
        def done(ok, value):
            with self.cond:
                self.items.append((tag, ok, value))
                self.cond.notify_all()

        return done

    def wait(self, n: int, timeout: float = 30.0) -> list:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, timeout), self.items
            return list(self.items)


@pytest.fixture(scope="module")
def worker():
    w = ModelWorker(loader=LOADER, ready_timeout_s=60).start()
    assert w.wait_ready(), w.reason
    yield w
    w.close()


def test_predictions_come_back_in_order(worker):
    r = Results()
    for i, prompt in enumerate(["slow", "ab", "abc"]):
        worker.submit(PatchRequest(prompt), r.cb(str(i)))
    worker.submit(SyncRequest(), r.cb("sync"))
    items = r.wait(4)
    assert [t for t, _, _ in items] == ["0", "1", "2", "sync"]
    patch = items[1][2].table
    assert isinstance(patch, KeyTable) and patch.is_flat  # a text-only model: one timbre
    assert patch.center()["mod_ratio"] == 3.0 and items[3][2] is None


def test_a_failing_prompt_fails_only_itself(worker):
    r = Results()
    worker.submit(PatchRequest("bad"), r.cb("bad"))
    worker.submit(MorphRequest("a", "b", 0.25), r.cb("morph"))
    (_, ok1, v1), (_, ok2, v2) = r.wait(2)
    assert not ok1 and "refused" in v1
    assert ok2 and v2.table.center()["sustain"] == 0.25 and v2.instrument == ""


def test_a_crash_fails_what_is_in_flight_and_the_worker_restarts(worker):
    pid = worker.pid
    r = Results()
    worker.submit(PatchRequest("crash"), r.cb("crash"))
    worker.submit(PatchRequest("after"), r.cb("after"))
    items = r.wait(2)
    assert items[0][0] == "crash" and not items[0][1] and "died (exit code 3)" in items[0][2]
    # Either the second request was in flight (failed) or it waited for the new process.
    worker.submit(PatchRequest("again"), r.cb("again"))
    items = r.wait(3)
    assert items[-1][:2] == ("again", True)
    assert worker.pid != pid and worker.restarts == 1 and worker.state == "ready"


def test_a_model_that_cannot_load_fails_every_request():
    w = ModelWorker("/nowhere", loader="tests.server.fake_predictor:load_broken").start()
    try:
        assert not w.wait_ready(60)
        assert w.state == "failed" and "no checkpoint at /nowhere" in w.reason
        r = Results()
        w.submit(PatchRequest("x"), r.cb("x"))
        assert r.wait(1)[0][1] is False
    finally:
        w.close()
        w.close()


def test_a_key_tracked_model_sends_its_table():
    """The table crosses the pipe as plain data and comes back equal, validated."""
    w = ModelWorker(loader="tests.server.fake_predictor:load_keyed", ready_timeout_s=60).start()
    try:
        assert w.wait_ready(60)
        r = Results()
        w.submit(PatchRequest("abc"), r.cb("p"))
        w.submit(MorphRequest("a", "b", 0.5), r.cb("m"))
        (_, ok, value), (_, ok2, value2) = r.wait(2)
        assert ok and ok2
        table = value.table
        assert isinstance(table, KeyTable) and not table.is_flat
        want = FakeKeyedPredictor().patch("abc")
        assert table.keys == want.keys and np.allclose(table.values, want.values, rtol=1e-5)
        assert table.lookup(20, 100)[TIMBRE_INDEX["decay_s"]] > table.lookup(100, 100)[TIMBRE_INDEX["decay_s"]]
        assert isinstance(value2.table, KeyTable)
    finally:
        w.close()


def test_requests_are_typed_and_cross_the_pipe_as_json(worker):
    """Only the typed requests are taken; what crosses is JSON (no pickle)."""
    import inspect

    import server.worker as w

    with pytest.raises(TypeError, match="PatchRequest, MorphRequest, ChoiceRequest, ChoicesRequest or SyncRequest"):
        worker.submit(("predict", "x", 0.0, None), lambda ok, v: None)
    src = inspect.getsource(w)
    assert "send_bytes(json.dumps" in src and ".send(" not in src and ".recv()" not in src
