"""The model in its own process, so that no prediction ever runs on the host's threads.

:class:`ModelWorker` spawns a process (``multiprocessing`` spawn context: no forked
audio or socket state) that loads the predictor, warms it up with one patch and then
answers requests in order over a pipe. The host submits a request with the one function
that takes its answer; a manager thread reads results and calls it. If the process dies,
every request in flight fails with the reason and a new process is started (with
back-off); requests made meanwhile wait for it.

Requests and results are small typed records (:mod:`server.model_requests`:
:class:`PatchRequest`, :class:`MorphRequest`, :class:`ChoiceRequest`,
:class:`ChoicesRequest`, :class:`SyncRequest`; a result is a :class:`ModelPatch`, a
validated :class:`engine.KeyTable` with the name of the instrument it is, a list of
choices' names, or a reason) that cross the pipe as JSON: no pickle of anything a user
sent.
"""

from __future__ import annotations

import importlib
import itertools
import json
import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing.connection import wait as _wait

from server.model_requests import (
    MAX_CHOICES,
    REQUESTS,
    ChoiceRequest,
    ChoicesRequest,
    ModelPatch,
    MorphRequest,
    PatchRequest,
    Request,
    SyncRequest,
    read_answer,
)
from server.model_requests import answer as answer_request

__all__ = [
    "ModelWorker",
    "WorkerError",
    "DEFAULT_LOADER",
    "load_predictor",
    "PatchRequest",
    "MorphRequest",
    "ChoiceRequest",
    "ChoicesRequest",
    "SyncRequest",
    "Request",
    "ModelPatch",
    "MAX_CHOICES",
]

#: ``module:callable`` that builds the predictor from a checkpoint path (or None).
DEFAULT_LOADER = "server.worker:load_predictor"

#: One torch thread, slightly below normal priority: on a small machine the host's
#: threads keep a core (two torch threads caused underruns on 2 cores). Not nice 19: on a
#: loaded machine that starved the worker (prompt -> patch 64 ms median, against 30 ms at 5).
WORKER_THREADS = 1
WORKER_NICE = 5
#: ``answer(ok, value)``: value is a ModelPatch (the names of a list for a ChoicesRequest,
#: None for a sync) when ok, else the reason.
Answer = Callable[[bool, object], None]


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


def _send(conn, message: dict) -> None:
    conn.send_bytes(json.dumps(message).encode("utf-8"))


def _recv(conn) -> dict:
    return json.loads(conn.recv_bytes().decode("utf-8"))


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
        predictor.patch("warm up", temperature=0.0)
        predictor.morph("warm", "bright", 0.5)
        _send(conn, {"ready": repr(predictor)})
    except BaseException as exc:  # noqa: BLE001 - the host reports any failure to load
        _send(conn, {"error": f"{type(exc).__name__}: {exc}"})
        return
    while True:
        try:
            message = _recv(conn)
        except (EOFError, OSError, ValueError):
            return
        rid = message.pop("id")
        try:
            request = REQUESTS[message["op"]](**message)
            reply = answer_request(predictor, request)
        except Exception as exc:  # noqa: BLE001 - a bad prompt fails that request only
            reply = {"ok": False, "error": str(exc) or type(exc).__name__}
        try:
            _send(conn, {"id": rid, **reply})
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
        self._inflight: dict[int, Answer] = {}
        self._waiting: list[tuple[int, Request, Answer]] = []
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

    def submit(self, request: Request, answer: Answer) -> None:
        """Queue ``request``; ``answer(ok, patch_or_reason)`` runs on the manager thread.
        Fails at once (through ``answer``) when the model is not available."""
        if not isinstance(request, (PatchRequest, MorphRequest, ChoiceRequest, ChoicesRequest, SyncRequest)):
            raise TypeError(
                "request must be a PatchRequest, MorphRequest, ChoiceRequest, ChoicesRequest or SyncRequest, "
                f"got {request!r}"
            )
        callback = answer
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
                        _send(self._conn, {"id": rid, **asdict(request)})
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
                    message = _recv(parent)
                except (EOFError, OSError, ValueError):
                    proc.join(timeout=1.0)
                    return False, f"model worker exited while loading (exit code {proc.exitcode})"
                if "ready" in message:
                    return True, str(message["ready"])
                return False, str(message.get("error", "the model worker failed to load"))
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
                        _send(self._conn, {"id": rid, **asdict(request)})
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
                    message = _recv(conn)
                except (EOFError, OSError, ValueError):
                    proc.join(timeout=1.0)
                    return
                with self._lock:
                    cb = self._inflight.pop(message.get("id"), None)
                if cb is not None:
                    _call(cb, *read_answer(message))
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


def _call(cb: Answer, ok: bool, value: object) -> None:
    try:
        cb(ok, value)
    except Exception:  # noqa: BLE001 - a reply that cannot be sent must not stop the worker
        pass
