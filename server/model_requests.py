"""What crosses the pipe to the model worker (:mod:`server.worker`) and back: the typed
requests (:class:`PatchRequest`, :class:`MorphRequest`, :class:`ChoiceRequest`,
:class:`ChoicesRequest`, :class:`SyncRequest`), how the worker answers each one
(:func:`answer`, in the worker process) and how the host reads an answer
(:func:`read_answer`: a :class:`ModelPatch`, the names of a list of choices, or a
reason). Each crosses as JSON: no pickle of anything a user sent.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_CHOICES",
    "MAX_TITLE_CHARS",
    "PatchRequest",
    "MorphRequest",
    "ChoiceRequest",
    "ChoicesRequest",
    "SyncRequest",
    "Request",
    "REQUESTS",
    "ModelPatch",
    "answer",
    "read_answer",
    "beyond_the_list",
]

#: The longest list of choices /prompt/next and /prompt/prev walk for one prompt.
MAX_CHOICES = 8
#: The longest instrument name the host takes from the model.
MAX_TITLE_CHARS = 200


def beyond_the_list(prompt: str, place: int, count: int) -> str:
    """Why ``place`` (1-based) is refused where ``prompt``'s list holds ``count``."""
    return f"place must be in range 1..{count} (the list of choices for {prompt!r} holds {count}), got {place}"


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an int in range {lo}..{hi}, got {value!r}")


@dataclass(frozen=True)
class PatchRequest:
    """The patch for a prompt (``Predictor.patch``)."""

    prompt: str
    temperature: float = 0.0
    seed: int | None = None
    op: str = "patch"


@dataclass(frozen=True)
class MorphRequest:
    """The patch a fraction ``t`` of the way between two prompts (``Predictor.morph``)."""

    prompt_a: str
    prompt_b: str
    t: float
    op: str = "morph"


@dataclass(frozen=True)
class ChoiceRequest:
    """Entry ``index`` of the prompt's list of choices (``Predictor.choices(prompt,
    count)``). With ``wrap`` (the steps, /prompt/next) counted round the list: ``count``
    is the entry after the last, i.e. the first, and -1 is the last; without (a place
    asked for by number, /prompt/choose) an index beyond the list is refused."""

    prompt: str
    index: int
    count: int = MAX_CHOICES
    wrap: bool = True
    op: str = "choice"

    def __post_init__(self) -> None:
        # Checked here, so that a malformed request is refused on either side of the pipe.
        _check_int("index", self.index, -MAX_CHOICES, MAX_CHOICES)
        _check_int("count", self.count, 1, MAX_CHOICES)
        if not isinstance(self.wrap, bool):
            raise ValueError(f"wrap must be a bool, got {self.wrap!r}")


@dataclass(frozen=True)
class ChoicesRequest:
    """The names of the prompt's list of choices (at most ``count``), no patch: what
    /prompt/choices answers where the host does not know the list yet."""

    prompt: str
    count: int = MAX_CHOICES
    op: str = "choices"

    def __post_init__(self) -> None:
        _check_int("count", self.count, 1, MAX_CHOICES)


@dataclass(frozen=True)
class SyncRequest:
    """Answered once every earlier request has been."""

    op: str = "sync"


@dataclass(frozen=True)
class ModelPatch:
    """A patch the model made: ``table``; ``instrument``, its name as a person reads it
    ("Clarinet, FluidR3 GM"; "" for a morph or a variation); ``choice``, its place in the
    prompt's list of choices (0: the words' own), ``count``, that list's length (0 where
    it was not made) and ``choices``, the names of that list, where the model ranked it
    for this answer (() where not)."""

    table: object  # engine.KeyTable (imported lazily: the host process imports no model)
    instrument: str = ""
    choice: int = 0
    count: int = 0
    choices: tuple[str, ...] = ()


Request = PatchRequest | MorphRequest | ChoiceRequest | ChoicesRequest | SyncRequest
REQUESTS = {
    "patch": PatchRequest,
    "morph": MorphRequest,
    "choice": ChoiceRequest,
    "choices": ChoicesRequest,
    "sync": SyncRequest,
}


def answer(predictor, request: Request) -> dict:
    """What the worker sends back for one request (the patch as ``KeyTable.to_dict``)."""
    extra: dict = {}
    if isinstance(request, PatchRequest):
        table = predictor.patch(request.prompt, temperature=request.temperature, seed=request.seed)
        if request.temperature == 0.0:
            # The words' own choice: the first of their list, which names it.
            extra["instrument"] = predictor.choices(request.prompt, 1)[0].title
    elif isinstance(request, MorphRequest):
        table = predictor.morph(request.prompt_a, request.prompt_b, request.t)
    elif isinstance(request, ChoiceRequest):
        listed = predictor.choices(request.prompt, request.count)
        i = request.index % len(listed) if request.wrap else request.index
        if not 0 <= i < len(listed):
            raise ValueError(beyond_the_list(request.prompt, request.index + 1, len(listed)))
        table = listed[i].table
        # The names come free with the list: the host keeps them for /prompt/choices.
        extra = {"instrument": listed[i].title, "choice": i, "count": len(listed),
                 "choices": [c.title for c in listed]}
    elif isinstance(request, ChoicesRequest):
        listed = predictor.choices(request.prompt, request.count)
        return {"ok": True, "table": None, "choices": [c.title for c in listed]}
    else:
        return {"ok": True, "table": None}
    return {"ok": True, "table": table.to_dict(), **extra}


def _read_titles(titles: object) -> tuple[str, ...] | None:
    """A list of choices' names as the worker sent it, or None if malformed."""
    if not isinstance(titles, list) or len(titles) > MAX_CHOICES:
        return None
    if not all(isinstance(t, str) and len(t) <= MAX_TITLE_CHARS for t in titles):
        return None
    return tuple(titles)


def read_answer(message: dict) -> tuple[bool, object]:
    """A reply from the worker as (ok, value), validated: value is a :class:`ModelPatch`,
    a tuple of names (a :class:`ChoicesRequest`'s), None (a sync), or the reason."""
    from engine import KeyTable, ThetaError

    if not message.get("ok"):
        return False, str(message.get("error", "the model failed"))
    titles = _read_titles(message.get("choices", []))
    if titles is None:
        return False, f"the model sent a malformed list of choices: {message.get('choices')!r:.200}"
    table = message.get("table")
    if table is None:
        return True, (titles if "choices" in message else None)
    try:
        table = KeyTable.from_dict(table)
    except ThetaError as exc:
        return False, f"the model sent an invalid patch: {exc}"
    instrument, choice, count = message.get("instrument", ""), message.get("choice", 0), message.get("count", 0)
    if not isinstance(instrument, str) or not all(
        isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= MAX_CHOICES for x in (choice, count)
    ):
        return False, f"the model sent a malformed choice: {instrument!r}, {choice!r} of {count!r}"
    return True, ModelPatch(table, instrument, choice, count, titles)
