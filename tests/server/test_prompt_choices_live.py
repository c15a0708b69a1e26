"""The shipped model in a live host on JACK, over real OSC (UDP): /prompt/done and the
/patch/changed notice name the instrument the words picked, /prompt/next and
/prompt/prev play the library's next-best instruments for the channel's words, the
same list each time, round and back, /prompt/choices names that list (the one playing
marked) and /prompt/choose plays a place of it."""

from __future__ import annotations

import pytest

from engine import TIMBRE_NAMES
from patches import load_patch
from tests.server.conftest import ROOT, HostProcess, OscClient

pytestmark = [pytest.mark.jack, pytest.mark.slow]

SHIPPED = ROOT / "model" / "checkpoints" / "default"
N_TIMBRE = len(TIMBRE_NAMES)


def test_next_and_prev_play_the_librarys_next_instruments_by_name(jack, tmp_path):
    bank = tmp_path / "bank"
    host = HostProcess(["--model", str(SHIPPED), "--bank", str(bank)])
    osc = OscClient(host.port)
    try:
        osc.ask("/notify", osc.port, reply="/notify.reply")
        # No words on the channel yet: a clear refusal, nothing changes.
        osc.send("/prompt/next", 4)
        fail = osc.expect("/fail", where=lambda p: p[0] == "/prompt/next")
        assert "channel 4 has no words yet" in fail[1]
        osc.send("/prompt/choices", 4)
        fail = osc.expect("/fail", where=lambda p: p[0] == "/prompt/choices")
        assert "channel 4 has no words yet" in fail[1] and "/prompt/choices then lists" in fail[1]

        osc.send("/prompt", "a clarinet", 4, 9)
        done = osc.expect("/prompt/done", timeout=60, where=lambda p: p[0] == 9)
        assert len(done) == 2 + N_TIMBRE + 1 and done[-1].startswith("Clarinet, ")
        changed = osc.expect("/patch/changed", where=lambda p: p[0] == 4)
        assert changed[1] == "a clarinet" and changed[-1] == done[-1]
        # The list /prompt/next walks, by name: eight instruments, the words' own first, playing.
        listed = osc.ask("/prompt/choices", 4, reply="/prompt/choices.reply", timeout=30)
        assert listed[:3] == [4, "a clarinet", 1] and len(listed) == 3 + 8
        names_listed = listed[3:]
        assert names_listed[0] == done[-1]

        walked = []
        for address in ["/prompt/next"] * 3 + ["/prompt/prev"] * 3:
            osc.send(address, 4)
            got = osc.expect("/prompt/choice", timeout=30)
            assert got[:2] == [4, "a clarinet"] and got[3] == 8 and len(got) == 5 + N_TIMBRE
            walked.append((got[2], got[4], got[5:]))
            assert osc.expect("/patch/changed", where=lambda p: p[0] == 4)[-1] == got[4]
        assert [w[0] for w in walked] == [2, 3, 4, 3, 2, 1]
        names = [w[1] for w in walked]
        # Three instruments after the words' own, each named; back the same way to it.
        assert len(set(names[:3])) == 3 and done[-1] not in names[:3]
        assert names[3:] == [names[1], names[0], done[-1]]
        assert walked[3][2] == walked[1][2] and walked[5][2] == done[2:-1]
        # Round the list: back from the first is the eighth.
        osc.send("/prompt/prev", 4)
        last = osc.expect("/prompt/choice", timeout=30)
        assert last[2:4] == [8, 8] and last[4] not in names
        # The walk went the list's way, and /prompt/choices says where it is now.
        assert names[:3] == names_listed[1:4] and last[4] == names_listed[7]
        assert osc.ask("/prompt/choices", 4, reply="/prompt/choices.reply") == [4, "a clarinet", 8, *names_listed]
        # The channel plays what the reply said: /patch/save writes it, with its words.
        assert osc.ask("/patch/save", "eighth", 4, reply="/patch/saved") == ["eighth", 4]
        saved = load_patch(bank / "eighth.json")
        assert saved.prompt == "a clarinet"
        centre = saved.table.center()
        assert [centre[n] for n in TIMBRE_NAMES] == pytest.approx(last[5:], rel=1e-5)
        # A place by number plays that instrument; it is the same patch the walk played there.
        osc.send("/prompt/choose", 3, 4)
        chosen = osc.expect("/prompt/choice", timeout=30)
        assert chosen[2:5] == [3, 8, names_listed[2]] and chosen[5:] == walked[1][2]
        assert osc.expect("/patch/changed", where=lambda p: p[0] == 4 and p[-1] == names_listed[2])
    finally:
        osc.close()
        assert host.stop() == 0, "".join(host.stderr)
