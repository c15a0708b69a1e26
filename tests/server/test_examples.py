"""The client examples only use addresses the host knows (they cannot all run here: Max
does not run on Linux; the Pd one is run headless in test_play_osc)."""

from __future__ import annotations

import json
import re

from server.addresses import AddressSpace
from tests.server.conftest import ROOT

KNOWN = set(AddressSpace().addresses)


def test_max_patch_is_json_and_sends_known_addresses():
    pat = json.loads((ROOT / "examples" / "max" / "promptsynth.maxpat").read_text())
    texts = [b["box"].get("text", "") for b in pat["patcher"]["boxes"]]
    sent = {t.split()[0] for t in texts if t.startswith("/")} | {
        t.split()[1] for t in texts if t.startswith("prepend /")
    }
    assert sent and sent <= KNOWN, sent - KNOWN
    assert any(t.startswith("udpsend") for t in texts) and any(
        t.startswith("udpreceive") for t in texts
    )
    ids = {b["box"]["id"] for b in pat["patcher"]["boxes"]}
    for line in pat["patcher"]["lines"]:
        assert line["patchline"]["source"][0] in ids and line["patchline"]["destination"][0] in ids


def test_pd_patch_formats_known_addresses():
    text = (ROOT / "examples" / "pd" / "promptsynth.pd").read_text()
    sent = {"/" + a for a in re.findall(r"oscformat ([\w/]+);", text)}
    assert sent and sent <= KNOWN, sent - KNOWN
