"""What a real-time render thread needs before it starts and after it ends: every code
path it takes run once (so that no first call, import or compilation falls on a block),
and its SCHED_FIFO priority asked for, and given back."""

from __future__ import annotations

import gc
import os

import numpy as np

from engine.engine import Engine

__all__ = ["RENDER_PRIORITY", "JACK_CLIENT_PRIORITY", "warm_up", "set_fifo", "drop_fifo"]

#: SCHED_FIFO priority of the render thread: above every ordinary thread, below JACK's
#: server (10 by default) and its clients' process threads (5), which must never wait
#: for it.
RENDER_PRIORITY = 3
#: JACK's client threads' SCHED_FIFO priority under jackd's default (-P 10). A render
#: loop in JACK's cycle (engine/jackout.py) takes its client's own priority: the
#: client's thread waits on it, so it is that client's work.
JACK_CLIENT_PRIORITY = 5


def set_fifo(priority: int) -> str:
    """Ask SCHED_FIFO ``priority`` for the calling thread (0: do not ask); returns how it
    is scheduled now, in words ("SCHED_FIFO 3", or why not)."""
    if priority <= 0:
        return "normal (not asked)"
    try:
        # pid 0: the calling thread (Linux schedules threads, not processes).
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return f"SCHED_FIFO {priority}"
    except (AttributeError, OSError) as exc:
        return f"normal (SCHED_FIFO {priority} refused: {exc})"


def drop_fifo(note: str) -> None:
    """Back to ordinary scheduling once the loop ends (``note``: what :func:`set_fifo`
    said): what follows (the recording's last write, the stream's close, the
    interpreter's exit, which frees everything and takes 100 ms or more) must not hold
    the CPU from other real-time threads."""
    if note.startswith("SCHED_FIFO"):
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except (AttributeError, OSError):
            pass


def warm_up(sample_rate: int, blocksize: int) -> None:
    """Run every code path the render thread takes once, on a scratch engine: a first
    call can cost milliseconds (numpy imports parts of itself lazily: the first
    ``np.percentile`` takes 8 ms; the voice kernel compiles, or loads from numba's cache,
    on its first call), and it must not happen on the first block that needs it."""
    from engine.keytable import KEY_ANCHORS, VELOCITY_LAYERS, KeyTable

    np.percentile(np.arange(8.0), [1, 50])
    scratch = Engine(sample_rate, max_voices=2)
    flat = KeyTable.flat({"index_peak": 2.0, "index_decay_s": 0.5, "noise_level": 0.1, "noise_decay_s": 0.5})
    KeyTable.from_parts(*flat.parts())  # how a table that crossed shared memory is rebuilt
    scratch.set_patch(0, KeyTable(KEY_ANCHORS, VELOCITY_LAYERS,
                                  np.broadcast_to(flat.values[0, 0], (len(KEY_ANCHORS), len(VELOCITY_LAYERS), flat.values.shape[2]))))
    out = np.zeros((blocksize, 2), dtype=np.float32)
    for pitch in (60, 64, 67):
        scratch.note_on(0, pitch, 90)
    scratch.control_change(0, 64, 127)
    scratch.pitch_bend(0, 100)
    scratch.set_param(0, "mod_index", 2.0)
    # The harmonic carrier (schema 5): a note builds its tables (a compiled function of its
    # own, loaded on its first call), a live change rebuilds them into the other buffer.
    spectra = {f"held_h{k}": -3.0 * k for k in range(1, 9)} | {"onset_h2": -6.0, "darken_db": 6.0, "env_curve": 0.5}
    scratch.set_patch(1, KeyTable.flat(spectra))
    scratch.note_on(1, 48, 100)
    scratch.render_into(out)
    scratch.set_spectrum(1, [-2.0 * k for k in range(32)])
    scratch.render_into(out)
    scratch.note_off(0, 60)
    scratch.control_change(0, 64, 0)
    scratch.panic()
    for _ in range(4):
        scratch.render_into(out)
    gc.collect(0)
