"""Training's heavy steps on an executor: this machine's processes, or a Ray cluster.

A step is cut into **shards** (a few notes each) and a function runs on each shard, in a
worker process. Both executors run the same function on the same shards, so they give
the same results, bit for bit. The driver writes each shard's result to a file of its
own as it comes back (a temporary file, then ``os.replace``: a file is whole or absent),
named by what the shard holds (:attr:`Shard.ident`); a shard whose file is there is never
run again, so a step stopped by a crash or Ctrl-C goes on where it stopped. A worker that
dies mid-shard (killed, out of memory, a lost node) has its shard run again, at most
``retries`` times.

Results are JSON values (labels, note records) or numpy arrays (features); a shard's
file is ``.json`` or ``.npy`` accordingly.

On Ray (``pip install -e '.[cluster]'``), every node needs this package installed and the
data at the same path (a shared file system): the workers read the notes' audio and
write renders where the driver tells them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "Shard", "ShardRun", "digest", "run_shards"]

#: The executors a step can run on.
EXECUTORS = ("local", "ray")
_INSTALL_RAY = "pip install -e '.[cluster]'"


class ExecutorError(RuntimeError):
    """An executor that cannot run (Ray missing or unreachable), or a shard that failed."""


@dataclass(frozen=True)
class Executor:
    """Where shards run: ``kind`` ``"local"`` (a pool of ``workers`` processes on this
    machine; default: its CPU count; 1: in this process) or ``"ray"`` (the cluster at
    ``address``, or a local Ray started here with ``workers`` CPUs when there is none;
    ``workers`` then bounds the shards in flight). Each worker runs torch on ``threads``
    threads."""

    kind: str = "local"
    workers: int | None = None
    address: str | None = None
    threads: int = 1
    retries: int = 3

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"threads must be an integer >= 1, got {self.threads!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {self.retries!r}")
        if self.address is not None and self.kind != "ray":
            raise ValueError("a Ray address needs the ray executor (--executor ray)")
        if self.kind == "ray":
            _import_ray()  # a clear error now, not after the notes are read
            if self.address is not None:
                _check_reachable(self.address)


@dataclass(frozen=True)
class Shard:
    """One piece of a step: ``args`` for the step's function, ``size`` notes (for the
    progress bar), and ``ident``: a string that changes whenever the shard's result would
    (its notes and the step's settings; :func:`digest` makes one)."""

    args: tuple
    size: int
    ident: str


@dataclass
class ShardRun:
    """What :func:`run_shards` did: each shard's ``results`` in order, which shards it
    ``ran`` and which it ``reused`` (their files were there), its wall time, and the
    seconds the shards it ran took in their workers (``busy``: the executor's own cost is
    the wall time less ``busy`` / workers)."""

    results: list
    ran: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    seconds: float = 0.0
    busy: float = 0.0


def digest(*parts: Any) -> str:
    """A short hash of ``parts`` (JSON values; numpy arrays by their bytes)."""
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray, which is not installed: {_INSTALL_RAY}") from None
    return ray


_LIMITS: dict[int, Any] = {}


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A clear error now where ``address`` (``host:port`` or ``ray://host:port``) takes no
    connection: Ray itself would wait minutes, then say little."""
    import socket

    if address == "auto" or "://" in address and not address.startswith("ray://"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(f"--ray-address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ExecutorError(f"cannot reach Ray at {address}: {exc} (is `ray start --head` running there?)") from None


def _set_threads(threads: int) -> None:
    """``threads`` threads for torch and for every BLAS and OpenMP library loaded (numpy's
    OpenBLAS would take a thread per CPU in each worker: the workers would crowd each other
    out, and a matrix product split another way can round another way), in this process
    from now on."""
    import torch
    from threadpoolctl import threadpool_limits

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if threads not in _LIMITS:
        _LIMITS.clear()
        _LIMITS[threads] = threadpool_limits(limits=threads)


@contextmanager
def _threads_here(threads: int):
    """:func:`_set_threads` for a block of this process, the caller's settings restored."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _call(fn: Callable, args: tuple, threads: int) -> tuple[Any, float]:
    """What a worker runs: ``fn(*args)`` on ``threads`` threads (:func:`_set_threads`);
    its result and the seconds it took there."""
    _set_threads(threads)
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


class _Store:
    """A folder of shard results, one file each, written whole or not at all."""

    def __init__(self, folder: Path | None, step: str) -> None:
        self.folder = folder
        self.step = step
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _stem(self, index: int, shard: Shard) -> Path:
        return self.folder / f"{self.step}-{index:06d}-{digest(shard.ident)}"

    def load(self, index: int, shard: Shard) -> tuple[bool, Any]:
        if self.folder is None:
            return False, None
        stem = self._stem(index, shard)
        for ext in (".json", ".npy"):
            path = stem.with_suffix(ext)
            if path.is_file():
                if ext == ".npy":
                    return True, np.load(path, allow_pickle=False)
                with open(path) as f:
                    return True, json.load(f)
        return False, None

    def save(self, index: int, shard: Shard, result: Any) -> None:
        if self.folder is None:
            return
        stem = self._stem(index, shard)
        if isinstance(result, np.ndarray):
            path, tmp = stem.with_suffix(".npy"), stem.with_suffix(".part.npy")
            with open(tmp, "wb") as f:
                np.save(f, result, allow_pickle=False)
        else:
            path, tmp = stem.with_suffix(".json"), stem.with_suffix(".part.json")
            with open(tmp, "w") as f:
                json.dump(result, f)
        os.replace(tmp, path)


def run_shards(
    fn: Callable,
    shards: Sequence[Shard],
    store: str | os.PathLike | None,
    step: str,
    executor: Executor | None = None,
    progress: bool = True,
    unit: str = "note",
    on_result: Callable[[int, Any], None] | None = None,
) -> ShardRun:
    """``fn(*shard.args)`` for every shard not already in the folder ``store``, on
    ``executor`` (default: local processes); each result is written there (as
    ``<step>-<index>-<hash of ident>.json|.npy``; ``store`` None: nowhere) as soon as
    it comes back, then handed
    to ``on_result(index, result)`` (which may raise, e.g. KeyboardInterrupt, to stop:
    what is written stays). ``fn`` must be a module-level function (workers import it)
    returning a JSON value or a numpy array."""
    executor = executor or Executor()
    st = _Store(None if store is None else Path(store), step)
    t0 = time.perf_counter()
    run = ShardRun(results=[None] * len(shards))
    todo = []
    for i, shard in enumerate(shards):
        found, result = st.load(i, shard)
        if found:
            run.results[i] = result
            run.reused.append(i)
        else:
            todo.append(i)
    total = sum(s.size for s in shards)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=total - sum(shards[i].size for i in todo),
                   desc=f"{step} ({executor.kind})", unit=unit, smoothing=0.1)

    def finished(i: int, done: tuple[Any, float]) -> None:
        result, busy = done
        run.busy += busy
        st.save(i, shards[i], result)
        run.results[i] = result
        run.ran.append(i)
        if bar is not None:
            bar.update(shards[i].size)
        if on_result is not None:
            on_result(i, result)

    try:
        if not todo:
            pass
        elif executor.kind == "ray":
            _run_ray(fn, shards, todo, executor, finished)
        elif (executor.workers or os.cpu_count() or 1) == 1:
            with _threads_here(executor.threads):
                for i in todo:
                    t = time.perf_counter()
                    result = fn(*shards[i].args)
                    finished(i, (result, time.perf_counter() - t))
        else:
            _run_local(fn, shards, todo, executor, finished)
    finally:
        if bar is not None:
            bar.close()
    run.seconds = time.perf_counter() - t0
    return run


def _run_local(fn, shards, todo: list[int], executor: Executor, finished) -> None:
    """A pool of spawned processes (no fork: libfluidsynth and torch's thread pools in the
    driver leave state a forked child can deadlock on). A worker that dies breaks the
    pool: a new one takes the shards not finished, ``retries`` times at most."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    workers = min(executor.workers or os.cpu_count() or 1, len(todo))
    pending = list(todo)
    breaks = 0
    while pending:
        ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {ex.submit(_call, fn, shards[i].args, executor.threads): i for i in pending}
            waiting = set(futures)
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                # The shards that came back are kept before a failure is raised.
                failed = [f for f in done if f.exception() is not None]
                for fut in sorted(set(done) - set(failed), key=futures.__getitem__):
                    finished(futures[fut], fut.result())
                    pending.remove(futures[fut])
                if failed:
                    raise failed[0].exception()
        except BrokenProcessPool:
            breaks += 1
            if breaks > executor.retries:
                raise ExecutorError(
                    f"a worker process died {breaks} times; {len(pending)} shards are not done "
                    "(run the command again to go on from there)"
                ) from None
        finally:
            ex.shutdown(wait=True, cancel_futures=True)


def _run_ray(fn, shards, todo: list[int], executor: Executor, finished) -> None:
    """Ray tasks, one per shard, at most ``workers`` in flight where given (else twice the
    cluster's CPUs); Ray runs a task again when its worker dies (``max_retries``)."""
    ray = _import_ray()
    started_here = False
    if not ray.is_initialized():
        try:
            if executor.address is not None:
                ray.init(address=executor.address, log_to_driver=False)
            elif os.environ.get("RAY_ADDRESS"):  # the cluster the environment names
                ray.init(log_to_driver=False)
            else:
                # Ray runs its workers at nice 15 (its daemons first); this Ray is this
                # command's alone, and its workers get the share of a busy machine the
                # local executor's processes get.
                ray.init(num_cpus=executor.workers, include_dashboard=False, log_to_driver=False,
                         _system_config={"worker_niceness": 0})
        except ExecutorError:
            raise
        except Exception as exc:  # Ray raises a bare Exception when its node does not start
            where = executor.address or os.environ.get("RAY_ADDRESS") or "a local Ray"
            raise ExecutorError(f"cannot start or reach Ray at {where}: {exc}") from None
        started_here = True
    try:
        task = ray.remote(num_cpus=1, max_retries=executor.retries, retry_exceptions=False)(_call)
        limit = executor.workers or max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
        queue = iter(todo)
        flight: dict = {}

        def submit(n: int) -> None:
            for i in _take(queue, n):
                flight[task.remote(fn, shards[i].args, executor.threads)] = i

        submit(limit)
        try:
            while flight:
                # A second at most, so that Ctrl-C is heard while shards run.
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    i = flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise ExecutorError(f"shard {i} failed on Ray: {exc}") from None
                    finished(i, result)
                submit(limit - len(flight))
        finally:
            for ref in flight:
                ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()


def _take(it: Iterable[int], n: int) -> list[int]:
    out = []
    for _ in range(max(0, n)):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out
