"""Real-time scheduling for the host's own threads, so that the GIL cannot be held
hostage by a thread that the kernel has preempted.

The audio callback is Python: every block it must take the GIL. JACK runs it at a
real-time priority, but the GIL goes to whichever thread holds it, and a host thread at
ordinary priority (OSC, scheduler, model manager) that the kernel preempts while holding
it (a busy machine: a model training, a browser) keeps the callback waiting for a whole
time slice: an underrun. Running those threads at the lowest real-time priority, below
the audio thread, means nothing ordinary can preempt them; each holds the GIL for at most
the switch interval (0.5 ms) and hands it over. Their work is small and bounded (the OSC
thread is rate-limited), so they cannot starve the machine.

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
