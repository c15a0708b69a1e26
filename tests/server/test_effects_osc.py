# ruff: noqa: F811 - the tests take the imported fixture rig as their argument
"""The send effects over OSC, through the real address space and OSC server (UDP on this
machine) into a real engine rendered offline: sends, settings, /fx/list, /status and
the /fail replies of bad values."""

from __future__ import annotations

import pytest

from engine.effects import EFFECT_SETTINGS
from tests.server.conftest import message
from tests.server.test_osc_unit import replies, rig  # noqa: F401 - rig: the fixture


def send(server, client, *packets) -> list[tuple[str, list]]:
    for p in packets:
        server.handle_packet(p, client.getsockname())
    return replies(client)


def test_sends_reach_the_channels(rig):
    host, server, client = rig
    assert send(server, client, message("/send/reverb", 0.5), message("/send/chorus", 1.0, 3),
                message("/send/delay", 0.25, 16), message("/cc", 91, 127, 2)) == []
    host.engine.render(128)
    level = host.engine.channels.send_level
    assert level[0, 0] == 0.5 and level[1, 2] == 1.0 and level[2, 15] == 0.25 and level[0, 1] == 1.0
    assert host.engine.sends()["reverb"][:2] == [0.5, 1.0]


def test_settings_apply_and_reply(rig):
    host, server, client = rig
    got = send(server, client, message("/fx/reverb/room", 0.9), message("/fx/delay/time", 1),
               message("/fx/chorus/delay_ms", 12.5))
    assert got == [("/fx/reverb/room.reply", [pytest.approx(0.9)]), ("/fx/delay/time.reply", [1.0]),
                   ("/fx/chorus/delay_ms.reply", [12.5])]
    host.engine.render(128)
    fx = host.engine.effects
    assert fx.plugins[0].room_size == pytest.approx(0.9) and fx.plugins[2].delay_seconds == 1.0
    assert fx.plugins[1].centre_delay_ms == 12.5


def test_fx_list_and_status_say_what_is_set(rig):
    host, server, client = rig
    send(server, client, message("/fx/chorus/rate", 3.0), message("/send/delay", 0.5, 4))
    ((address, values),) = send(server, client, message("/fx/list"))
    assert address == "/fx/list.reply" and len(values) == 4 * len(EFFECT_SETTINGS)
    table = {values[i]: values[i + 1 : i + 4] for i in range(0, len(values), 4)}
    assert table["chorus_rate"] == [3.0, 0.0, 20.0]
    assert table["reverb_room"] == [0.5, 0.0, 1.0]
    ((address, status),) = send(server, client, message("/status"))
    assert address == "/status.reply"
    fx = status[16:]  # after the host's own 16 fields (docs/osc.md)
    assert len(fx) == len(EFFECT_SETTINGS) + 3 * 16
    assert fx[[s.name for s in EFFECT_SETTINGS].index("chorus_rate")] == 3.0
    sends = fx[len(EFFECT_SETTINGS) :]
    assert sends[32 + 3] == 0.5 and sum(sends) == 0.5  # the delay's, channel 4


@pytest.mark.parametrize(
    "packet, reason",
    [
        (message("/send/reverb", 1.5), "level must be a number in range 0..1, got 1.5"),
        (message("/send/reverb", float("nan")), "level must be a number in range 0..1, got nan"),
        (message("/send/chorus", "lots"), "level must be a number in range 0..1, got str 'lots'"),
        (message("/send/delay", 0.5, 17), "channel must be an int in range 1..16, got 17"),
        (message("/send/reverb"), "takes level [channel]; got 0 argument(s)"),
        (message("/fx/reverb/room", 2.0), "room must be a number in range 0..1, got 2"),
        (message("/fx/reverb/room", float("inf")), "room must be a number in range 0..1, got inf"),
        (message("/fx/chorus/rate", -1.0), "rate must be a number in range 0..20, got -1"),
        (message("/fx/delay/time", 0.0), "time must be a number in range 0.001..2, got 0"),
        (message("/fx/delay/feedback", 1.0), "feedback must be a number in range 0..0.95, got 1"),
        (message("/fx/delay/time", True), "time must be a number in range 0.001..2, got bool True"),
        (message("/fx/reverb/size", 0.5), "unknown address; see docs/osc.md"),
    ],
)
def test_bad_values_fail_clearly_and_queue_nothing(rig, packet, reason):
    host, server, client = rig
    got = send(server, client, packet)
    assert len(got) == 1 and got[0][0] == "/fail" and got[0][1][1] == reason
    assert host.engine.queue.pending_in_ring() == 0
    assert host.engine.effect_settings() == {s.name: s.default for s in EFFECT_SETTINGS}
