"""The render process: ``python -m engine.live SPEC`` (or ``python -m server.render SPEC``,
which adds the MIDI of JACK's cycle). It maps the shared memory the host made
(engine/live.py), opens the output (in JACK's cycle, engine/jackout.py, or rendering
ahead through PortAudio, engine/output.py), says ``ready`` on stdout, and renders on its
main thread until the host says stop (or goes).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from engine.device import AudioError
from engine.live import C_ABANDON, C_STOP, EXIT_SERVER_GONE, JACK_CLIENT_NAME, _Shared
from engine.status import STOPPED

__all__ = ["render_main", "CLOSE_GRACE_S", "EXIT_CLOSE_HUNG", "EXIT_SERVER_GONE"]

#: How long the render process waits for its stream to close before it exits anyway.
CLOSE_GRACE_S = 5.0
#: Its exit status then.
EXIT_CLOSE_HUNG = 4
#: Most voices a live spectrum change rebuilds before one chunk (``VoiceBank.max_rebuilds``).
MAX_REBUILDS = 16


def render_main(spec: dict, make_midi=None) -> int:
    """The render process: ``spec`` as :meth:`LiveOutput.start` writes it. ``make_midi``
    (in JACK's cycle): ``make_midi(engine, areas)`` gives the object whose ``feed`` queues
    the MIDI of each cycle (``areas``: the shared MIDI areas, :data:`MIDI_SLOTS`)."""
    from engine.engine import Engine
    from engine.output import AudioOutput

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The recorder's writer is the only other Python thread here: let the render loop
    # have the GIL back within half a millisecond of asking.
    sys.setswitchinterval(0.0005)
    shared = _Shared(spec["path"], create=False)
    status, control = shared.status, shared.control
    engine = Engine(spec["sample_rate"], spec["max_voices"], queue=shared.queue())
    engine.max_events_per_block = spec["max_events_per_block"]
    engine.max_splits_per_block = spec["max_splits_per_block"]
    engine.max_tables_per_block = spec.get("max_tables_per_block")
    engine.max_pending = spec.get("max_pending")
    engine.voices.max_rebuilds = MAX_REBUILDS
    kind = AudioOutput
    extra = {}
    if spec.get("render") == "cycle":
        from engine.jackout import JackOutput

        kind = JackOutput
        extra["midi"] = make_midi(engine, shared.midi) if make_midi is not None else None
        if spec["record"] is None:
            # While nothing sounds the render loop sleeps (a recording wants every block,
            # each at its time, so it never does).
            extra["watch"] = (engine.queue.counters, [state for state, _ in shared.midi])
    out = kind(
        engine, spec["device"], spec["blocksize"], spec["latency"], record=spec["record"],
        client_name=JACK_CLIENT_NAME, status=status, **extra,
    )
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    try:
        out.start()  # the figures, the clock and the frame are in `status` from here on
    except AudioError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    parent = spec["parent"]
    clock = time.monotonic
    next_parent = [clock() + 1.0]

    def hook() -> bool:
        shared.serial[:] = engine.patch_serial
        now = clock()
        if now >= next_parent[0]:
            next_parent[0] = now + 1.0
            if os.getppid() != parent:  # the host is gone: nobody will stop us
                stopping.append(1)
        return not (control[C_STOP] or control[C_ABANDON] or stopping)

    hook()
    priority = out.claim_priority()  # this thread renders
    info = {"device": out.device_name, "priority": priority}
    if kind is not AudioOutput:
        info["order_port"] = out.order_port
    print("ready " + json.dumps(info), flush=True)
    out.run(hook)
    gone = out.server_gone
    if gone or control[C_ABANDON]:
        out.abandon()
        status["state"] = STOPPED
        sys.stdout.flush()
        os._exit(EXIT_SERVER_GONE if gone else 0)
    # Closing a PortAudio JACK stream whose server died blocks for good; that happens
    # here when the host was killed before it could ask us to abandon (it is the one
    # that watches the server). The recording is finalised before the close, so giving
    # up on the close loses nothing.
    guard = threading.Timer(CLOSE_GRACE_S, _close_hung)
    guard.daemon = True
    guard.start()
    out.stop()
    guard.cancel()
    status["state"] = STOPPED
    return 0


def _close_hung() -> None:
    try:  # the host that reads this may be gone: a broken pipe must not stop the exit
        print(f"error: the audio stream did not close within {CLOSE_GRACE_S:g} s "
              "(its server is gone?); exiting without it", flush=True)
    finally:
        os._exit(EXIT_CLOSE_HUNG)
