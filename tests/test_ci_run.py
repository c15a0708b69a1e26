"""A green CI run means the suite ran: `.ci/run` fails when jackd does not start, and the
CI gate (tests/ci_gate.py) fails a run that skipped a jack test or a part CI installs.

The gate is run on a small suite of its own in a subprocess (``pytest -p tests.ci_gate``);
`.ci/run`'s JACK step alone (``--check-jackd``) with jackd off the PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_SUITE = '''
import pytest

@pytest.mark.jack
def test_jack_runs():
    assert 1 + 1 == 2

def test_other_runs():
    assert 2 * 2 == 4

@pytest.mark.jack
def test_jack_skipped():
    {jack_skip}

def test_other_skipped():
    {other_skip}
'''


def run_gate(tmp_path: Path, env_extra: dict, jack_skip: str = "pass",
             other_skip: str = "pass") -> subprocess.CompletedProcess:
    (tmp_path / "test_small.py").write_text(_SUITE.format(jack_skip=jack_skip, other_skip=other_skip))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PROMPTSYNTH_CI")}
    env.update(env_extra, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_gate", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_summary_counts_what_ran_of_each_kind(tmp_path):
    r = run_gate(tmp_path, {}, other_skip='pytest.skip("not on this platform")')
    assert r.returncode == 0, r.stdout
    assert "promptsynth: ran 2 jack tests and 1 others; skipped 0 jack tests and 1 others" in r.stdout


def test_a_skipped_jack_test_passes_outside_ci_and_fails_in_ci(tmp_path):
    skip = 'pytest.skip("needs a running JACK server")'
    assert run_gate(tmp_path, {}, jack_skip=skip).returncode == 0
    for env in ({"CI": "true"}, {"PROMPTSYNTH_CI": "1"}):
        r = run_gate(tmp_path, env, jack_skip=skip)
        assert r.returncode == 1, (env, r.stdout)
        assert "CI FAILURE: skipped (a jack test): test_small.py::test_jack_skipped" in r.stdout


@pytest.mark.parametrize("reason", [
    "needs liblo-tools (oscsend)", "needs Pure Data (puredata-core)",
    "FluidR3_GM.sf2 is absent (apt install fluid-soundfont-gm)", "needs jackd",
])
def test_a_skip_for_want_of_a_part_ci_installs_fails_in_ci(tmp_path, reason):
    r = run_gate(tmp_path, {"CI": "true"}, other_skip=f"pytest.skip({reason!r})")
    assert r.returncode == 1, r.stdout
    assert f"CI FAILURE: skipped (a part CI installs): test_small.py::test_other_skipped: {reason}" in r.stdout


def test_other_skips_pass_in_ci_and_are_counted(tmp_path):
    r = run_gate(tmp_path, {"CI": "true"}, other_skip='pytest.skip("not on this platform")')
    assert r.returncode == 0, r.stdout
    assert "skipped 0 jack tests and 1 others" in r.stdout


def test_an_expected_failure_counts_as_run_not_as_a_skip(tmp_path):
    r = run_gate(tmp_path, {"CI": "true"},
                 jack_skip='pytest.xfail("a known fault")')
    assert r.returncode == 0, r.stdout
    assert "ran 2 jack tests and 2 others; skipped 0 jack tests and 0 others" in r.stdout


def test_a_whole_suite_run_with_no_jack_test_run_fails(tmp_path):
    (tmp_path / "test_small.py").write_text("def test_other():\n    assert True\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PROMPTSYNTH_CI")}
    env.update(PROMPTSYNTH_CI="1", PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_gate", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1 and "CI FAILURE: no jack test ran" in r.stdout, r.stdout


def path_without(program: str, folder: Path) -> str:
    """This PATH, with every folder that holds ``program`` replaced by a copy of its
    links less that one (made under ``folder``)."""
    parts = []
    for i, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if d and os.path.exists(os.path.join(d, program)):
            shadow = folder / f"bin{i}"
            shadow.mkdir()
            for name in os.listdir(d):
                if name != program:
                    (shadow / name).symlink_to(os.path.join(d, name))
            d = str(shadow)
        parts.append(d)
    return os.pathsep.join(parts)


def test_ci_run_fails_when_jackd_cannot_start(tmp_path):
    """`.ci/run`'s JACK step with jackd off the PATH, asked for a server of a name of
    its own (JACK_DEFAULT_SERVER), so that a JACK server already running here does not
    answer for it: it exits 1 and says why."""
    env = dict(os.environ, PATH=path_without("jackd", tmp_path),
               JACK_DEFAULT_SERVER=f"promptsynth-nojack-{os.getpid()}")
    r = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--check-jackd"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "jackd did not start" in r.stdout


@pytest.mark.jack
def test_ci_run_jack_step_passes_where_a_server_runs(jack):
    r = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--check-jackd"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a JACK server runs already" in r.stdout
