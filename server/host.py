"""The live host: engine + audio output + OSC server + MIDI inputs + model worker.

:class:`Host` owns their lifecycle (start in an order that gets to "ready" fast: the
model process is spawned first and loads while the rest opens) and wires the few
collaborators each part uses: the address space and the MIDI inputs get the engine,
the channels' patches (:mod:`server.state`), the bank, the model gateway
(:mod:`server.gateway`, where a model's answer is applied) and the status source
(:mod:`server.status`), never the host itself.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.live import LiveEngine, LiveOutput
from server.addresses import AddressSpace
from server.audiofit import AudioFits
from server.gateway import ModelGateway
from server.osc import OscServer, Refused
from server.routing import Folders
from server.scheduler import Clock, Scheduler, SchedulerFull
from server.state import ChannelStates
from server.status import HostStatus
from server.worker import DEFAULT_LOADER, ModelWorker

__all__ = ["Host", "HostConfig", "MAX_EVENTS_PER_BLOCK", "MAX_SPLITS_PER_BLOCK"]

#: Most events the audio callback applies in one block; the rest of a burst follows in
#: the next blocks. A block of 32 note-ons that each steal a voice measured 1.0 ms
#: median and 1.8-3.3 ms at the p99/max on the 2-core development machine (period 2.7
#: ms), too close; 16 halves that and still takes 6,000 events a second at 128 frames
#: (a MIDI cable carries about 1,000).
MAX_EVENTS_PER_BLOCK = 16
#: Most pieces the render process renders a block in (``Engine.max_splits_per_block``).
#: Each piece is a render pass. With the numpy render (~200 us a pass at 32 voices,
#: paced, on the 2-core machine) 16 MIDI note-ons stamped by arrival at 16 frames of one
#: block cost 2.9-3.4 ms median, 1.3-1.5 ms in at most 4 pieces, 0.9-1.0 ms in 2. With
#: the compiled kernel a pass costs 80-140 us and the note-ons dominate: 0.8-0.9 ms in
#: 17 pieces, 0.6 ms in 4 or 2, 0.5-0.6 ms at one frame (`benchmarks/bench_engine.py`).
#: Up to 2 event times a block stay sample-accurate.
MAX_SPLITS_PER_BLOCK = 2
#: In JACK's cycle, most patch changes the render process takes in one block
#: (``Engine.max_tables_per_block``): each key table is rebuilt there in 0.2-0.5 ms; a
#: burst (program changes on every channel, a stream of junk MIDI) is taken one a block.
MAX_TABLES_PER_BLOCK = 1
#: In JACK's cycle, most events waiting in the render process's pending table
#: (``Engine.max_pending``): a flood beyond what blocks apply waits in the shared queue's
#: ring instead, which then fills, so that its senders are told (QueueFull: /fail to OSC).
#: Rendering ahead has the margin for both and keeps them unbounded: with them, the
#: suite's malformed-MIDI test (a 3 KB event of junk, program changes and resets among
#: its messages, then a note-on) missed its note by 2 s in 2 of 3 full runs; the cause
#: was not pinned down.
MAX_PENDING = 256


@dataclass
class HostConfig:
    """Everything ``promptsynth play`` can set (see its --help)."""

    device: int | str | None = None
    sample_rate: int = 48000
    blocksize: int = 128
    latency: float | str = "low"
    #: ``--render``: "ahead" (PortAudio, rendering ahead) or "cycle" (in JACK's cycle).
    render: str = "ahead"
    max_voices: int = 32
    osc_host: str = "127.0.0.1"
    osc_port: int = 9000
    #: ``--allow`` networks (:func:`server.osc.parse_networks`); None: every sender.
    osc_allow: list | None = None
    midi_in: list[str] = field(default_factory=list)
    midi_virtual: list[str] = field(default_factory=list)
    model: str | None = None
    model_loader: str = DEFAULT_LOADER
    use_model: bool = True
    bank: str | None = None
    record: str | None = None
    #: ``--audio-dir``: the folder whose recordings /patch/from-audio may read (None: it
    #: is refused).
    audio_dir: str | None = None
    #: ``--velocity-curve``: a name of ``engine.VELOCITY_CURVES`` or an exponent.
    velocity_curve: str | float = "medium"
    #: ``--tuning FILE.scl`` and ``--keymap FILE.kbm`` (None: equal temperament).
    tuning: str | None = None
    keymap: str | None = None
    #: ``--tuning-dir``: the folder whose .scl/.kbm files OSC /tuning/scl may read.
    tuning_dir: str | None = None
    #: ``--reverb-room`` ...: global effect settings by name (``engine.effects``).
    effects: dict[str, float] = field(default_factory=dict)
    #: ``--reverb-send`` ...: every channel's send level, by effect.
    sends: dict[str, float] = field(default_factory=dict)
    #: ``--web [PORT]``: serve the page (server.web) there (None: no page).
    web_port: int | None = None
    web_host: str = "127.0.0.1"
    #: What every request and socket of the page must carry (None: nothing).
    web_token: str | None = None
    #: ``--bank-next-cc``, ``--bank-prev-cc``: controllers whose press (value 64 or more)
    #: plays the channel's next (previous) bank patch, as ``/bank/next`` (None: none).
    bank_next_cc: int | None = None
    bank_prev_cc: int | None = None


class Host:
    """A running instrument. ``start()`` returns once everything (model included) is
    ready or has failed in a way the host can play on without; ``close()`` is safe twice.
    """

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        # The engine renders in a process of its own (engine.live): no thread of this
        # process can hold it off.
        self.engine = LiveEngine(config.sample_rate, config.max_voices)
        # A burst of events is spread over blocks rather than underrunning one.
        self.engine.max_events_per_block = MAX_EVENTS_PER_BLOCK
        self.engine.max_splits_per_block = MAX_SPLITS_PER_BLOCK
        if config.render == "cycle":
            # With no render-ahead to absorb a heavy block: at most one patch change a
            # block, and a bounded table of waiting events.
            self.engine.max_tables_per_block = MAX_TABLES_PER_BLOCK
            self.engine.max_pending = MAX_PENDING
        try:
            # Checked here, so that a bad one stops the play command with its error; the
            # render process applies it before its first block.
            self.engine.set_velocity_curve(config.velocity_curve)
            for name, value in config.effects.items():
                self.engine.set_effect(name, value)
            for effect, level in config.sends.items():
                for ch in range(16):
                    self.engine.set_send(ch, effect, level)
            from server.midimap import bank_steps

            #: Controllers that step the bank (``--bank-next-cc``, ``--bank-prev-cc``).
            self.bank_steps = bank_steps(config.bank_next_cc, config.bank_prev_cc)
            if config.tuning is not None:
                from engine.tuning import Tuning

                self.engine.set_tuning(Tuning.from_files(config.tuning, config.keymap).notes)
            self.output = LiveOutput(
                self.engine, config.device, config.blocksize, config.latency, record=config.record,
                render=config.render, main_module="server.render",
            )
        except ValueError:
            self.engine.close()
            raise
        self.scheduler: Scheduler | None = None
        self.clock: Clock | None = None
        self.osc: OscServer | None = None
        #: The address space: OSC packets and the play command's prompt line both go
        #: through it.
        self.addresses: AddressSpace | None = None
        self.midi = None  # a MidiHub once started
        self.web = None  # a server.web.WebServer once started, with --web
        #: Called as ``on_midi_change(line)`` when a MIDI input is connected or lost (the
        #: play command prints it); the notify targets get /midi/connected, /midi/lost.
        self.on_midi_change: Callable[[str], None] | None = None
        self.bank = None
        self.bank_reason = ""
        #: Each channel's patch: the one place the host keeps it (server.state).
        self.channels = ChannelStates(self.engine, self._notify)
        #: The model worker and the requests waiting on it.
        self.model = ModelGateway(self.channels, "" if config.use_model else "no model: started with --no-model")
        #: What /status, /notify, /sync and /midi/list read.
        self.status = HostStatus(self.engine, self.output, self.model)
        self.ready_s: float | None = None
        self._closed = False
        self._watch = (-1, 0.0)  # (engine frame last seen, monotonic time it changed)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, ready_timeout_s: float = 120.0) -> Host:
        t0 = time.monotonic()
        if self.config.use_model:
            self.model.worker = ModelWorker(
                self.config.model, self.config.model_loader, ready_timeout_s
            ).start()
        try:
            self._open_bank()
            self.output.start()
            self.clock = Clock(self.output)
            lead = max(0.1, 3.0 * self.output.blocksize / self.engine.sample_rate)
            self.scheduler = self.status.scheduler = Scheduler(lead_s=lead)
            self.addresses = AddressSpace(
                self.engine, self.channels, bank=self.bank, bank_reason=self.bank_reason,
                model=self.model, status=self.status,
                folders=Folders(self.config.tuning_dir, self.config.audio_dir),
            )
            self.osc = OscServer(
                self.addresses,
                self._run_at,
                self.config.osc_host,
                self.config.osc_port,
                allow=self.config.osc_allow,
                frame_at=self.output.frame_at,
            )
            self.status.osc = self.osc
            from server.midi_hub import MidiHub
            from server.midi_in import MidiTargets

            targets = MidiTargets(
                self.engine, self.output, route=self.addresses.run, on_error=self.midi_error,
                bank_steps=self.bank_steps,
            )
            self.midi = self.status.midi = MidiHub(
                targets, self.config.midi_in, self.config.midi_virtual, on_change=self._midi_changed
            )
            if self.worker is not None:
                self.worker.wait_ready()
                if self.worker.state != "ready":
                    self.model_reason = (
                        self.worker.reason or "no model: the model worker did not start"
                    )
            # What exists now lives as long as the host: keep the cyclic GC from scanning
            # it again and again (a collection holds the GIL the audio callback needs).
            gc.freeze()
            self.osc.start()
            if self.config.web_port is not None:
                self._start_web()
        except BaseException:
            self.close()
            raise
        self.ready_s = time.monotonic() - t0
        return self

    def _start_web(self) -> None:
        """The page (docs/web.md): a subscriber of every change notice, its messages
        through the same address space."""
        from server.fx_addresses import effect_status
        from server.web import EFFECTS_NOTICE, Watch, WebServer, hello_messages

        effects = lambda: effect_status(self.engine)  # noqa: E731 - what /status appends
        self.web = WebServer(
            self.addresses,
            lambda: hello_messages(self.channels, self.addresses.addresses, effects),
            self.config.web_host,
            self.config.web_port,
            self.config.web_token,
            watches=(Watch(EFFECTS_NOTICE, effects),),
        ).start()

    def _open_bank(self) -> None:
        try:
            from patches import Bank

            self.bank = Bank(self.config.bank, factory=True)
            self.bank_reason = ""
            self.model.fits = AudioFits(self.bank, self.channels.apply_bank_patch)
        except Exception as exc:  # noqa: BLE001 - play on without a bank, say why
            self.bank, self.bank_reason = None, str(exc)

    def close(self) -> None:
        """All notes off, then stop MIDI, OSC, the scheduler, the stream (the recording is
        finalised) and the model process. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.midi is not None:
            self.midi.close()
        if self.web is not None:
            self.web.close()
        if self.osc is not None:
            self.osc.close()
        if self.scheduler is not None:
            self.scheduler.close()
        if self.output.active:
            self.engine.panic()
            # Let the panic's short fade be rendered and played out (and reach the
            # recording): the render-ahead, then a few blocks.
            block_s = self.output.blocksize / self.engine.sample_rate
            time.sleep(max(0.05, self.output.ahead_s + 4.0 * block_s))
        self.output.close()
        if self.worker is not None:
            self.worker.close()

    def audio_stalled(self, timeout_s: float = 1.0) -> bool:
        """True once the audio stream has rendered nothing for ``timeout_s`` seconds: the
        audio server stopped or the device vanished. Call it now and then (the play loop
        does, every 0.25 s); it only reads the engine's frame counter, so it cannot hang
        on a dead audio server."""
        frame, now = self.engine.frame, time.monotonic()
        if frame != self._watch[0]:
            self._watch = (frame, now)
            return False
        return now - self._watch[1] > timeout_s

    def abandon(self) -> None:
        """Shut down after the audio stream died: stop OSC, the scheduler and the model,
        finalise the recording, and leave the stream and the MIDI ports alone (PortAudio's
        and rtmidi's JACK clients hang or abort when closed after their server died).
        The caller should exit the process with ``os._exit`` right after."""
        if self._closed:
            return
        self._closed = True
        if self.midi is not None:
            self.midi.abandon()
        if self.web is not None:
            self.web.close()
        if self.osc is not None:
            self.osc.close()
        if self.scheduler is not None:
            self.scheduler.close()
        self.output.abandon()
        if self.worker is not None:
            self.worker.close()

    def __enter__(self) -> Host:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the model ----------------------------------------------------------------------

    @property
    def worker(self) -> ModelWorker | None:
        """The model worker process (the model gateway's), or None."""
        return self.model.worker

    @property
    def model_reason(self) -> str:
        """Why there is no model, where there is none."""
        return self.model.reason

    @model_reason.setter
    def model_reason(self, reason: str) -> None:
        self.model.reason = reason

    # -- notices -------------------------------------------------------------------------

    def _notify(self, address: str, *args) -> None:
        """A change notice: to the OSC notify targets and to every page."""
        if self.osc is not None:
            self.osc.notify(address, *args)
        if self.web is not None:
            self.web.notify(address, *args)

    def midi_error(self, source: str, what: str) -> None:
        """Malformed MIDI from ``source`` (its input's thread, at most once a second a
        source): ``/midi/error s:source s:what`` to the notify targets, and a line to
        the play command."""
        self._notify("/midi/error", source, what)
        if self.on_midi_change is not None:
            self.on_midi_change(f"MIDI input {source}: malformed MIDI: {what}")

    def _midi_changed(self, kind: str, name: str, released: int) -> None:
        """A MIDI source connected or vanished (the hub's thread): tell the notify
        targets and the play command."""
        if kind == "lost":
            line = f"MIDI input lost: {name} (released {released} note{'s' * (released != 1)})"
            address, args = "/midi/lost", (name, released)
        else:
            line = f"MIDI input connected: {name}"
            address, args = "/midi/connected", (name,)
        self._notify(address, *args)
        if self.on_midi_change is not None:
            self.on_midi_change(line)

    def _run_at(self, when: float, actions: list) -> None:
        """A bundle tagged ``when`` (wall clock): run its actions with its exact frame."""
        frame = self.clock.frame_for(when)
        try:
            self.scheduler.at(when, frame, actions)
        except SchedulerFull as exc:
            raise Refused("", f"{exc}; try again shortly") from None

    def describe(self) -> str:
        """The one ready line."""
        names = [p.name for p in self.midi.inputs] if self.midi is not None else []
        waiting = self.midi.waiting() if self.midi is not None else []
        if self.midi is not None and self.midi.all:
            names.insert(0, "all")
        names += [f"waiting for {w!r}" for w in waiting]
        midi = ", ".join(names) or "none"
        block_s = self.output.blocksize / self.engine.sample_rate
        if self.worker is not None and self.worker.state == "ready":
            model = "ready"
        else:
            model = f"unavailable ({self.model_reason})"
        out = self.output
        if out.render == "cycle":
            latency = (f"rendered in JACK's cycle: latency {out.device_latency_ms:.1f} ms from a JACK MIDI "
                       f"key (the device's), {out.latency_ms:.1f} ms from OSC (one period "
                       f"{out.ahead_ms:.1f} + device {out.device_latency_ms:.1f})")
        else:
            latency = (f"latency {out.latency_ms:.1f} ms (render-ahead {out.ahead_ms:.1f} + block "
                       f"{1000 * block_s:.1f} + device {out.device_latency_ms:.1f})")
        return (
            f"promptsynth ready: osc {self.osc.host}:{self.osc.port} | midi in: {midi} | "
            f"device: {out.device_name} | {self.engine.sample_rate} Hz, block "
            f"{out.blocksize} | {latency} | render thread: {out.priority_note} | "
            f"model: {model} | ready in {self.ready_s:.2f} s"
            + (f" | web {self.web.url}" if self.web is not None else "")
        )
