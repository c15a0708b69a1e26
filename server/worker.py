"""The model in its own process, so that no prediction ever runs on the host's threads.

:class:`ModelWorker` spawns a process (``multiprocessing`` spawn context: no forked
audio or socket state) that loads the predictor, warms it up with one prediction and
then answers requests in order over a pipe. The host submits requests with a callback;
a manager thread reads results and calls the callbacks. If the process dies, every
request in flight fails with the reason and a new process is started (with back-off);
requests made meanwhile wait for it.

Requests are tuples ``(op, *args)``: ``("predict", prompt, temperature, seed)``,
``("interpolate", prompt_a, prompt_b, t)`` and ``("sync",)``, which only answers once
every earlier request has been answered. Results are theta values in schema order.
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait as _wait

__all__ = ["ModelWorker", "WorkerError", "DEFAULT_LOADER", "load_predictor"]

#: ``module:callable`` that builds the predictor from a checkpoint path (or None).
DEFAULT_LOADER = "server.worker:load_predictor"

#: One torch thread, slightly below normal priority: on a small machine the host's
#: threads keep a core (two torch threads caused underruns on 2 cores). Not nice 19: on a
#: loaded machine that starved the worker (prompt -> patch 64 ms median, against 30 ms at 5).
WORKER_THREADS = 1
WORKER_NICE = 5

Callback = Callable[[bool, object], None]


class WorkerError(RuntimeError):
    """The model worker could not start or is not available."""


def _resolve(spec: str):
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load_predictor(model_path: str | None):
    """The default loader: ``model.Predictor`` from ``model_path`` (None: the default)."""
    from model import Predictor

    return Predictor.load(model_path, threads=WORKER_THREADS)


def _patch_result(theta, table) -> tuple[list[float], dict | None]:
    """A prediction as plain data for the pipe: the theta values (schema order) and the
    key table's dict (``KeyTable.to_dict``), None for a flat patch."""
    return [float(v) for v in theta.to_array()], (table.to_dict() if table is not None else None)


def patch_from_result(value) -> tuple[object, object]:
    """(theta, what to play: a KeyTable or the theta) from a ``predict``/``interpolate``
    result, validated. With a table, the theta is the table's centre (key 60, velocity
    100), the one every reply, notice and saved patch then shows."""
    from engine import KeyTable, Theta

    values, table = value
    if table is None:
        theta = Theta(values)
        return theta, theta
    table = KeyTable.from_dict(table)
    return table.center(), table


def _worker_main(conn, loader: str, model_path: str | None) -> None:
    """The worker process: load, warm up, then answer requests until the pipe closes."""
    # Ctrl-C reaches the whole process group: the host, not the worker, decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Below the host's priority: loading torch or predicting yields to the audio path.
    try:
        os.nice(WORKER_NICE)
    except (OSError, AttributeError):
        pass
    try:
        predictor = _resolve(loader)(model_path)
        predictor.predict("warm up", temperature=0.0)
        predictor.interpolate("warm", "bright", 0.5)
        if getattr(predictor, "key_tracked", False):
            predictor.predict_table("warm up")
        info = repr(predictor)
        conn.send(("ready", info))
    except BaseException as exc:  # noqa: BLE001 - the host reports any failure to load
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            rid, request = conn.recv()
        except (EOFError, OSError):
            return
        op = request[0]
        try:
            # A key-tracked model's patch is its table (the host shows the table's centre).
            keyed = getattr(predictor, "key_tracked", False)
            if op == "predict":
                if keyed:
                    table = predictor.predict_table(request[1], temperature=request[2], seed=request[3])
                    result = _patch_result(table.center(), table)
                else:
                    theta = predictor.predict(request[1], temperature=request[2], seed=request[3])
                    result = _patch_result(theta, None)
            elif op == "interpolate":
                if keyed:
                    table = predictor.interpolate_table(request[1], request[2], request[3])
                    result = _patch_result(table.center(), table)
                else:
                    result = _patch_result(predictor.interpolate(request[1], request[2], request[3]), None)
            elif op == "sync":
                result = None
            else:
                raise ValueError(f"unknown request {op!r}")
            reply = (rid, True, result)
        except Exception as exc:  # noqa: BLE001 - a bad prompt fails that request only
            reply = (rid, False, str(exc) or type(exc).__name__)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class ModelWorker:
    """A restartable model process.

    Args:
        model_path: checkpoint folder, or None for the predictor's default.
        loader: ``module:callable(model_path) -> predictor`` run in the worker.
        ready_timeout_s: how long a start may take before it counts as failed.
    """

    def __init__(
        self,
        model_path: str | None = None,
        loader: str = DEFAULT_LOADER,
        ready_timeout_s: float = 120.0,
    ) -> None:
        self.model_path = model_path
        self.loader = loader
        self.ready_timeout_s = float(ready_timeout_s)
        self.state = "stopped"  # starting | ready | restarting | failed | stopped
        self.reason = ""
        self.info = ""
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._ids = itertools.count(1)
        self._inflight: dict[int, Callback] = {}
        self._waiting: list[tuple[int, tuple, Callback]] = []
        self._proc = None
        self._conn = None
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> ModelWorker:
        """Spawn the process and return at once; :meth:`wait_ready` waits for it."""
        if self._thread is None:
            self.state = "starting"
            self._thread = threading.Thread(
                target=self._manage, name="promptsynth-model", daemon=True
            )
            self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first start has succeeded or failed; True when ready."""
        self._ready.wait(self.ready_timeout_s if timeout is None else timeout)
        return self.state == "ready"

    def close(self) -> None:
        """Stop the process and fail what waits; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conn, proc = self._conn, self._proc
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass
        if proc is not None:
            proc.join(timeout=1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=1.0)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2.0)
        self._fail_all("model worker stopped")
        self.state = "stopped"

    def __enter__(self) -> ModelWorker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    # -- requests ------------------------------------------------------------------------

    def submit(self, request: tuple, callback: Callback) -> None:
        """Queue ``request``; ``callback(ok, theta_values_or_reason)`` runs on the manager
        thread. Fails at once (through the callback) when the model is not available."""
        with self._lock:
            if self._closed or self.state == "failed":
                reason = self.reason or "model worker stopped"
                fail_now = True
            else:
                fail_now = False
                rid = next(self._ids)
                if self.state == "ready" and self._conn is not None:
                    self._inflight[rid] = callback
                    try:
                        self._conn.send((rid, request))
                    except (BrokenPipeError, OSError):
                        pass  # the manager sees the death and fails it
                else:
                    self._waiting.append((rid, request, callback))
        if fail_now:
            _call(callback, False, reason)

    # -- the manager thread --------------------------------------------------------------

    def _spawn(self) -> tuple[bool, str]:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.loader, self.model_path),
            name="promptsynth-model",
            daemon=True,
        )
        proc.start()
        child.close()
        with self._lock:
            self._proc, self._conn = proc, parent
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                return False, f"model worker did not get ready within {self.ready_timeout_s:g} s"
            if _wait([parent, proc.sentinel], timeout=min(left, 0.5)):
                try:
                    kind, info = parent.recv()
                except (EOFError, OSError):
                    proc.join(timeout=1.0)
                    return False, f"model worker exited while loading (exit code {proc.exitcode})"
                return kind == "ready", info
        return False, "model worker stopped"

    def _manage(self) -> None:
        backoff = 0.5
        first = True
        while not self._closed:
            ok, info = self._spawn()
            if self._closed:
                break
            if not ok:
                self.reason = f"no model: {info}"
                if first:
                    # A model that cannot load will not load on a retry either.
                    with self._lock:
                        self.state = "failed"
                    self._fail_all(self.reason)
                    self._ready.set()
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            with self._lock:
                self.info = info
                self.state = "ready"
                self.reason = ""
                waiting, self._waiting = self._waiting, []
                for rid, request, cb in waiting:
                    self._inflight[rid] = cb
                    try:
                        self._conn.send((rid, request))
                    except (BrokenPipeError, OSError):
                        break
            first = False
            self._ready.set()
            started = time.monotonic()
            self._serve()
            if self._closed:
                break
            code = self._proc.exitcode
            with self._lock:
                self.state = "restarting"
                self.restarts += 1
            self._fail_inflight(f"model worker died (exit code {code}); restarting it")
            if time.monotonic() - started > 30.0:
                backoff = 0.5
            time.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
        self._ready.set()

    def _serve(self) -> None:
        conn, proc = self._conn, self._proc
        while not self._closed:
            try:
                ready = _wait([conn, proc.sentinel], timeout=0.5)
            except OSError:
                return
            if not ready:
                continue
            if conn in ready or conn.poll():
                try:
                    rid, ok, value = conn.recv()
                except (EOFError, OSError):
                    proc.join(timeout=1.0)
                    return
                with self._lock:
                    cb = self._inflight.pop(rid, None)
                if cb is not None:
                    _call(cb, ok, value)
            elif proc.sentinel in ready:
                proc.join(timeout=1.0)
                return

    def _fail_inflight(self, reason: str) -> None:
        with self._lock:
            cbs, self._inflight = list(self._inflight.values()), {}
        for cb in cbs:
            _call(cb, False, reason)

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            cbs = list(self._inflight.values()) + [cb for _, _, cb in self._waiting]
            self._inflight, self._waiting = {}, []
        for cb in cbs:
            _call(cb, False, reason)


def _call(cb: Callback, ok: bool, value: object) -> None:
    try:
        cb(ok, value)
    except Exception:  # noqa: BLE001 - a reply that cannot be sent must not stop the worker
        pass
