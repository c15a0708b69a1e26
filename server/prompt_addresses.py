"""Words to sound: ``/prompt``, ``/prompt/next``, ``/prompt/prev``, ``/prompt/choose``,
``/prompt/choices`` and ``/morph`` (docs/osc.md, "Sound"), each checked before it asks
the model, routed by :class:`server.addresses.AddressSpace`."""

from __future__ import annotations

from server.model_requests import beyond_the_list
from server.osc import Refused
from server.oscargs import Arg
from server.routing import CH, Routes, spec
from server.state import PatchTicket, timbre_values
from server.worker import MAX_CHOICES, ChoiceRequest, ChoicesRequest, MorphRequest, PatchRequest

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


#: How a channel without words gets a list of choices, by address.
_AFTER_WORDS = {
    "/prompt/next": "/prompt/next and /prompt/prev walk its list of choices",
    "/prompt/prev": "/prompt/next and /prompt/prev walk its list of choices",
    "/prompt/choose": "/prompt/choose then plays one of its list of choices",
    "/prompt/choices": "/prompt/choices then lists its choices",
}


class PromptAddresses:
    """The addresses that ask the model.

    Args:
        channels: the channels' patches (the words a channel's patch came from).
        model: the model gateway (:class:`server.gateway.ModelGateway`): ``refusal()``,
            ``request(request, ticket)``, ``ask(request, on_done, on_fail)``.
    """

    def __init__(self, channels, model) -> None:
        self.channels = channels
        self.model = model

    def routes(self) -> Routes:
        return {
            "/prompt": (spec(Arg("text", "str"), CH, Arg("id", "int", -(2**31), 2**31 - 1, default=0)), self._prompt),
            "/prompt/next": (spec(CH), self._prompt_step),
            "/prompt/prev": (spec(CH), self._prompt_step),
            "/prompt/choose": (spec(Arg("place", "int", 1, MAX_CHOICES), CH), self._prompt_step),
            "/prompt/choices": (spec(CH), self._choices),
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

    def _words(self, address: str, ch: int):
        """``ch``'s state, where its patch came from words, else Refused saying how to
        give it some."""
        state = self.channels.state(ch)
        if state.prompt is None:
            raise Refused(
                address,
                f"channel {ch + 1} has no words yet (its patch {state.label!r} came from no "
                f"prompt): send /prompt s:text first; {_AFTER_WORDS[address]}",
            )
        return state

    def _prompt_step(self, address, v, reply):
        """/prompt/next and /prompt/prev: the entry after (before) the channel's in the
        list of choices for its last words, round the list; /prompt/choose: the entry at
        ``place`` (1 the words' own), which must be in the list."""
        *place, ch = v
        state = self._words(address, ch)
        if place and state.choices and place[0] > len(state.choices):
            raise Refused(address, beyond_the_list(state.prompt, place[0], len(state.choices)))
        self._check_model(address)
        text = state.prompt
        if place:
            request = ChoiceRequest(text, place[0] - 1, MAX_CHOICES, wrap=False)
        else:
            step = 1 if address == "/prompt/next" else -1
            request = ChoiceRequest(text, state.choice + step, MAX_CHOICES)
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
        return [lambda f: self.model.request(request, ticket)]

    def _choices(self, address, v, reply):
        """/prompt/choices: the names of the channel's words' list and the place of the
        one playing, from what the channel keeps (the list came with its last step) or,
        where it keeps none yet, asked of the model once and kept."""
        (ch,) = v
        state = self._words(address, ch)
        self._check_model(address)
        text = state.prompt

        def answer(names) -> None:
            now = self.channels.state(ch)
            # 0: none of the list plays (a bank patch saved with these words, or newer
            # words came meanwhile: the reply names the words its list is for).
            place = now.choice + 1 if now.prompt == text and now.instrument else 0
            reply.send("/prompt/choices.reply", ch + 1, text, place, *names)

        def kept(names) -> None:
            self.channels.set_choices(ch, text, names)
            answer(names)

        def action(frame) -> None:
            now = self.channels.state(ch)
            if now.prompt == text and now.choices:
                answer(now.choices)
            else:
                failed = lambda reason: reply.fail(address, reason)  # noqa: E731
                self.model.ask(ChoicesRequest(text, MAX_CHOICES), kept, failed)

        return [action]

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
