"""The OSC address space (docs/osc.md): one checking function per address.

Each function checks every argument and everything it needs (a patch that exists, a
model that runs) and returns the actions that apply the message; it raises
:class:`Refused` otherwise, so nothing is ever half-applied. An action takes the engine
frame the message is for (None: the next block).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from engine import CC, TIMBRE_NAMES, QueueFull, ThetaError, param
from engine.expression import EXPRESSION
from engine.schema import DB_FLOOR, N_HARMONICS
from engine.sender import EXPONENT_RANGE, NOTE_ID_BEND, NOTE_ID_MAX, velocity_exponent
from server.fx_addresses import effect_routes, effect_status
from server.osc import MAX_NOTIFY_TARGETS, Action, Refused, Reply
from server.oscargs import Arg, ArgError, parse_args
from server.state import PatchTicket, timbre_values
from server.worker import MAX_CHOICES, ChoiceRequest, MorphRequest, PatchRequest

__all__ = ["AddressSpace"]

_CH = Arg("channel", "channel", default=0)
_MIDI = {"lo": 0, "hi": 127}

#: Most prompts and morphs waiting for the model at once; more are refused.
MAX_PENDING = 64
#: Most OSC id notes (/note/id) sounding at once; a new id beyond them is refused.
MAX_ID_NOTES = 1024
_ID = Arg("id", "int", 0, NOTE_ID_MAX)


def _join_words(args: list) -> list:
    """Pd sends each word of a prompt as its own string: join the leading strings."""
    n = 0
    while n < len(args) and isinstance(args[n], str):
        n += 1
    return [" ".join(args[:n]), *args[n:]] if n > 1 else args


def _spec(*args: Arg) -> tuple[Arg, ...]:
    return args


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
    return [levels, _CH.check(args[N_HARMONICS]) if len(args) > N_HARMONICS else _CH.default]


class AddressSpace:
    """Router for :class:`server.osc.OscServer`, bound to a :class:`server.host.Host`."""

    def __init__(self, host) -> None:
        self.host = host
        # The OSC id notes started and not ended (id -> channel): a message for an id
        # that is not sounding gets /fail. Read and written by the actions only.
        self._ids: dict[int, int] = {}
        self._ids_lock = threading.Lock()
        # A route's arguments: a spec for parse_args, or a function that checks them.
        self._routes: dict[str, tuple[tuple[Arg, ...] | Callable[[list], list], Callable]] = {
            "/prompt": (
                _spec(Arg("text", "str"), _CH, Arg("id", "int", -(2**31), 2**31 - 1, default=0)),
                self._prompt,
            ),
            "/prompt/next": (_spec(_CH), self._prompt_step),
            "/prompt/prev": (_spec(_CH), self._prompt_step),
            "/note": (
                _spec(Arg("pitch", "int", **_MIDI), Arg("velocity", "int", **_MIDI), _CH),
                self._note,
            ),
            "/note/off": (_spec(Arg("pitch", "int", **_MIDI), _CH), self._note_off),
            "/note/id": (
                _spec(_ID, Arg("pitch", "float", 0.0, 127.0), Arg("velocity", "float", 0.0, 127.0), _CH),
                self._id_note_on,
            ),
            "/note/id/off": (_spec(_ID), self._id_note),
            "/note/id/pitch": (_spec(_ID, Arg("semitones", "float", -NOTE_ID_BEND, NOTE_ID_BEND)), self._id_note),
            "/note/id/pressure": (_spec(_ID, Arg("pressure", "float", 0.0, 1.0)), self._id_note),
            "/note/id/timbre": (_spec(_ID, Arg("timbre", "float", 0.0, 1.0)), self._id_note),
            "/pressure": (_spec(Arg("pressure", "float", 0.0, 1.0), _CH), self._pressure),
            "/pressure/key": (
                _spec(Arg("pitch", "int", **_MIDI), Arg("pressure", "float", 0.0, 1.0), _CH), self._pressure
            ),
            "/fnote": (
                _spec(Arg("hz", "float", 8.0, 20000.0), Arg("velocity", "float", 0.0, 127.0), _CH),
                self._fnote,
            ),
            "/fnote/off": (_spec(Arg("hz", "float", 8.0, 20000.0), _CH), self._fnote_off),
            "/cc": (
                _spec(Arg("number", "int", **_MIDI), Arg("value", "int", **_MIDI), _CH),
                self._cc,
            ),
            "/bend": (_spec(Arg("bend", "float", -1.0, 1.0), _CH), self._bend),
            "/program": (_spec(Arg("program", "int", **_MIDI), _CH), self._program),
            "/patch/load": (_spec(Arg("name", "str"), _CH), self._patch_load),
            "/patch/save": (_spec(Arg("name", "str"), _CH), self._patch_save),
            "/patch/list": ((), self._patch_list),
            "/morph": (
                _spec(
                    Arg("prompt_a", "str"), Arg("prompt_b", "str"), Arg("t", "float", 0.0, 1.0), _CH
                ),
                self._morph,
            ),
            "/velocity/curve": (_spec(Arg("curve", "str")), self._velocity_curve),
            "/velocity/exponent": (_spec(Arg("exponent", "float", *EXPONENT_RANGE)), self._velocity_curve),
            "/tuning/scl": (_spec(Arg("file", "str"), Arg("keymap", "str", default="")), self._tuning),
            "/tuning/reset": ((), self._tuning_reset),
            "/panic": ((), self._panic),
            "/status": ((), self._status),
            "/notify": (_spec(Arg("port", "int", 0, 65535)), self._notify),
            "/sync": (_spec(Arg("id", "int", -(2**31), 2**31 - 1)), self._sync),
            "/midi/list": ((), self._midi_list),
            "/patch/from-audio": (_spec(Arg("file", "str"), Arg("name", "str"), _CH), self._from_audio),
            "/spectrum": (_spectrum_args, self._spectrum),
            "/spectrum/held": (_spectrum_args, self._spectrum),
            "/spectrum/onset": (_spectrum_args, self._spectrum),
        }
        for name in TIMBRE_NAMES:
            self._routes[f"/param/{name}"] = (_spec(Arg(name, "float"), _CH), self._param)
        for a in EXPRESSION:
            self._routes[f"/expression/{a.name}"] = (
                _spec(Arg(a.name, "float", a.minimum, a.maximum), _CH), self._expression
            )
        self._routes.update(effect_routes(lambda: self.host.engine, self._engine_action))

    @property
    def addresses(self) -> list[str]:
        return sorted(self._routes)

    def __call__(self, address: str, args: list, reply: Reply) -> list[Action]:
        route = self._routes.get(address)
        if route is None:
            hint = (
                " (timbre parameters: " + ", ".join(TIMBRE_NAMES) + ")"
                if address.startswith("/param/")
                else ""
            )
            raise Refused(address, f"unknown address{hint}; see docs/osc.md")
        spec, fn = route
        if address == "/prompt":
            args = _join_words(args)
        try:
            values = spec(args) if callable(spec) else parse_args(spec, args)
        except ArgError as exc:
            raise Refused(address, str(exc)) from None
        return fn(address, values, reply)

    # -- helpers -------------------------------------------------------------------------

    def _engine_action(
        self, address: str, reply: Reply, call: Callable[[int | None], None],
        done: Callable[[], None] | None = None,
    ) -> list[Action]:
        """One action that calls the engine at its frame: a full queue is /fail, else
        ``done()`` (a reply), if given."""
        def action(frame: int | None) -> None:
            try:
                call(frame)
            except QueueFull as exc:
                reply.fail(address, str(exc))
                return
            if done is not None:
                done()

        return [action]

    def _bank(self, address: str):
        bank = self.host.bank
        if bank is None:
            raise Refused(address, f"no patch bank: {self.host.bank_reason}")
        return bank

    def _model(self, address: str):
        worker = self.host.worker
        if worker is None or worker.state == "failed":
            raise Refused(address, self.host.model_reason or "no model")
        if self.host.pending_requests >= MAX_PENDING:
            raise Refused(
                address, f"the model has {MAX_PENDING} requests waiting; try again shortly"
            )
        return worker

    # -- notes and controllers ------------------------------------------------------------

    def _note(self, address, v, reply):
        pitch, vel, ch = v
        engine = self.host.engine
        return self._engine_action(address, reply, lambda f: engine.note_on(ch, pitch, vel, f))

    def _note_off(self, address, v, reply):
        pitch, ch = v
        engine = self.host.engine
        return self._engine_action(address, reply, lambda f: engine.note_off(ch, pitch, f))

    def _cc(self, address, v, reply):
        number, value, ch = v
        engine = self.host.engine

        def call(f):
            engine.control_change(ch, number, value, f)
            if number in (CC.ALL_SOUND_OFF, CC.ALL_NOTES_OFF):  # the channel's id notes end
                with self._ids_lock:
                    self._ids = {i: c for i, c in self._ids.items() if c != ch}

        return self._engine_action(address, reply, call)

    # -- expression ----------------------------------------------------------------------

    def _pressure(self, address, v, reply):
        """/pressure (channel pressure) and /pressure/key (polyphonic key pressure), 0..1."""
        engine = self.host.engine
        if address == "/pressure":
            pressure, ch = v
            value = int(round(pressure * 127))
            return self._engine_action(address, reply, lambda f: engine.channel_pressure(ch, value, f))
        pitch, pressure, ch = v
        value = int(round(pressure * 127))
        return self._engine_action(address, reply, lambda f: engine.poly_pressure(ch, pitch, value, f))

    def _expression(self, address, v, reply):
        value, ch = v
        name = address[len("/expression/") :]
        engine = self.host.engine
        return self._engine_action(address, reply, lambda f: engine.set_expression(ch, frame=f, **{name: value}))

    def _id_note_on(self, address, v, reply):
        note_id, pitch, velocity, ch = v
        engine = self.host.engine

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

        return self._engine_action(address, reply, call)

    def _id_note(self, address, v, reply):
        """/note/id/off, /note/id/pitch, /note/id/pressure, /note/id/timbre: for an id that
        sounds (started by /note/id, not ended); any other id gets /fail."""
        note_id = v[0]
        engine = self.host.engine
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

        return self._engine_action(address, reply, call)

    def _bend(self, address, v, reply):
        bend, ch = v
        value = max(-8192, min(8191, int(round(bend * 8192))))
        engine = self.host.engine
        return self._engine_action(address, reply, lambda f: engine.pitch_bend(ch, value, f))

    def _param(self, address, v, reply):
        value, ch = v
        name = address[len("/param/") :]
        try:
            value = param(name).check(value)
        except ThetaError as exc:
            raise Refused(address, str(exc)) from None
        return self._engine_action(
            address, reply, lambda f: self.host.channels.set_param(ch, name, value, f)
        )

    def _spectrum(self, address, v, reply):
        """/spectrum sets both spectra, /spectrum/held and /spectrum/onset one; the other
        stays as it is."""
        levels, ch = v
        held = None if address == "/spectrum/onset" else levels
        onset = None if address == "/spectrum/held" else levels
        return self._engine_action(
            address, reply, lambda f: self.host.channels.set_spectrum(ch, held, onset, f)
        )

    def _velocity_curve(self, address, v, reply):
        (curve,) = v
        try:
            exponent = velocity_exponent(curve)
        except ValueError as exc:
            raise Refused(address, str(exc)) from None
        return self._engine_action(
            address, reply, lambda f: self.host.engine.set_velocity_curve(exponent, f),
            lambda: reply.send("/velocity/curve.reply", float(exponent)),
        )

    @staticmethod
    def _file_in(address: str, folder: str | None, option: str, what: str, file: str) -> str:
        """``file`` inside ``folder`` (the host's ``option``), or Refused saying why not:
        a sender names files there and nowhere else."""
        if folder is None:
            raise Refused(address, f"the host was started without {option} DIR: {what} are read "
                          "from that folder only")
        root = os.path.realpath(folder)
        path = os.path.realpath(os.path.join(root, file))
        if os.path.commonpath([root, path]) != root or path == root:
            raise Refused(address, f"file must be inside the {option} folder, got {file!r}")
        if not os.path.isfile(path):
            raise Refused(address, f"no file {file!r} in the {option} folder")
        return path

    def _tuning_file(self, address: str, file: str) -> str:
        return self._file_in(address, self.host.config.tuning_dir, "--tuning-dir", ".scl and .kbm files", file)

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
        return self._engine_action(
            address, reply, lambda f: self.host.engine.set_tuning(tuning.notes, f),
            lambda: reply.send("/tuning.reply", tuning.name),
        )

    def _fnote(self, address, v, reply):
        hz, velocity, ch = v
        return self._engine_action(address, reply, lambda f: self.host.engine.fnote_on(ch, hz, velocity, f))

    def _fnote_off(self, address, v, reply):
        hz, ch = v
        return self._engine_action(address, reply, lambda f: self.host.engine.fnote_off(ch, hz, f))

    def _panic(self, address, v, reply):
        def call(f):
            self.host.engine.panic(frame=f)
            with self._ids_lock:
                self._ids = {}

        return self._engine_action(address, reply, call)

    # -- patches -------------------------------------------------------------------------

    def _program(self, address, v, reply):
        number, ch = v
        from patches import PatchError

        try:
            patch = self._bank(address).program(number)
        except PatchError as exc:
            raise Refused(address, str(exc)) from None
        if patch is None:
            raise Refused(address, f"no patch at program {number} in the bank")
        return self._engine_action(
            address, reply, lambda f: self.host.channels.apply_bank_patch(ch, patch, f)
        )

    def _patch_load(self, address, v, reply):
        name, ch = v
        from patches import PatchError

        try:
            patch = self._bank(address).load(name)
        except PatchError as exc:
            raise Refused(address, str(exc)) from None

        def apply(frame):
            self.host.channels.apply_bank_patch(ch, patch, frame)
            reply.send("/patch/loaded", patch.name, ch + 1)

        return self._engine_action(address, reply, apply)

    def _patch_save(self, address, v, reply):
        name, ch = v
        from patches import Patch, PatchError, check_name

        bank = self._bank(address)
        try:
            name = check_name(name)
        except PatchError as exc:
            raise Refused(address, str(exc)) from None

        def save(frame):
            state = self.host.channels.state(ch)
            try:
                expression = self.host.engine.expression(ch)
                saved = bank.save(Patch(name, state.table, prompt=state.prompt, expression=expression), name)
            except (PatchError, OSError) as exc:
                reply.fail(address, f"could not save {name!r}: {exc}")
                return
            reply.send("/patch/saved", saved, ch + 1)

        return [save]

    def _from_audio(self, address, v, reply):

        from patches import PatchError, check_name

        file, name, ch = v
        path = self._file_in(address, self.host.config.audio_dir, "--audio-dir", "recordings", file)
        self._bank(address)
        try:
            name = check_name(name)
        except PatchError as exc:
            raise Refused(address, str(exc)) from None
        ticket = PatchTicket(
            ch,
            name,
            None,
            on_done=lambda patch: reply.send(
                "/patch/from-audio/done", patch.name, ch + 1, float(patch.source.get("fit_distance", 0.0))
            ),
            on_fail=lambda reason: reply.fail(address, reason),
        )
        return [lambda f: self.host.patch_from_audio(path, name, ticket)]

    def _patch_list(self, address, v, reply):
        bank = self._bank(address)
        return [lambda f: reply.send("/patch/list.reply", *bank.names())]

    # -- the model -----------------------------------------------------------------------

    def _check_prompt(self, address: str, name: str, text: str) -> str:
        """The one prompt check (``model.check_prompt``; no torch import), its error
        naming the argument."""
        from model.errors import PromptError, check_prompt

        try:
            return check_prompt(text)
        except PromptError as exc:
            # "prompt must ..." -> "text must ...": the argument as /fail names it.
            reason = str(exc)
            if reason.startswith("prompt "):
                reason = name + reason[len("prompt"):]
            raise Refused(address, reason) from None

    def _prompt(self, address, v, reply):
        text, ch, rid = v
        text = self._check_prompt(address, "text", text)
        self._model(address)
        ticket = PatchTicket(
            ch,
            text,
            text,
            # The instrument the words picked goes last: clients that read the timbre by
            # position keep working.
            on_done=lambda made: reply.send("/prompt/done", rid, text, *timbre_values(made.table), made.instrument),
            on_fail=lambda reason: reply.fail("/prompt", reason, rid),
        )
        return [lambda f: self.host.request_patch(PatchRequest(text), ticket)]

    def _prompt_step(self, address, v, reply):
        """/prompt/next and /prompt/prev: the entry after (before) the channel's in the
        list of choices for its last words, round the list."""
        (ch,) = v
        state = self.host.channels.state(ch)
        if state.prompt is None:
            raise Refused(
                address,
                f"channel {ch + 1} has no words yet (its patch {state.label!r} came from no "
                "prompt): send /prompt s:text first; /prompt/next and /prompt/prev walk its "
                "list of choices",
            )
        self._model(address)
        text = state.prompt
        step = 1 if address == "/prompt/next" else -1
        ticket = PatchTicket(
            ch,
            text,
            text,
            on_done=lambda made: reply.send(
                "/prompt/choice", ch + 1, text, made.choice + 1, made.count, made.instrument,
                *timbre_values(made.table),
            ),
            on_fail=lambda reason: reply.fail(address, reason),
        )
        request = ChoiceRequest(text, state.choice + step, MAX_CHOICES)
        return [lambda f: self.host.request_patch(request, ticket)]

    def _morph(self, address, v, reply):
        a, b, t, ch = v
        a = self._check_prompt(address, "prompt_a", a)
        b = self._check_prompt(address, "prompt_b", b)
        self._model(address)
        ticket = PatchTicket(
            ch,
            f"{a} ~ {b} @ {t:g}",
            None,
            on_done=lambda made: reply.send("/morph/done", a, b, float(t), *timbre_values(made.table)),
            on_fail=lambda reason: reply.fail("/morph", reason),
        )
        return [lambda f: self.host.request_patch(MorphRequest(a, b, float(t)), ticket)]

    # -- the host ------------------------------------------------------------------------

    def _status(self, address, v, reply):
        def status(frame):
            out = self.host.output
            osc = self.host.osc
            worker = self.host.worker
            # New fields go at the end: clients that read the first six keep working.
            reply.send(
                "/status.reply",
                int(self.host.engine.active_voices),
                int(out.underflows),
                float(out.cpu_load),
                int(self.host.engine.sample_rate),
                int(out.blocksize),
                float(out.latency_ms),
                int(osc.dropped) if osc is not None else 0,
                int(osc.failed) if osc is not None else 0,
                int(osc.errors) if osc is not None else 0,
                int(worker.restarts) if worker is not None else 0,
                int(self.host.midi_errors),
                float(out.ahead_ms),
                float(out.headroom_ms()["min"]),
                int(out.ring_underruns),
                int(out.device_underflows),
                int(self.host.midi_inputs),
                *effect_status(self.host.engine),
            )

        return [status]

    def _notify(self, address, v, reply):
        (port,) = v
        host = reply.sender[0]

        def notify(frame):
            if port == 0:
                self.host.osc.remove_notify(host)
            elif not self.host.osc.add_notify((host, port)):
                reply.fail(
                    address,
                    f"at most {MAX_NOTIFY_TARGETS} notify targets; send /notify 0 from a "
                    "host to remove its targets",
                )
                return
            reply.send("/notify.reply", port)

        return [notify]

    def _midi_list(self, address, v, reply):
        hub = self.host.midi

        def answer(frame):
            connected = [p.name for p in hub.inputs] if hub is not None else []
            try:
                from server.midi_in import list_inputs

                others = [n for n in list_inputs() if n not in connected]
            except Exception as exc:  # noqa: BLE001 - no MIDI backend: say so
                reply.fail(address, f"cannot list MIDI inputs: {exc}")
                return
            reply.send("/midi/list.reply", len(connected), *connected, *others)

        return [answer]

    def _sync(self, address, v, reply):
        (sid,) = v
        return [lambda f: self.host.sync(lambda: reply.send("/synced", sid))]


# Every reply that carries a patch carries its centre's timbre values, in schema order.
N_TIMBRE = len(TIMBRE_NAMES)
