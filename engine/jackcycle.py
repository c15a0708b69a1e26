"""The compiled side of rendering in JACK's cycle (engine/jackout.py): the state words the
callbacks share with the render loop, and the callbacks themselves, numba ``cfunc``s
that libjack calls (no Python, no GIL on JACK's threads).

Each cycle ``process`` notes the cycle's frame and time (under a sequence count), wakes
the render loop (a semaphore) unless the engine is idle and no event waits, and waits
for the block until :data:`BUDGET` of the period from the cycle's start, then copies it
to the ports, or plays silence and counts a miss. ``xrun`` counts JACK's xruns;
``shutdown`` says the server went.
"""

from __future__ import annotations

from engine import jack
from engine.live import MIDI_READ2, MIDI_STATE_WORDS, MIDI_SYNC, MIDI_WRITE

__all__ = ["BUDGET", "compiled"]

#: Until when, as a fraction of the period from the cycle's start, the callback waits
#: for the render loop's block: the rest is left to JACK and to the clients after ours.
BUDGET = 0.85

# State words shared by the callback and the render loop (one int64 array).
(_CLIENT, _PORT_L, _PORT_R, _BUF_L, _BUF_R, _FRAMES, _RUNNING, _CYCLE, _DONE, _MISSES, _XRUNS, _GONE,
 _SEM_CYCLE, _SEM_DONE, _TS, _BUDGET_NS, _FRAME, _CF_ADDR, _CU_ADDR, _NU_ADDR, _PU_ADDR,
 _CUR_FRAMES, _CUR_USECS, _NEXT_USECS, _PERIOD_USECS, _TS_SEC, _TS_NSEC, _WRONG_SIZE,
 _IDLE, _QCTR, _MIDI_TAB, _MIDI_N, _SKIPS, _POSTED, _SEQ, _RAW_SEC, _RAW_NSEC, _TS_RAW) = range(38)
_N_STATE = 40
_CLOCK_REALTIME = 0
_CLOCK_MONOTONIC_RAW = 4

_compiled: dict = {}


def compiled() -> dict:
    if _compiled:
        return _compiled
    import numba
    from numba import types

    lib = jack.load()
    port_get_buffer, last_frame_time = lib["port_get_buffer"], lib["last_frame_time"]
    cycle_times, memcpy, memset = lib["cycle_times"], lib["memcpy"], lib["memset"]
    clock_gettime, sem_post, sem_timedwait = lib["clock_gettime"], lib["sem_post"], lib["sem_timedwait"]
    as_i64 = jack.as_i64_ptr

    # Compiled once a process (ctypes addresses are globals of the code: no cache).
    @numba.cfunc(types.int32(types.uint32, types.CPointer(types.int64)), nopython=True)
    def process(nframes, arg):  # pragma: no cover - runs on JACK's thread
        st = numba.carray(arg, (_N_STATE,))
        left = port_get_buffer(st[_PORT_L], nframes)
        right = port_get_buffer(st[_PORT_R], nframes)
        nbytes = nframes * 4
        n = st[_CYCLE] + 1
        # The cycle's frame and time, under a sequence count (odd while they change): a
        # reader that sees the count change, or odd, reads again later.
        st[_SEQ] += 1
        st[_FRAME] = last_frame_time(st[_CLIENT])
        st[_CUR_FRAMES] = 0
        cycle_times(st[_CLIENT], st[_CF_ADDR], st[_CU_ADDR], st[_NU_ADDR], st[_PU_ADDR])
        st[_CYCLE] = n
        st[_SEQ] += 1
        if st[_RUNNING] == 0 or nframes != st[_FRAMES]:
            if st[_RUNNING] != 0:
                st[_WRONG_SIZE] = nframes
            memset(left, 0, nbytes)
            memset(right, 0, nbytes)
            return 0
        if st[_IDLE] != 0:
            # Nothing sounds: the render loop is woken only if an event waits (in the
            # host's queue, or in a MIDI area); otherwise the block is silence.
            wake = False
            if st[_QCTR] != 0:
                q = numba.carray(as_i64(st[_QCTR]), (2,))
                wake = q[0] != q[1]
            if not wake and st[_MIDI_N] > 0:
                tab = numba.carray(as_i64(st[_MIDI_TAB]), (st[_MIDI_N],))
                for i in range(st[_MIDI_N]):
                    a = numba.carray(as_i64(tab[i]), (MIDI_STATE_WORDS,))
                    if a[MIDI_SYNC] != 0 and a[MIDI_WRITE] != a[MIDI_READ2]:
                        wake = True
            if not wake:
                memset(left, 0, nbytes)
                memset(right, 0, nbytes)
                st[_SKIPS] += 1
                return 0
            st[_IDLE] = 0
        st[_POSTED] = n
        sem_post(st[_SEM_CYCLE])
        # The deadline: the cycle's start (JACK's clock, CLOCK_MONOTONIC_RAW) plus the
        # budget, on CLOCK_REALTIME (sem_timedwait's clock).
        clock_gettime(_CLOCK_MONOTONIC_RAW, st[_TS_RAW])
        clock_gettime(_CLOCK_REALTIME, st[_TS])
        wait_ns = st[_CUR_USECS] * 1000 + st[_BUDGET_NS] - (st[_RAW_SEC] * 1000000000 + st[_RAW_NSEC])
        if st[_CUR_USECS] == 0 or wait_ns > st[_BUDGET_NS]:
            wait_ns = st[_BUDGET_NS]
        if wait_ns < 0:
            wait_ns = 0
        ns = st[_TS_NSEC] + wait_ns
        st[_TS_SEC] += ns // 1000000000
        st[_TS_NSEC] = ns % 1000000000
        while st[_DONE] != n:
            if sem_timedwait(st[_SEM_DONE], st[_TS]) != 0:
                break  # the deadline passed (or a signal): play silence
        if st[_DONE] == n:
            memcpy(left, st[_BUF_L], nbytes)
            memcpy(right, st[_BUF_R], nbytes)
        else:
            memset(left, 0, nbytes)
            memset(right, 0, nbytes)
            st[_MISSES] += 1
        return 0

    @numba.cfunc(types.int32(types.CPointer(types.int64)), nopython=True)
    def xrun(arg):  # pragma: no cover - runs on JACK's notification thread
        st = numba.carray(arg, (_N_STATE,))
        st[_XRUNS] += 1
        return 0

    @numba.cfunc(types.void(types.CPointer(types.int64)), nopython=True)
    def shutdown(arg):  # pragma: no cover - runs on a JACK thread as the server goes
        st = numba.carray(arg, (_N_STATE,))
        st[_GONE] = 1
        sem_post(st[_SEM_CYCLE])

    _compiled.update(lib=lib, process=process, xrun=xrun, shutdown=shutdown)
    return _compiled
