"""training.executor's local executor and shard store: results kept whole, a finished
shard never run again, a changed shard run anew, a killed worker's shard run again, and
clear errors for bad settings. (Ray's side: tests/training/test_cluster.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from training.executor import Executor, ExecutorError, Shard, run_shards


def _shards(values) -> list[Shard]:
    return [Shard((v,), 1, f"abs {v}") for v in values]


def test_results_are_kept_whole_and_a_finished_shard_is_never_run_again(tmp_path):
    run = run_shards(abs, _shards([-1, -2, 3]), tmp_path, "abs", Executor(workers=1), progress=False)
    assert run.results == [1, 2, 3] and run.ran == [0, 1, 2] and run.reused == []
    files = sorted(tmp_path.iterdir())
    assert len(files) == 3 and not [f for f in files if ".part" in f.name]
    again = run_shards(abs, _shards([-1, -2, 3, -4]), tmp_path, "abs", Executor(workers=1), progress=False)
    assert again.results == [1, 2, 3, 4] and again.ran == [3] and again.reused == [0, 1, 2]
    # A shard whose notes or settings change is another shard: run anew.
    changed = run_shards(abs, _shards([-1, -5, 3, -4]), tmp_path, "abs", Executor(workers=1), progress=False)
    assert changed.results == [1, 5, 3, 4] and changed.ran == [1]


def test_arrays_come_back_as_they_went(tmp_path):
    x = np.arange(6, dtype=np.float16).reshape(2, 3) - 2.5
    shard = [Shard((x,), 2, "an array")]
    first = run_shards(np.abs, shard, tmp_path, "arr", Executor(workers=1), progress=False)
    again = run_shards(np.abs, shard, tmp_path, "arr", Executor(workers=1), progress=False)
    assert again.reused == [0] and again.results[0].dtype == np.float16
    assert np.array_equal(again.results[0], first.results[0]) and np.array_equal(again.results[0], np.abs(x))


def _workers_running_a_shard(marks: Path) -> list[int]:
    """The pool workers running a shard now: the parents of the shells that marked
    their start (``started-<shell pid>``) and still run."""
    out = []
    for m in marks.glob("started-*"):
        try:
            with open(f"/proc/{m.name.split('-')[1]}/stat") as f:
                out.append(int(f.read().rsplit(")", 1)[1].split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return [p for p in out if p != os.getpid()]


def test_a_local_worker_killed_mid_shard_has_its_shard_run_again(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    cmd = f"touch {marks}/started-$$ && sleep 1.5"
    shards = [Shard((cmd,), 1, f"shard {i}") for i in range(4)]
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in _workers_running_a_shard(marks):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    run = run_shards(os.system, shards, tmp_path / "store", "sh", Executor(workers=2), progress=False)
    thread.join()
    assert killed, "no worker was seen running a shard"
    assert run.results == [0, 0, 0, 0] and sorted(run.ran) == [0, 1, 2, 3]
    assert len(list(marks.glob("started-*"))) >= 5  # the killed worker's shard started again


def test_a_worker_that_keeps_dying_is_a_clear_error(tmp_path):
    shards = [Shard(("kill -9 $PPID",), 1, "dies")]
    with pytest.raises(ExecutorError, match="died 2 times; 1 shards are not done"):
        run_shards(os.system, shards, None, "sh", Executor(workers=2, retries=1), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"kind": "spark"}, "executor must be one of local, ray, got 'spark'"),
        ({"workers": 0}, "workers must be an integer >= 1, got 0"),
        ({"threads": 0}, "threads must be an integer >= 1"),
        ({"address": "head:6379"}, "a Ray address needs the ray executor"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Executor(**kwargs)
