"""The host's MIDI inputs kept connected while sources come and go (a keyboard unplugged
and plugged in again on stage): :class:`MidiHub` looks at the MIDI sources every
:data:`WATCH_S`. An input whose source vanished is released (every note it started gets
its note-off, its sustain pedal is lifted) and closed; a source that matches what was
asked for (``--midi-in NAME`` or ``all``) is opened whenever it appears."""

from __future__ import annotations

import threading
import time

from server.midi_in import MidiInput, MidiTargets
from server.midi_system import CLIENT_NAME, MidiError, _rtmidi_api, list_inputs

__all__ = ["ALL", "MidiHub", "WATCH_S"]

#: ``--midi-in all``: every MIDI source there is, and every one that appears later.
ALL = "all"
#: How often the hub looks for sources that vanished or appeared (s).
WATCH_S = 0.05

class MidiHub:
    """The host's MIDI inputs, kept connected while sources come and go.

    Args:
        targets: what the inputs feed (:class:`MidiTargets`).
        wants: ``--midi-in`` values: a part of a source's name (case-insensitive), or
            :data:`ALL` for every source but the host's own.
        virtual: names of virtual inputs to offer (``promptsynth:NAME``).
        on_change: ``on_change(kind, name, released)`` after an input was connected
            (``kind`` "connected") or lost ("lost", with the notes it released); called
            on the hub's thread.
    """

    def __init__(self, targets: MidiTargets, wants: list[str], virtual: list[str], on_change=None) -> None:
        self.targets = targets
        self.wants = [w for w in wants if w.lower() != ALL]
        self.all = any(w.lower() == ALL for w in wants)
        self.on_change = on_change
        self._lock = threading.Lock()
        self._inputs: dict[str, MidiInput] = {}  # source name -> input (virtual: its name)
        self._lister = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.retired_errors = 0
        try:
            for name in virtual:
                self._inputs[f"{CLIENT_NAME}:{name}"] = MidiInput(targets, name, virtual=True)
            if self.wants or self.all:
                import rtmidi

                self._lister = rtmidi.MidiIn(_rtmidi_api(), f"{CLIENT_NAME}-watch")
                self._scan(initial=True)
                self._thread = threading.Thread(target=self._watch, name="promptsynth-midi-watch", daemon=True)
                self._thread.start()
        except BaseException:
            self.close()
            raise

    # -- state ---------------------------------------------------------------------------

    @property
    def inputs(self) -> list[MidiInput]:
        with self._lock:
            return list(self._inputs.values())

    def available(self) -> list[str]:
        """MIDI sources there are now (the host's own excluded)."""
        return [n for n in list_inputs() if not _is_own(n)]

    def waiting(self) -> list[str]:
        """``--midi-in`` names that match no connected input."""
        with self._lock:
            names = list(self._inputs)
        return [w for w in self.wants if not any(w.lower() in n.lower() for n in names)]

    @property
    def errors(self) -> int:
        """MIDI that could not be applied (a full queue) or was malformed, all inputs."""
        return self.retired_errors + sum(i.errors + i.malformed for i in self.inputs)

    def abandon(self) -> None:
        """Stop watching, touch no port (the audio server died: its clients hang)."""
        self._closed = True
        for port in self.inputs:
            port.abandon()

    def close(self) -> None:
        """Close every input (what they hold is released first); safe twice."""
        self._closed = True
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        with self._lock:
            inputs, self._inputs = list(self._inputs.values()), {}
        for port in inputs:
            port.close()
        lister, self._lister = self._lister, None
        if lister is not None:
            lister.delete()

    # -- the watcher ---------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed:
            time.sleep(WATCH_S)
            try:
                self._scan()
            except Exception:  # noqa: BLE001 - the watcher never dies (rtmidi hiccups)
                continue

    def _scan(self, initial: bool = False) -> None:
        present = [n for n in self._lister.get_ports() if not _is_own(n)]
        with self._lock:
            connected = {n: i for n, i in self._inputs.items() if not i.virtual}
        for name, port in connected.items():
            if name not in present:
                with self._lock:
                    self._inputs.pop(name, None)
                port.close()
                released = port.release()
                self.retired_errors += port.errors + port.malformed
                self._report("lost", name, released)
        for name in present:
            if name in connected and name in self._inputs:
                continue
            if not (self.all or any(w.lower() in name.lower() for w in self.wants)):
                continue
            if self._closed:
                return
            try:
                port = MidiInput(self.targets, name)
            except MidiError:
                continue  # gone again, or not openable now: the next look retries
            with self._lock:
                self._inputs[name] = port
            self._report("connected", name, 0)

    def _report(self, kind: str, name: str, released: int) -> None:
        if self.on_change is not None:
            try:
                self.on_change(kind, name, released)
            except Exception:  # noqa: BLE001 - a report must not stop the watcher
                pass


def _is_own(source: str) -> bool:
    """A source of the host's own MIDI client (``promptsynth:...``, ``promptsynth-01:...``)."""
    client = source.split(":", 1)[0]
    return client == CLIENT_NAME or client.startswith(f"{CLIENT_NAME}-")
