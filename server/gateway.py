"""The model as the address space sees it: requests for patches (words, morphs, the
next choices for words) sent to the model worker process, each answer applied to its
channel in one place (:meth:`ModelGateway._answered`), questions whose answer plays
nothing (the names of the words' list of choices, :meth:`ModelGateway.ask`), and fits of
recordings (:class:`server.audiofit.AudioFits`)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from server.state import PatchTicket
from server.worker import (
    ChoiceRequest,
    ChoicesRequest,
    ModelWorker,
    MorphRequest,
    PatchRequest,
    SyncRequest,
)

__all__ = ["ModelGateway", "MAX_PENDING"]

#: Most prompts and morphs waiting for the model at once; more are refused.
MAX_PENDING = 64


class ModelGateway:
    """The model worker and what waits on it.

    Args:
        channels: where an answer plays (:class:`server.state.ChannelStates`).
        reason: why there is no model, where there is none ("" while one may start).

    ``worker`` (a started :class:`server.worker.ModelWorker`, or None) and ``fits`` (an
    :class:`server.audiofit.AudioFits`, with the bank) are set by the host as they open.
    """

    def __init__(self, channels, reason: str = "") -> None:
        self.channels = channels
        self.reason = reason
        self.worker: ModelWorker | None = None
        self.fits = None
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Requests sent and not answered yet."""
        return self._pending

    def refusal(self) -> str | None:
        """Why a request cannot be taken now (no model, too many waiting), or None."""
        worker = self.worker
        if worker is None or worker.state == "failed":
            return self.reason or "no model"
        if self._pending >= MAX_PENDING:
            return f"the model has {MAX_PENDING} requests waiting; try again shortly"
        return None

    def request(self, request: PatchRequest | MorphRequest | ChoiceRequest, ticket: PatchTicket) -> None:
        """Ask the model for a patch for ``ticket.channel``; the answer is applied there,
        then ``ticket`` is told."""
        if self.worker is None:
            ticket.on_fail(self.reason or "no model")
            return
        with self._lock:
            self._pending += 1
        self.worker.submit(request, functools.partial(self._answered, ticket))

    def _answered(self, ticket: PatchTicket, ok: bool, value: object) -> None:
        """The model's answer (the worker's manager thread, a ``ModelPatch``): the patch
        goes to its channel, then the one who asked hears of it."""
        with self._lock:
            self._pending -= 1
        if not ok:
            ticket.on_fail(str(value))
            return
        self.channels.apply(
            ticket.channel, value.table, ticket.label, ticket.prompt,
            instrument=value.instrument, choice=value.choice, choices=value.choices,
        )
        ticket.on_done(value)

    def ask(
        self, request: ChoicesRequest, on_done: Callable[[object], None], on_fail: Callable[[str], None]
    ) -> None:
        """Ask the model something that plays nothing: ``on_done(value)`` with its answer
        (a ChoicesRequest's: the names, a tuple of str), or ``on_fail(reason)``."""
        if self.worker is None:
            on_fail(self.reason or "no model")
            return
        with self._lock:
            self._pending += 1

        def answered(ok: bool, value: object) -> None:
            with self._lock:
                self._pending -= 1
            if ok:
                on_done(value)
            else:
                on_fail(str(value))

        self.worker.submit(request, answered)

    def from_audio(self, path: str, name: str, ticket: PatchTicket) -> None:
        """Fit a patch to the recording ``path``, save it in the bank as ``name`` and play
        it on ``ticket.channel``."""
        if self.fits is None:
            ticket.on_fail("no patch bank to save the fit in")
            return
        self.fits.start(path, name, ticket)

    def after_answers(self, then: Callable[..., None]) -> None:
        """Call ``then()`` once every request sent so far has been answered (at once
        where no model runs)."""
        if self.worker is not None and self.worker.state != "failed":
            self.worker.submit(SyncRequest(), lambda ok=True, value=None: then())
        else:
            then()
