"""/prompt/next and /prompt/prev (the prompt line's :next and :prev), /prompt/choices and
/prompt/choose (:choices, :choose N), and the instrument the words picked in /prompt/done
and /patch/changed: the address space over real UDP,
the host's own answer path (``ModelGateway.request``, ``ModelGateway._answered``), a real
model worker process (the stand-in predictor: three choices for any words) and the
channels' real state. The shipped model's own list is tested in
tests/model/test_choices.py and live under JACK in test_prompt_choices_live.py."""

from __future__ import annotations

import threading

import pytest

from engine import TIMBRE_NAMES
from server.gateway import ModelGateway
from server.model_requests import read_answer
from server.osc import OscServer
from server.prompt_line import PromptLine
from server.state import ChannelStates
from server.status import HostStatus
from server.worker import ChoiceRequest, ChoicesRequest, ModelWorker, PatchRequest
from tests.server.conftest import OscClient
from tests.server.fake_predictor import N_CHOICES, FakePredictor
from tests.server.test_osc_unit import FakeHost

N_TIMBRE = len(TIMBRE_NAMES)


class ModelHost(FakeHost):
    """The test host with a real model worker, answered as the live host answers (its
    model gateway)."""

    def __init__(self, tmp, worker: ModelWorker) -> None:
        super().__init__(tmp)
        self.channels = ChannelStates(self.engine, lambda address, *args: self.osc.notify(address, *args))
        self.model = ModelGateway(self.channels)
        self.model.worker = worker
        self.status = HostStatus(self.engine, self.output, self.model)


@pytest.fixture(scope="module")
def worker():
    w = ModelWorker(loader="tests.server.fake_predictor:load", ready_timeout_s=60).start()
    assert w.wait_ready(), w.reason
    yield w
    w.close()


@pytest.fixture
def host(tmp_path, worker):
    h = ModelHost(tmp_path, worker)
    h.addresses = h.address_space()
    # Every message applies at once (no timetags here).
    h.osc = h.status.osc = OscServer(h.addresses, lambda when, actions: [a(None) for a in actions], port=0)
    h.osc.start()
    yield h
    h.osc.close()


@pytest.fixture
def osc(host):
    c = OscClient(host.osc.port)
    c.ask("/notify", c.port, reply="/notify.reply")
    yield c
    c.close()


def _sustain(values: list) -> float:
    return values[TIMBRE_NAMES.index("sustain")]


def test_prompt_done_and_patch_changed_name_the_instrument_last(osc, host):
    osc.send("/prompt", "a reed", 2, 7)
    done = osc.expect("/prompt/done", where=lambda p: p[0] == 7)
    # The fields before stay where they were: id, text, every timbre value; then the name.
    assert len(done) == 2 + N_TIMBRE + 1
    assert done[:2] == [7, "a reed"] and done[-1] == "instrument 1 of 'a reed'"
    want = FakePredictor().patch("a reed").center()
    assert done[2:-1] == pytest.approx([want[n] for n in TIMBRE_NAMES], rel=1e-6)
    changed = osc.expect("/patch/changed", where=lambda p: p[0] == 2)
    assert changed[1] == "a reed" and changed[2:] == done[2:]
    state = host.channels.state(1)
    assert (state.prompt, state.instrument, state.choice) == ("a reed", "instrument 1 of 'a reed'", 0)


def test_next_and_prev_walk_the_words_list_round_and_back(osc, host):
    osc.send("/prompt", "a reed", 3, 1)
    osc.expect("/prompt/done", where=lambda p: p[0] == 1)
    osc.expect("/patch/changed", where=lambda p: p[0] == 3)
    seen = []
    for address in ["/prompt/next"] * N_CHOICES + ["/prompt/prev"] * 2:
        osc.send(address, 3)
        got = osc.expect("/prompt/choice")
        assert got[:2] == [3, "a reed"] and got[3] == N_CHOICES and len(got) == 5 + N_TIMBRE
        seen.append((got[2], got[4], _sustain(got[5:])))
        # What the reply says is what the channel plays and what the notice said.
        changed = osc.expect("/patch/changed", where=lambda p: p[0] == 3)
        assert changed[-1] == got[4] and changed[2:-1] == got[5:]
        assert host.channels.state(2).table.center()["sustain"] == pytest.approx(_sustain(got[5:]))
    # Places 2, 3, then round to 1 (the words' own), then back: 3, 2.
    assert [s[0] for s in seen] == [2, 3, 1, 3, 2]
    assert [s[1] for s in seen] == [f"instrument {i} of 'a reed'" for i in (2, 3, 1, 3, 2)]
    assert seen[0][2] == pytest.approx(0.1) and seen[1][2] == pytest.approx(0.2)
    assert seen[4] == seen[0]  # the same entry every time it comes round


def test_next_needs_words_on_the_channel_and_a_model(osc, host, tmp_path):
    for address in ("/prompt/next", "/prompt/prev"):
        osc.send(address, 5)
        fail = osc.expect("/fail", where=lambda p, a=address: p[0] == a)
        assert "channel 5 has no words yet" in fail[1] and "send /prompt" in fail[1]
    osc.send("/prompt/next", 17)
    assert "channel must be an int in range 1..16" in osc.expect("/fail")[1]
    # Words on the channel, but no model to walk their list.
    host.model.worker = None
    host.model.reason = "no model: started with --no-model"
    host.channels.apply(5, host.channels.state(5).table, "a reed", "a reed")
    osc.send("/prompt/next", 6)
    assert osc.expect("/fail", where=lambda p: p[0] == "/prompt/next")[1] == "no model: started with --no-model"


def test_a_new_prompt_starts_the_walk_again(osc, host):
    osc.send("/prompt", "a reed", 1, 1)
    osc.expect("/prompt/done")
    osc.send("/prompt/next", 1)
    assert osc.expect("/prompt/choice")[2] == 2
    osc.send("/prompt", "a pipe", 1, 2)
    osc.expect("/prompt/done", where=lambda p: p[0] == 2)
    osc.send("/prompt/next", 1)
    got = osc.expect("/prompt/choice")
    assert got[1:3] == ["a pipe", 2] and got[4] == "instrument 2 of 'a pipe'"


def test_the_prompt_line_says_which_instrument_and_walks_with_next_and_prev(host):
    lines: list[str] = []
    cond = threading.Condition()

    def write(line: str) -> None:
        with cond:
            lines.append(line)
            cond.notify_all()

    def wait_for(words: str) -> str:
        with cond:
            assert cond.wait_for(lambda: any(words in ln for ln in lines), 10), lines
            return next(ln for ln in lines if words in ln)

    pl = PromptLine(host, threading.Event(), write)
    pl.handle(":next")
    assert wait_for("error:") == (
        "  error: channel 1 has no words yet (its patch 'default' came from no prompt): send "
        "/prompt s:text first; /prompt/next and /prompt/prev walk its list of choices"
    )
    pl.handle("a reed")
    assert wait_for("ready").startswith("  'a reed': ready: instrument 1 of 'a reed' (attack ")
    pl.handle(":next")
    assert wait_for("2/3").startswith("  'a reed' 2/3: instrument 2 of 'a reed' (attack ")
    pl.handle(":prev")
    assert wait_for("1/3").startswith("  'a reed' 1/3: instrument 1 of 'a reed' (attack ")
    pl.handle(":choices")
    assert wait_for("<- playing") == (
        "  'a reed':\n    1. instrument 1 of 'a reed'  <- playing\n    2. instrument 2 of 'a reed'"
        "\n    3. instrument 3 of 'a reed'"
    )
    pl.handle(":choose 3")
    assert wait_for("3/3").startswith("  'a reed' 3/3: instrument 3 of 'a reed' (attack ")
    pl.handle(":choose three")
    assert "place must be an int in range 1..8" in wait_for("place must")
    pl.handle(":next now")
    assert "is not a command" in wait_for("not a command")


def test_choice_requests_are_checked_on_both_sides_of_the_pipe(worker):
    for bad in (True, 1.0, 9, -9, "1"):
        with pytest.raises(ValueError, match=r"index must be an int in range -8\.\.8"):
            ChoiceRequest("a reed", bad)
    with pytest.raises(ValueError, match=r"count must be an int in range 1\.\.8"):
        ChoiceRequest("a reed", 0, 0)
    # One that slipped past the host's check (built without it) fails in the worker,
    # with the same words, and fails only itself.
    bad = object.__new__(ChoiceRequest)
    for field, value in (("prompt", "a reed"), ("index", 99), ("count", 8), ("wrap", True), ("op", "choice")):
        object.__setattr__(bad, field, value)
    got = threading.Event()
    answers: list = []
    for request in (bad, PatchRequest("a reed")):
        worker.submit(request, lambda ok, v: (answers.append((ok, v)), len(answers) == 2 and got.set()))
    assert got.wait(10)
    assert answers[0] == (False, "index must be an int in range -8..8, got 99")
    assert answers[1][0] and answers[1][1].instrument == "instrument 1 of 'a reed'"


def test_the_words_list_is_answered_round_in_the_worker(worker):
    results: list = []
    done = threading.Event()
    for i in (0, 1, 2, 3, -1, 8):
        worker.submit(ChoiceRequest("a reed", i), lambda ok, v: (results.append((ok, v)), len(results) == 6 and done.set()))
    assert done.wait(10)
    assert all(ok for ok, _ in results)
    assert [(v.choice, v.count) for _, v in results] == [(0, 3), (1, 3), (2, 3), (0, 3), (2, 3), (2, 3)]
    assert results[1][1].table.center()["sustain"] == pytest.approx(0.1)


def _names(prompt: str, n: int = N_CHOICES) -> list[str]:
    return [f"instrument {i} of {prompt!r}" for i in range(1, n + 1)]


def _count_asks(host) -> list:
    """The ChoicesRequests the host sends the model (it ranks the words' list for each)."""
    asked: list = []
    ask = host.model.ask
    host.model.ask = lambda request, *a: (asked.append(request), ask(request, *a))[1]
    return asked


def test_choices_lists_the_words_list_and_marks_the_one_playing(osc, host):
    asked = _count_asks(host)
    osc.send("/prompt", "a reed", 2, 1)
    osc.expect("/prompt/done", where=lambda p: p[0] == 1)
    # The words' own pick plays: place 1. The list is not known yet: the model ranks it once.
    assert osc.ask("/prompt/choices", 2, reply="/prompt/choices.reply") == [2, "a reed", 1, *_names("a reed")]
    assert host.channels.state(1).choices == tuple(_names("a reed")) and len(asked) == 1
    assert osc.ask("/prompt/choices", 2, reply="/prompt/choices.reply")[2] == 1
    assert len(asked) == 1  # kept: not ranked again
    osc.send("/prompt/next", 2)
    assert osc.expect("/prompt/choice")[2] == 2
    # A step's answer brings its list along: the reply says where the channel is now.
    assert osc.ask("/prompt/choices", 2, reply="/prompt/choices.reply") == [2, "a reed", 2, *_names("a reed")]
    assert len(asked) == 1
    # New words, a new list (and place 1 again); /param keeps the place.
    osc.send("/prompt", "a pipe", 2, 2)
    osc.expect("/prompt/done", where=lambda p: p[0] == 2)
    osc.send("/param/sustain", 0.5, 2)
    assert osc.ask("/prompt/choices", 2, reply="/prompt/choices.reply") == [2, "a pipe", 1, *_names("a pipe")]
    assert len(asked) == 2


def test_choose_plays_a_place_of_the_list_and_refuses_one_beyond_it(osc, host):
    osc.send("/prompt", "a reed", 3, 1)
    osc.expect("/prompt/done", where=lambda p: p[0] == 1)
    osc.expect("/patch/changed", where=lambda p: p[0] == 3)
    # Not listed yet: the worker finds the place beyond the list, and nothing changes.
    before = host.channels.state(2)
    osc.send("/prompt/choose", 4, 3)
    fail = osc.expect("/fail", where=lambda p: p[0] == "/prompt/choose")
    assert fail[1] == "place must be in range 1..3 (the list of choices for 'a reed' holds 3), got 4"
    assert host.channels.state(2) == before
    osc.send("/prompt/choose", 3, 3)
    got = osc.expect("/prompt/choice")
    assert got[:5] == [3, "a reed", 3, N_CHOICES, "instrument 3 of 'a reed'"]
    assert osc.expect("/patch/changed", where=lambda p: p[0] == 3)[-1] == got[4]
    assert host.channels.state(2).table.center()["sustain"] == pytest.approx(0.2)
    assert osc.ask("/prompt/choices", 3, reply="/prompt/choices.reply")[2] == 3
    # Listed now: the host refuses a place beyond it itself, with the same words.
    osc.send("/prompt/choose", 4, 3)
    assert osc.expect("/fail", where=lambda p: p[0] == "/prompt/choose")[1] == fail[1]
    # From a place, the steps walk on from it.
    osc.send("/prompt/next", 3)
    assert osc.expect("/prompt/choice")[2] == 1
    for bad, why in ((0, "place must be an int in range 1..8, got 0"), (9, "place must be an int in range 1..8, got 9"),
                     ("two", "place must be an int")):
        osc.send("/prompt/choose", bad, 3)
        assert why in osc.expect("/fail", where=lambda p: p[0] == "/prompt/choose")[1]


def test_choices_needs_words_on_the_channel_and_a_model(osc, host):
    for address, tail in (("/prompt/choices", "/prompt/choices then lists its choices"),
                          ("/prompt/choose", "/prompt/choose then plays one of its list of choices")):
        osc.send(address, *([1] if address == "/prompt/choose" else []), 5)
        fail = osc.expect("/fail", where=lambda p, a=address: p[0] == a)
        assert fail[1] == (
            "channel 5 has no words yet (its patch 'default' came from no prompt): send /prompt s:text first; " + tail
        )
    osc.send("/prompt/choices", 17)
    assert "channel must be an int in range 1..16" in osc.expect("/fail", where=lambda p: p[0] == "/prompt/choices")[1]
    # A morph's patch has no words either.
    osc.send("/morph", "a reed", "a pipe", 0.5, 6)
    osc.expect("/morph/done")
    osc.send("/prompt/choices", 6)
    assert "channel 6 has no words yet" in osc.expect("/fail", where=lambda p: p[0] == "/prompt/choices")[1]
    # A bank patch saved with words: their list, none of it playing (place 0).
    host.channels.apply(6, host.channels.state(6).table, "reedy", "a reed")
    assert osc.ask("/prompt/choices", 7, reply="/prompt/choices.reply") == [7, "a reed", 0, *_names("a reed")]
    # Words, but no model.
    host.model.worker = None
    host.model.reason = "no model: started with --no-model"
    for address in ("/prompt/choices", "/prompt/choose"):
        osc.send(address, *([1] if address == "/prompt/choose" else []), 7)
        assert osc.expect("/fail", where=lambda p, a=address: p[0] == a)[1] == "no model: started with --no-model"


def test_the_list_is_answered_by_name_and_checked_on_the_way_back(worker):
    with pytest.raises(ValueError, match=r"count must be an int in range 1\.\.8, got 0"):
        ChoicesRequest("a reed", 0)
    results: list = []
    done = threading.Event()
    for request in (ChoicesRequest("a reed"), ChoicesRequest("a reed", 2), ChoiceRequest("a reed", 1)):
        worker.submit(request, lambda ok, v: (results.append((ok, v)), len(results) == 3 and done.set()))
    assert done.wait(10)
    assert results[0] == (True, tuple(_names("a reed"))) and results[1] == (True, tuple(_names("a reed", 2)))
    assert results[2][1].choices == tuple(_names("a reed"))
    # What the host takes from the pipe: a list of at most 8 names, each a short string.
    assert read_answer({"ok": True, "table": None}) == (True, None)
    for bad in ([1], "a reed", ["x"] * 9, ["x" * 201]):
        ok, why = read_answer({"ok": True, "table": None, "choices": bad})
        assert not ok and why.startswith("the model sent a malformed list of choices")
