"""The test suite's own allowance for a stalled machine (tests/conftest.py): it forgives
a late event only when the control saw a stall, and never without a bound. The control
here is a stand-in with a count (the real one needs JACK and is used by the stage tests)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_within


class _Control:
    def __init__(self, count: int = 0) -> None:
        self.count = count


def _after(seconds: float):
    t0 = time.monotonic()
    return lambda: time.monotonic() - t0 >= seconds


def test_on_time_passes_and_returns_the_value():
    assert assert_within(lambda: 7, 0.1, _Control(), 0, "x") == 7


def test_late_without_a_stall_fails_after_the_limit():
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="late thing: not within 50 ms"):
        assert_within(_after(0.3), 0.05, _Control(3), 3, "late thing")
    assert time.monotonic() - t0 < 0.25


def test_late_with_a_stall_in_the_window_is_allowed_up_to_its_bound():
    assert assert_within(_after(0.2), 0.05, _Control(4), 3, "x")
    with pytest.raises(AssertionError, match="saw 1 JACK xruns or CPU stalls"):
        assert_within(lambda: False, 0.05, _Control(4), 3, "x", stalled_s=0.2)
