"""What a green run must mean in CI: the pytest hooks that count the tests that ran, by
kind, and fail a CI run that skipped what CI is there to run.

``tests/conftest.py`` imports the hooks; ``tests/test_ci_run.py`` runs them on a small
suite of its own (``pytest -p tests.ci_gate``).

The gate is on under ``CI=true`` (set by CI services) and under ``PROMPTSYNTH_CI=1``
(set by ``.ci/run``). Then:

- a skipped test marked ``jack`` fails the run: CI starts a JACK server, so none may be
  skipped for want of one;
- a skip whose reason names a part CI installs (:data:`CI_PARTS`) fails the run;
- under ``PROMPTSYNTH_CI=1`` (the whole suite, as ``.ci/run`` runs it), a run in which no
  ``jack`` test ran fails too.

Every run ends with one line of counts: the tests that ran (passed or failed) and those
skipped, ``jack``-marked and not.
"""

from __future__ import annotations

import os
import re

import pytest

__all__ = ["CI_PARTS", "gate_on", "whole_suite", "forbidden", "pytest_configure"]

#: What ``.ci/run`` installs, as a skip reason would name it: a skip that names one of
#: these cannot happen in CI unless the install or the JACK server failed.
CI_PARTS = re.compile(
    r"jack|oscsend|liblo|pure ?data|puredata|\bpd\b|fluidr3|soundfont|fluidsynth|"
    r"pretty_midi|portaudio|sndfile|rtmixer|checkpoint|chromium|chromedriver|selenium",
    re.IGNORECASE,
)

def gate_on() -> bool:
    """True in CI: ``CI=true`` (CI services set it) or ``PROMPTSYNTH_CI=1`` (.ci/run)."""
    return os.environ.get("CI", "").lower() in ("true", "1") or whole_suite()


def whole_suite() -> bool:
    """``.ci/run`` runs the whole suite: then some ``jack`` test must have run."""
    return os.environ.get("PROMPTSYNTH_CI") == "1"


def forbidden(jack: bool, reason: str) -> bool:
    """Whether a skip (of a ``jack``-marked test or not, for ``reason``) fails a CI run."""
    return jack or CI_PARTS.search(reason) is not None


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class _Gate:
    """Counts what ran and what was skipped; in CI, fails the run over a forbidden skip."""

    def __init__(self) -> None:
        self.ran = {True: 0, False: 0}  # jack-marked or not -> tests that ran
        self.skipped: list[tuple[str, bool, str]] = []  # (node id, jack-marked, reason)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        jack = "jack" in report.keywords
        if hasattr(report, "wasxfail"):  # an expected failure ran (pytest files it as skipped)
            if report.when == "call":
                self.ran[jack] += 1
        elif report.skipped:  # in set-up (a fixture or a mark) or in the test itself
            self.skipped.append((report.nodeid, jack, _reason(report)))
        elif report.when == "call":
            self.ran[jack] += 1

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A whole module skipped at import (allow_module_level, importorskip).
        if report.skipped:
            self.skipped.append((report.nodeid, False, _reason(report)))

    def failures(self) -> list[str]:
        """Why this run fails the gate (empty: it does not)."""
        why = [f"skipped ({'a jack test' if jack else 'a part CI installs'}): {nodeid}: {reason}"
               for nodeid, jack, reason in self.skipped if forbidden(jack, reason)]
        if whole_suite() and self.ran[True] == 0:
            why.append("no jack test ran")
        return why

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Over "no tests ran" (5) too: a CI run that ran nothing is not a pass either.
        if gate_on() and self.failures():
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        jack_skipped = sum(1 for s in self.skipped if s[1])
        terminalreporter.write_line(
            f"promptsynth: ran {self.ran[True]} jack tests and {self.ran[False]} others; "
            f"skipped {jack_skipped} jack tests and {len(self.skipped) - jack_skipped} others"
        )
        if not gate_on():
            return
        for why in self.failures():
            terminalreporter.write_line(f"CI FAILURE: {why}", red=True)
        if self.failures():
            terminalreporter.write_line(
                "CI FAILURE: CI installs these parts and starts a JACK server: nothing may be "
                "skipped for want of them", red=True)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("promptsynth-ci-gate"):
        config.pluginmanager.register(_Gate(), "promptsynth-ci-gate")
