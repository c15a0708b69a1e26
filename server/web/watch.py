"""State the pages follow that has no change notice of its own: read often, told on change.

The effect sends and settings change from many places (OSC, the page, a MIDI CC 91 read
in the render process and remembered by the host, a System Reset), and the host keeps
what it last sent of them (``EventSender.sends``, ``effect_settings``). Rather than a
notice at each of those places, the page's server reads that state every
:data:`PERIOD_S` while a page is open (about 10 us a read) and sends every page a notice
when it differs from the last read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Watch", "PERIOD_S"]

#: How often a watched state is read while a page is open: under two blocks of 128
#: frames at 48 kHz (2.67 ms each), so a change shows within a block or two.
PERIOD_S = 0.004


class Watch:
    """One watched state: ``read() -> list`` of numbers, told to the pages as
    ``address *values`` whenever it differs from the last read.

    Args:
        address: the notice's address (``/web/effects``).
        read: reads the state; called on the server's loop, so it must be quick.
        period_s: seconds between reads while a page is open.
    """

    def __init__(self, address: str, read: Callable[[], list], period_s: float = PERIOD_S) -> None:
        self.address = address
        self.read = read
        self.period_s = period_s
        self.notices = 0
        self.errors = 0  # reads that raised (bugs): counted, and the watch goes on
        self.last_error: str | None = None
        self._last: list | None = None

    async def run(self, broadcast: Callable[[str, list], None], pages: Callable[[], int]) -> None:
        """Until cancelled: ``broadcast(address, values)`` on each change while
        ``pages()`` says a page is open."""
        while True:
            await asyncio.sleep(self.period_s)
            if not pages():
                self._last = None
                continue
            try:
                values = self.read()
            except Exception as exc:  # noqa: BLE001 - a bug must not end the watch unseen
                self.errors += 1
                self.last_error = repr(exc)
                continue
            if values != self._last:
                # The first read is told too: a change between a page's hello and this
                # read would otherwise wait for the page's next /status.
                broadcast(self.address, values)
                self.notices += 1
                self._last = values
