"""What the host says of itself (``/status``, ``/midi/list``), where its notices go
(``/notify``) and when everything sent so far is done (``/sync``): the status source of
:mod:`server.host_addresses`."""

from __future__ import annotations

import time
from collections.abc import Callable

from server.fx_addresses import effect_status

__all__ = ["HostStatus"]


class HostStatus:
    """The host's counts and clocks, read when asked.

    Args:
        engine: the engine (voices, sample rate, effect settings and sends, its frame).
        output: the audio output (underruns, load, latency, ``frame_at``).
        model: the model gateway (:class:`server.gateway.ModelGateway`), or None.

    ``osc`` (the :class:`server.osc.OscServer`), ``midi`` (the
    :class:`server.midi_hub.MidiHub`) and ``scheduler`` are set by the host once they
    exist: they are made after the address space that reads them.
    """

    def __init__(self, engine, output, model=None) -> None:
        self.engine = engine
        self.output = output
        self.model = model
        self.osc = None
        self.midi = None
        self.scheduler = None

    # -- counts --------------------------------------------------------------------------

    @property
    def midi_errors(self) -> int:
        """MIDI messages that were malformed or could not be applied, over all inputs."""
        return self.midi.errors if self.midi is not None else 0

    @property
    def midi_inputs(self) -> int:
        """MIDI inputs open now (virtual ports and connected sources)."""
        return len(self.midi.inputs) if self.midi is not None else 0

    def midi_names(self) -> list[str]:
        """The MIDI inputs open now, by name."""
        return [p.name for p in self.midi.inputs] if self.midi is not None else []

    def fields(self) -> list:
        """``/status.reply``'s values (docs/osc.md, "The host"). New fields go at the end:
        clients that read the first six keep working."""
        out, osc = self.output, self.osc
        worker = self.model.worker if self.model is not None else None
        return [
            int(self.engine.active_voices),
            int(out.underflows),
            float(out.cpu_load),
            int(self.engine.sample_rate),
            int(out.blocksize),
            float(out.latency_ms),
            int(osc.dropped) if osc is not None else 0,
            int(osc.failed) if osc is not None else 0,
            int(osc.errors) if osc is not None else 0,
            int(worker.restarts) if worker is not None else 0,
            int(self.midi_errors),
            float(out.ahead_ms),
            float(out.headroom_ms()["min"]),
            int(out.ring_underruns),
            int(out.device_underflows),
            int(self.midi_inputs),
            *effect_status(self.engine),
        ]

    # -- notify targets ------------------------------------------------------------------

    def add_notify(self, target: tuple[str, int]) -> bool:
        """Send every reply and notice to ``target`` too; False when there are too many."""
        return self.osc.add_notify(target)

    def remove_notify(self, host: str) -> None:
        self.osc.remove_notify(host)

    # -- sync ----------------------------------------------------------------------------

    def sync(self, then: Callable[[], None]) -> None:
        """Call ``then`` once every earlier model request has been answered and every
        event queued so far has been rendered."""

        def after_model():
            self._after_frame(self.output.frame_at(), then, time.monotonic() + 1.0)

        if self.model is not None:
            self.model.after_answers(after_model)
        else:
            after_model()

    def _after_frame(self, target: int, then: Callable[[], None], give_up: float) -> None:
        """Call ``then`` once the engine has rendered past frame ``target`` (polled)."""
        if (
            self.engine.frame > target
            or self.scheduler is None
            or time.monotonic() > give_up
            or not self.output.active
        ):
            then()
            return
        self.scheduler.at(
            time.time() + self.scheduler.lead_s + 0.002,
            None,
            [lambda f: self._after_frame(target, then, give_up)],
        )
