"""Which MIDI system the host's inputs use: JACK MIDI where a JACK server runs (read event
by event in JACK's cycle where :mod:`server.jackmidi` can), else rtmidi's default API;
and the MIDI sources there are."""

from __future__ import annotations

import os
import sys

__all__ = ["CLIENT_NAME", "MidiError", "backend", "list_inputs"]

#: The rtmidi client name of the host's inputs: sources of this client are the host's
#: own and never connected by ``all`` (nothing loops).
CLIENT_NAME = "promptsynth"


class MidiError(RuntimeError):
    """A MIDI port that cannot be found or opened."""


def backend():
    """mido's rtmidi backend: JACK MIDI where a JACK server runs, else the default API.

    ``PROMPTSYNTH_MIDI_API`` picks one (``UNIX_JACK``, ``LINUX_ALSA``, ``MACOSX_CORE``...).
    """
    import mido

    api = os.environ.get("PROMPTSYNTH_MIDI_API")
    if api is None and sys.platform.startswith("linux"):
        api = "UNIX_JACK" if _jack_running() else None
    name = "mido.backends.rtmidi" + (f"/{api}" if api else "")
    return mido.Backend(name, load=True)


def _jack_running() -> bool:
    try:
        import rtmidi

        if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
            return False
        midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK)
        # delete(): a JACK client left to the garbage collector stays in JACK's graph.
        midi_in.delete()
        return True
    except Exception:  # noqa: BLE001 - no JACK: use the default API
        return False


def list_inputs() -> list[str]:
    try:
        return list(backend().get_input_names())
    except Exception as exc:  # noqa: BLE001
        raise MidiError(f"cannot list MIDI inputs: {exc}") from exc


def _rtmidi_api():
    import rtmidi

    api = os.environ.get("PROMPTSYNTH_MIDI_API")
    if api is None and sys.platform.startswith("linux"):
        api = "UNIX_JACK" if _jack_running() else None
    return getattr(rtmidi, f"API_{api}", rtmidi.API_UNSPECIFIED) if api else rtmidi.API_UNSPECIFIED


def _reads_jack() -> bool:
    """Whether inputs read JACK MIDI themselves (:mod:`server.jackmidi`), event by event."""
    import rtmidi

    from server import jackmidi

    return _rtmidi_api() == rtmidi.API_UNIX_JACK and jackmidi.available()
