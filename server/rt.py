"""Real-time scheduling for the host's timing threads: the MIDI poller (it timestamps
what arrives) and the bundle scheduler (it queues timetagged events in time).

Both do small, bounded work at the lowest real-time priority, so that a busy machine
(a model training, a browser) cannot delay a timestamp or a scheduled event by a time
slice. The engine renders in a process of its own (engine.live) and never waits for
this process's GIL. The OSC receiver and the model manager stay at ordinary priority: a
flood of packets keeps the OSC thread busy, and at a real-time priority that starved
JACK's client threads through the kernel's real-time throttling.

Where the process may not use real-time scheduling (no rtprio limit for the user, not
Linux), threads stay as they are and :func:`promote_current_thread` returns False.
"""

from __future__ import annotations

import os
import threading

__all__ = ["promote_current_thread", "HOST_THREAD_PRIORITY"]

#: SCHED_RR priority of the host's non-audio threads: the lowest, below JACK's clients.
HOST_THREAD_PRIORITY = 1


def promote_current_thread() -> bool:
    """Run the calling thread under SCHED_RR at :data:`HOST_THREAD_PRIORITY`; False when
    the system refuses (the thread then keeps its ordinary priority)."""
    if os.environ.get("PROMPTSYNTH_NO_RT_THREADS"):
        return False
    try:
        tid = threading.get_native_id()
        # RESET_ON_FORK: a process started from this thread (the model worker) is an
        # ordinary process, never a real-time one.
        policy = os.SCHED_RR | getattr(os, "SCHED_RESET_ON_FORK", 0)
        os.sched_setscheduler(tid, policy, os.sched_param(HOST_THREAD_PRIORITY))
        return True
    except (AttributeError, OSError):
        return False
