"""Notes, controllers, expression, timbre values, velocity curve and tuning: the
addresses that play (docs/osc.md, "Playing", "Expression", "Sound"), each checked before
it acts, routed by :class:`server.addresses.AddressSpace`."""

from __future__ import annotations

import os
import threading

from engine import CC, TIMBRE_NAMES, ThetaError, param
from engine.expression import EXPRESSION
from engine.schema import DB_FLOOR, N_HARMONICS
from engine.sender import EXPONENT_RANGE, NOTE_ID_BEND, NOTE_ID_MAX, velocity_exponent
from server.osc import Refused
from server.oscargs import Arg, ArgError
from server.routing import CH, MIDI, Folders, Routes, engine_action, file_in, spec

__all__ = ["NoteAddresses", "MAX_ID_NOTES"]

#: Most OSC id notes (/note/id) sounding at once; a new id beyond them is refused.
MAX_ID_NOTES = 1024
_ID = Arg("id", "int", 0, NOTE_ID_MAX)
#: One harmonic's level of a /spectrum message.
_LEVELS = tuple(Arg(f"harmonic {k}'s level", "float", DB_FLOOR, 0.0) for k in range(1, N_HARMONICS + 1))


def _spectrum_args(args: list) -> list:
    """/spectrum's arguments: 32 levels in dB (harmonic 1 first), then an optional
    channel; every one checked."""
    if len(args) not in (N_HARMONICS, N_HARMONICS + 1):
        raise ArgError(
            f"takes {N_HARMONICS} levels in dB (harmonic 1 first, each a number in range "
            f"{DB_FLOOR:g}..0) [channel]; got {len(args)} argument(s)"
        )
    levels = [a.check(x) for a, x in zip(_LEVELS, args)]
    return [levels, CH.check(args[N_HARMONICS]) if len(args) > N_HARMONICS else CH.default]


class NoteAddresses:
    """The playing addresses.

    Args:
        engine: where events go (an :class:`engine.sender.EventSender`).
        channels: the channels' patches (``set_param``, ``set_spectrum``:
            :class:`server.state.ChannelStates`).
        folders: where ``/tuning/scl`` may read (:class:`server.routing.Folders`).
    """

    def __init__(self, engine, channels, folders: Folders) -> None:
        self.engine = engine
        self.channels = channels
        self.folders = folders
        # The OSC id notes started and not ended (id -> channel): a message for an id
        # that is not sounding gets /fail. Read and written by the actions only.
        self._ids: dict[int, int] = {}
        self._ids_lock = threading.Lock()

    def routes(self) -> Routes:
        routes: Routes = {
            "/note": (spec(Arg("pitch", "int", **MIDI), Arg("velocity", "int", **MIDI), CH), self._note),
            "/note/off": (spec(Arg("pitch", "int", **MIDI), CH), self._note_off),
            "/note/id": (
                spec(_ID, Arg("pitch", "float", 0.0, 127.0), Arg("velocity", "float", 0.0, 127.0), CH),
                self._id_note_on,
            ),
            "/note/id/off": (spec(_ID), self._id_note),
            "/note/id/pitch": (spec(_ID, Arg("semitones", "float", -NOTE_ID_BEND, NOTE_ID_BEND)), self._id_note),
            "/note/id/pressure": (spec(_ID, Arg("pressure", "float", 0.0, 1.0)), self._id_note),
            "/note/id/timbre": (spec(_ID, Arg("timbre", "float", 0.0, 1.0)), self._id_note),
            "/pressure": (spec(Arg("pressure", "float", 0.0, 1.0), CH), self._pressure),
            "/pressure/key": (spec(Arg("pitch", "int", **MIDI), Arg("pressure", "float", 0.0, 1.0), CH), self._pressure),
            "/fnote": (
                spec(Arg("hz", "float", 8.0, 20000.0), Arg("velocity", "float", 0.0, 127.0), CH), self._fnote
            ),
            "/fnote/off": (spec(Arg("hz", "float", 8.0, 20000.0), CH), self._fnote_off),
            "/cc": (spec(Arg("number", "int", **MIDI), Arg("value", "int", **MIDI), CH), self._cc),
            "/bend": (spec(Arg("bend", "float", -1.0, 1.0), CH), self._bend),
            "/velocity/curve": (spec(Arg("curve", "str")), self._velocity_curve),
            "/velocity/exponent": (spec(Arg("exponent", "float", *EXPONENT_RANGE)), self._velocity_curve),
            "/tuning/scl": (spec(Arg("file", "str"), Arg("keymap", "str", default="")), self._tuning),
            "/tuning/reset": ((), self._tuning_reset),
            "/panic": ((), self._panic),
            "/spectrum": (_spectrum_args, self._spectrum),
            "/spectrum/held": (_spectrum_args, self._spectrum),
            "/spectrum/onset": (_spectrum_args, self._spectrum),
        }
        for name in TIMBRE_NAMES:
            routes[f"/param/{name}"] = (spec(Arg(name, "float"), CH), self._param)
        for a in EXPRESSION:
            routes[f"/expression/{a.name}"] = (spec(Arg(a.name, "float", a.minimum, a.maximum), CH), self._expression)
        return routes

    # -- notes and controllers ------------------------------------------------------------

    def _note(self, address, v, reply):
        pitch, vel, ch = v
        engine = self.engine
        return engine_action(address, reply, lambda f: engine.note_on(ch, pitch, vel, f))

    def _note_off(self, address, v, reply):
        pitch, ch = v
        engine = self.engine
        return engine_action(address, reply, lambda f: engine.note_off(ch, pitch, f))

    def _cc(self, address, v, reply):
        number, value, ch = v
        engine = self.engine

        def call(f):
            engine.control_change(ch, number, value, f)
            if number in (CC.ALL_SOUND_OFF, CC.ALL_NOTES_OFF):  # the channel's id notes end
                with self._ids_lock:
                    self._ids = {i: c for i, c in self._ids.items() if c != ch}

        return engine_action(address, reply, call)

    # -- expression ----------------------------------------------------------------------

    def _pressure(self, address, v, reply):
        """/pressure (channel pressure) and /pressure/key (polyphonic key pressure), 0..1."""
        engine = self.engine
        if address == "/pressure":
            pressure, ch = v
            value = int(round(pressure * 127))
            return engine_action(address, reply, lambda f: engine.channel_pressure(ch, value, f))
        pitch, pressure, ch = v
        value = int(round(pressure * 127))
        return engine_action(address, reply, lambda f: engine.poly_pressure(ch, pitch, value, f))

    def _expression(self, address, v, reply):
        value, ch = v
        name = address[len("/expression/") :]
        engine = self.engine
        return engine_action(address, reply, lambda f: engine.set_expression(ch, frame=f, **{name: value}))

    def _id_note_on(self, address, v, reply):
        note_id, pitch, velocity, ch = v
        engine = self.engine

        def call(f):
            # The engine first: a full queue (/fail) leaves the ids as they were.
            with self._ids_lock:
                if velocity == 0.0:
                    if note_id not in self._ids:
                        reply.fail(address, f"no note with id {note_id} is sounding (a velocity of 0 ends one)")
                        return
                    engine.note_id_on(note_id, pitch, velocity, ch, f)
                    del self._ids[note_id]
                    return
                if note_id not in self._ids and len(self._ids) >= MAX_ID_NOTES:
                    reply.fail(address, f"at most {MAX_ID_NOTES} id notes sound at once; end one with "
                               "/note/id/off (or /panic) first")
                    return
                engine.note_id_on(note_id, pitch, velocity, ch, f)
                self._ids[note_id] = ch

        return engine_action(address, reply, call)

    def _id_note(self, address, v, reply):
        """/note/id/off, /note/id/pitch, /note/id/pressure, /note/id/timbre: for an id that
        sounds (started by /note/id, not ended); any other id gets /fail."""
        note_id = v[0]
        engine = self.engine
        what = address.rsplit("/", 1)[1]

        def call(f):
            with self._ids_lock:
                if note_id not in self._ids:
                    reply.fail(address, f"no note with id {note_id} is sounding: start it with /note/id first "
                               "(an id ends with /note/id/off, a velocity of 0, /panic and all notes off)")
                    return
                if what == "off":
                    engine.note_id_off(note_id, f)
                    del self._ids[note_id]
                elif what == "pitch":
                    engine.note_id_pitch(note_id, v[1], f)
                elif what == "pressure":
                    engine.note_id_pressure(note_id, v[1], f)
                else:
                    engine.note_id_timbre(note_id, v[1], f)

        return engine_action(address, reply, call)

    def _bend(self, address, v, reply):
        bend, ch = v
        value = max(-8192, min(8191, int(round(bend * 8192))))
        engine = self.engine
        return engine_action(address, reply, lambda f: engine.pitch_bend(ch, value, f))

    def _param(self, address, v, reply):
        value, ch = v
        name = address[len("/param/") :]
        try:
            value = param(name).check(value)
        except ThetaError as exc:
            raise Refused(address, str(exc)) from None
        return engine_action(
            address, reply, lambda f: self.channels.set_param(ch, name, value, f)
        )

    def _spectrum(self, address, v, reply):
        """/spectrum sets both spectra, /spectrum/held and /spectrum/onset one; the other
        stays as it is."""
        levels, ch = v
        held = None if address == "/spectrum/onset" else levels
        onset = None if address == "/spectrum/held" else levels
        return engine_action(
            address, reply, lambda f: self.channels.set_spectrum(ch, held, onset, f)
        )

    def _velocity_curve(self, address, v, reply):
        (curve,) = v
        try:
            exponent = velocity_exponent(curve)
        except ValueError as exc:
            raise Refused(address, str(exc)) from None
        return engine_action(
            address, reply, lambda f: self.engine.set_velocity_curve(exponent, f),
            lambda: reply.send("/velocity/curve.reply", float(exponent)),
        )

    def _tuning_file(self, address: str, file: str) -> str:
        return file_in(address, self.folders.tuning_dir, "--tuning-dir", ".scl and .kbm files", file)

    def _tuning(self, address, v, reply):
        from engine.tuning import Tuning, TuningError

        file, keymap = v
        scl = self._tuning_file(address, file)
        kbm = self._tuning_file(address, keymap) if keymap else None
        try:
            tuning = Tuning.from_files(scl, kbm)
        except TuningError as exc:  # the tuning in use stays
            raise Refused(address, str(exc).replace(os.path.dirname(scl) + os.sep, "")) from None
        return self._tuning_action(address, reply, tuning)

    def _tuning_reset(self, address, v, reply):
        from engine.tuning import EQUAL

        return self._tuning_action(address, reply, EQUAL)

    def _tuning_action(self, address, reply, tuning):
        return engine_action(
            address, reply, lambda f: self.engine.set_tuning(tuning.notes, f),
            lambda: reply.send("/tuning.reply", tuning.name),
        )

    def _fnote(self, address, v, reply):
        hz, velocity, ch = v
        return engine_action(address, reply, lambda f: self.engine.fnote_on(ch, hz, velocity, f))

    def _fnote_off(self, address, v, reply):
        hz, ch = v
        return engine_action(address, reply, lambda f: self.engine.fnote_off(ch, hz, f))

    def _panic(self, address, v, reply):
        def call(f):
            self.engine.panic(frame=f)
            with self._ids_lock:
                self._ids = {}

        return engine_action(address, reply, call)
