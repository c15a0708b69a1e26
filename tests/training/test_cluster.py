"""Training's steps on a real local Ray cluster (2 CPUs) beside the local executor, on
real NSynth notes (tests/data/nsynth): the same manifests, bit for bit; a Ray worker
killed mid-shard changes nothing; a refit stopped half-way and run again redoes no
finished shard. One Ray for the whole module (it takes seconds to start)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.ci_gate import gate_on

try:
    import ray
except ImportError:
    if gate_on():  # .ci/run installs Ray: in CI its absence is a failure, not a skip
        raise
    pytest.skip("Ray is not installed: pip install -e '.[cluster]'", allow_module_level=True)

from training.dataset import build_dataset  # noqa: E402
from training.executor import Executor  # noqa: E402
from training.refit import refit_dataset  # noqa: E402

NSYNTH = Path(__file__).parents[1] / "data" / "nsynth"
#: Small shards, so that 8 notes make 4 of them, and few steps: the test is of the
#: executors, not of the fit.
STEPS = 8
BATCH = 2
LOCAL = Executor("local", workers=2)
RAY = Executor("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def built(cluster, tmp_path_factory):
    """The dataset of the 8 notes built by each executor (fitted labels; one round of
    the local search, for time)."""
    root = tmp_path_factory.mktemp("built")
    for name, ex in (("local", LOCAL), ("ray", RAY)):
        build_dataset(root / name, nsynth_root=NSYNTH, executor=ex, progress=False, shard_notes=2, local_iters=1)
    return root


@pytest.fixture(scope="module")
def refit_local(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("refit") / "local"
    refit_dataset(built / "local", out, steps=STEPS, batch=BATCH, executor=LOCAL, progress=False)
    return out


def _manifest(folder: Path) -> bytes:
    return (folder / "manifest.jsonl").read_bytes()


def test_build_gives_the_same_manifest_on_ray_as_on_local_processes(built):
    local = _manifest(built / "local")
    assert local.count(b"\n") == 8
    assert _manifest(built / "ray") == local
    # Four shards of two notes each, on both.
    assert len(list((built / "ray" / "shards").glob("extract-*.json"))) == 4


def test_refit_gives_the_same_manifest_on_ray_as_on_local_processes(built, refit_local, tmp_path):
    summary = refit_dataset(built / "local", tmp_path, steps=STEPS, batch=BATCH, executor=RAY, progress=False)
    assert (summary["shards"]["ran"], summary["shards"]["reused"]) == (4, 0)
    assert _manifest(tmp_path) == _manifest(refit_local)
    assert (tmp_path / "refit.json").read_text() == (refit_local / "refit.json").read_text()
    # The refit moved the labels (else the comparison says little).
    assert _manifest(refit_local) != _manifest(built / "local")


def _running_task_pids() -> list[int]:
    """Ray workers running a task now: Ray titles such a process ``ray::<function>``
    (``ray::IDLE`` while it waits)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::_call"):
            pids.append(int(entry))
    return pids


def test_a_ray_worker_killed_mid_refit_leaves_a_complete_and_identical_result(built, refit_local, tmp_path):
    killed: list[int] = []
    errors: list[BaseException] = []

    def refit() -> None:
        try:
            refit_dataset(built / "local", tmp_path, steps=STEPS, batch=BATCH, executor=RAY, progress=False)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=refit)
    thread.start()
    deadline = time.monotonic() + 60
    while not killed and thread.is_alive() and time.monotonic() < deadline:
        pids = _running_task_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        time.sleep(0.01)
    thread.join(120)
    assert not thread.is_alive(), "the refit did not finish"
    assert not errors, errors
    assert killed, "no Ray worker was seen running a shard, so none was killed"
    assert _manifest(tmp_path) == _manifest(refit_local)


def test_a_refit_stopped_half_way_redoes_no_finished_shard(built, refit_local, tmp_path):
    seen: list[int] = []

    def stop_after_two(index: int, result) -> None:
        seen.append(index)
        if len(seen) == 2:
            raise KeyboardInterrupt  # as Ctrl-C would, in the driver

    with pytest.raises(KeyboardInterrupt):
        refit_dataset(built / "local", tmp_path, steps=STEPS, batch=BATCH, executor=RAY, progress=False,
                      on_result=stop_after_two)
    assert not (tmp_path / "manifest.jsonl").exists()
    files = sorted((tmp_path / "shards").glob("refit-*.json"))
    assert len(files) == 2  # written whole as each came back; the others were stopped
    stamps = {f: f.stat().st_mtime_ns for f in files}

    again: list[int] = []
    summary = refit_dataset(built / "local", tmp_path, steps=STEPS, batch=BATCH, executor=RAY, progress=False,
                            on_result=lambda i, r: again.append(i))
    assert sorted(again + seen[:2]) == [0, 1, 2, 3]  # each shard done once in all
    assert summary["shards"]["ran"] == 2 and summary["shards"]["reused"] == 2
    assert {f: f.stat().st_mtime_ns for f in files} == stamps  # finished shards untouched
    assert _manifest(tmp_path) == _manifest(refit_local)


def test_without_ray_the_ray_executor_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    import sys

    from server.cli import main
    from training.executor import ExecutorError

    monkeypatch.setitem(sys.modules, "ray", None)  # as where it is not installed
    with pytest.raises(ExecutorError, match=r"pip install -e '\.\[cluster\]'"):
        Executor("ray")
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.jsonl").write_text("")
    assert main(["dataset", "refit", "--data", str(data), "--out", str(tmp_path / "o"), "--executor", "ray"]) == 2
    assert "pip install -e '.[cluster]'" in capsys.readouterr().err
    assert main(["dataset", "build", "--nsynth", str(NSYNTH), "--out", str(tmp_path / "b"), "--executor", "ray"]) == 2
    assert "pip install -e '.[cluster]'" in capsys.readouterr().err


def test_the_library_is_the_same_on_ray_as_in_one_process(built, tmp_path):
    """`promptsynth library`'s targets and candidates' renders in shards on Ray (and
    kept in the store) give the very distances of one process's run."""
    import numpy as np

    from tests.training.test_train import _HashEncoder
    from training.library import build_library

    manifest = built / "local" / "manifest.jsonl"
    alone, _ = build_library(manifest, _HashEncoder(), nsynth_root=NSYNTH, progress=False)
    on_ray, summary = build_library(manifest, _HashEncoder(), nsynth_root=NSYNTH, progress=False,
                                    executor=RAY, store=tmp_path)
    assert summary["candidates"] == 8 and np.array_equal(on_ray.distance, alone.distance)
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["candidates", "targets"]


@pytest.mark.parametrize(
    ("address", "words"),
    [("127.0.0.1:1", "cannot reach Ray at 127.0.0.1:1"), ("head", "must be auto, HOST:PORT or ray://HOST:PORT")],
)
def test_a_ray_address_that_answers_not_is_a_clear_error_at_once(address, words):
    from training.executor import ExecutorError

    t0 = time.monotonic()
    with pytest.raises(ExecutorError, match=words):
        Executor("ray", address=address)
    assert time.monotonic() - t0 < 10  # Ray alone waits minutes
