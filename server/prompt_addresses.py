"""Words to sound: ``/prompt``, ``/prompt/next``, ``/prompt/prev`` and ``/morph``
(docs/osc.md, "Sound"), each checked before it asks the model, routed by
:class:`server.addresses.AddressSpace`."""

from __future__ import annotations

from server.osc import Refused
from server.oscargs import Arg
from server.routing import CH, Routes, spec
from server.state import PatchTicket, timbre_values
from server.worker import MAX_CHOICES, ChoiceRequest, MorphRequest, PatchRequest

__all__ = ["PromptAddresses", "join_words"]


def join_words(args: list) -> list:
    """Pd sends each word of a prompt as its own string: join the leading strings."""
    n = 0
    while n < len(args) and isinstance(args[n], str):
        n += 1
    return [" ".join(args[:n]), *args[n:]] if n > 1 else args


def _check_prompt(address: str, name: str, text: str) -> str:
    """The one prompt check (``model.check_prompt``; no torch import), its error naming
    the argument."""
    from model.errors import PromptError, check_prompt

    try:
        return check_prompt(text)
    except PromptError as exc:
        # "prompt must ..." -> "text must ...": the argument as /fail names it.
        reason = str(exc)
        if reason.startswith("prompt "):
            reason = name + reason[len("prompt"):]
        raise Refused(address, reason) from None


class PromptAddresses:
    """The addresses that ask the model.

    Args:
        channels: the channels' patches (the words a channel's patch came from).
        model: the model gateway (:class:`server.gateway.ModelGateway`): ``refusal()``,
            ``request(request, ticket)``.
    """

    def __init__(self, channels, model) -> None:
        self.channels = channels
        self.model = model

    def routes(self) -> Routes:
        return {
            "/prompt": (spec(Arg("text", "str"), CH, Arg("id", "int", -(2**31), 2**31 - 1, default=0)), self._prompt),
            "/prompt/next": (spec(CH), self._prompt_step),
            "/prompt/prev": (spec(CH), self._prompt_step),
            "/morph": (
                spec(Arg("prompt_a", "str"), Arg("prompt_b", "str"), Arg("t", "float", 0.0, 1.0), CH), self._morph
            ),
        }

    def _check_model(self, address: str) -> None:
        reason = self.model.refusal() if self.model is not None else "no model"
        if reason is not None:
            raise Refused(address, reason)

    def _prompt(self, address, v, reply):
        text, ch, rid = v
        text = _check_prompt(address, "text", text)
        self._check_model(address)
        ticket = PatchTicket(
            ch,
            text,
            text,
            # The instrument the words picked goes last: clients that read the timbre by
            # position keep working.
            on_done=lambda made: reply.send("/prompt/done", rid, text, *timbre_values(made.table), made.instrument),
            on_fail=lambda reason: reply.fail("/prompt", reason, rid),
        )
        return [lambda f: self.model.request(PatchRequest(text), ticket)]

    def _prompt_step(self, address, v, reply):
        """/prompt/next and /prompt/prev: the entry after (before) the channel's in the
        list of choices for its last words, round the list."""
        (ch,) = v
        state = self.channels.state(ch)
        if state.prompt is None:
            raise Refused(
                address,
                f"channel {ch + 1} has no words yet (its patch {state.label!r} came from no "
                "prompt): send /prompt s:text first; /prompt/next and /prompt/prev walk its "
                "list of choices",
            )
        self._check_model(address)
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
        return [lambda f: self.model.request(request, ticket)]

    def _morph(self, address, v, reply):
        a, b, t, ch = v
        a = _check_prompt(address, "prompt_a", a)
        b = _check_prompt(address, "prompt_b", b)
        self._check_model(address)
        ticket = PatchTicket(
            ch,
            f"{a} ~ {b} @ {t:g}",
            None,
            on_done=lambda made: reply.send("/morph/done", a, b, float(t), *timbre_values(made.table)),
            on_fail=lambda reason: reply.fail("/morph", reason),
        )
        return [lambda f: self.model.request(MorphRequest(a, b, float(t)), ticket)]
