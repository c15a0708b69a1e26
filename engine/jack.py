"""libjack and the few libc calls that compiled JACK callbacks make, loaded once a process.

JACK's process callbacks here are numba ``cfunc``s (no Python and no GIL on JACK's
thread): they call these functions through their addresses. :func:`load` gives each as
a ctypes function (callable from Python too); :func:`as_i64_ptr` lets compiled code see
an int64 address as an array.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

__all__ = ["JackError", "load", "as_i64_ptr", "Timespec", "PORT_IS_INPUT", "PORT_IS_OUTPUT",
           "NO_START_SERVER", "AUDIO_TYPE", "MIDI_TYPE"]

PORT_IS_INPUT = 0x1
PORT_IS_OUTPUT = 0x2
NO_START_SERVER = 0x1
AUDIO_TYPE = b"32 bit float mono audio"
MIDI_TYPE = b"8 bit raw midi"


class JackError(RuntimeError):
    """libjack cannot be loaded, or a client or port cannot be opened."""


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_lock = threading.Lock()
_lib: dict = {}


def load() -> dict:
    """libjack's and libc's functions, by name (ctypes functions; ``.address`` where
    compiled code calls them)."""
    with _lock:
        if _lib:
            return _lib
        path = ctypes.util.find_library("jack") or "libjack.so.0"
        try:
            jack = ctypes.CDLL(path)
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
        except OSError as exc:
            raise JackError(f"libjack cannot be loaded: {exc}") from exc
        u64, u32, i32, p = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p
        cp = ctypes.c_char_p

        def fn(lib, name, res, *args):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, list(args)
            return f

        _lib.update(
            port_get_buffer=fn(jack, "jack_port_get_buffer", u64, u64, u32),
            event_count=fn(jack, "jack_midi_get_event_count", u32, u64),
            event_get=fn(jack, "jack_midi_event_get", i32, u64, u64, u32),
            midi_clear=fn(jack, "jack_midi_clear_buffer", None, u64),
            last_frame_time=fn(jack, "jack_last_frame_time", u32, u64),
            cycle_times=fn(jack, "jack_get_cycle_times", i32, u64, u64, u64, u64, u64),
            memcpy=fn(libc, "memcpy", u64, u64, u64, u64),
            memset=fn(libc, "memset", u64, u64, i32, u64),
            clock_gettime=fn(libc, "clock_gettime", i32, i32, u64),
            sem_init=fn(libc, "sem_init", i32, u64, i32, ctypes.c_uint),
            sem_post=fn(libc, "sem_post", i32, u64),
            sem_timedwait=fn(libc, "sem_timedwait", i32, u64, p),
            sem_destroy=fn(libc, "sem_destroy", i32, u64),
            client_open=fn(jack, "jack_client_open", u64, cp, i32, p),
            client_close=fn(jack, "jack_client_close", i32, u64),
            client_name=fn(jack, "jack_get_client_name", cp, u64),
            port_register=fn(jack, "jack_port_register", u64, u64, cp, cp, ctypes.c_ulong, ctypes.c_ulong),
            port_name=fn(jack, "jack_port_name", cp, u64),
            port_by_name=fn(jack, "jack_port_by_name", u64, u64, cp),
            latency_range=fn(jack, "jack_port_get_latency_range", None, u64, i32, p),
            set_process=fn(jack, "jack_set_process_callback", i32, u64, u64, u64),
            set_xrun=fn(jack, "jack_set_xrun_callback", i32, u64, u64, u64),
            on_shutdown=fn(jack, "jack_on_shutdown", None, u64, u64, u64),
            activate=fn(jack, "jack_activate", i32, u64),
            deactivate=fn(jack, "jack_deactivate", i32, u64),
            connect=fn(jack, "jack_connect", i32, u64, cp, cp),
            get_ports=fn(jack, "jack_get_ports", p, u64, cp, cp, ctypes.c_ulong),
            free=fn(jack, "jack_free", None, p),
            frame_time=fn(jack, "jack_frame_time", u32, u64),
            get_time=fn(jack, "jack_get_time", u64),
            sample_rate=fn(jack, "jack_get_sample_rate", u32, u64),
            client_rt_priority=fn(jack, "jack_client_real_time_priority", i32, u64),
            buffer_size=fn(jack, "jack_get_buffer_size", u32, u64),
        )
        return _lib


def _as_i64_ptr():
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def as_i64_ptr(typingctx, address):
        """An int64 address as an int64 pointer (compiled code only)."""
        ptr = types.CPointer(types.int64)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))

        return ptr(types.int64), codegen

    return as_i64_ptr


as_i64_ptr = _as_i64_ptr()
