"""The command line behaves like the tools people know: options of the whole command
before or after the action, --version, a pipe closed early, the user's umask, file names
without spaces, and a --help example for every command that works as printed."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import stat
import subprocess
import sys

import pytest

from server.cli import build_parser, main
from tests.server.conftest import ROOT


def promptsynth(*args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env, **kw)


def test_bank_before_or_after_the_action(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["patch", "--bank", str(a), "morph", "grand-piano", "violin", "--name", "x"]) == 0
    assert main(["patch", "morph", "grand-piano", "violin", "--name", "y", "--bank", str(b)]) == 0
    assert (a / "x.json").is_file() and (b / "y.json").is_file()
    # Given after the action, it wins over one given before.
    assert main(["patch", "--bank", str(a), "morph", "cello", "violin", "--name", "z", "--bank", str(b)]) == 0
    assert (b / "z.json").is_file() and not (a / "z.json").exists()
    args = build_parser().parse_args(["patch", "new", "a bell", "--model", "m", "--bank", "k"])
    assert (args.model, args.bank) == ("m", "k")
    args = build_parser().parse_args(["patch", "--model", "m", "--bank", "k", "new", "a bell"])
    assert (args.model, args.bank) == ("m", "k")


def test_version():
    r = promptsynth("--version")
    assert r.returncode == 0 and r.stdout.startswith("promptsynth 0.") and "theta schema 5" in r.stdout


def test_output_into_head_ends_quietly(tmp_path):
    cmd = f"{shlex.quote(sys.executable)} -m server patch list | head -1"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.count("\n") == 1
    assert r.stderr == "", r.stderr  # no BrokenPipeError traceback
    assert r.returncode in (0, 141)  # 141: cut off by SIGPIPE, as `yes | head -1`


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_users_umask(tmp_path, umask, mode):
    bank = tmp_path / "bank"
    env = dict(os.environ)

    def run():
        old = os.umask(umask)
        try:
            return promptsynth("patch", "--bank", str(bank), "morph", "cello", "violin", "--name", "m",
                               env=env)
        finally:
            os.umask(old)

    assert run().returncode == 0, run
    assert stat.S_IMODE((bank / "m.json").stat().st_mode) == mode
    old = os.umask(umask)
    try:
        r = promptsynth("patch", "--bank", str(bank), "program", "3", "m")
        r2 = promptsynth("render", "--patch", "cello", "--hold", "0.1", "--tail", "0.1", "--out",
                         str(tmp_path / "c.wav"), "--dump-json")
    finally:
        os.umask(old)
    assert r.returncode == 0 and r2.returncode == 0, (r.stderr, r2.stderr)
    assert stat.S_IMODE((bank / "bank.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "c.json").stat().st_mode) == mode


def test_factory_files_have_no_spaces_and_old_names_still_work(tmp_path):
    from patches import FACTORY_DIR, Bank, Patch, save_patch
    from patches.factory_prompts import FACTORY_PROMPTS

    files = [p.name for p in FACTORY_DIR.glob("*.json")]
    assert files and not [f for f in files if " " in f]
    bank = Bank(FACTORY_DIR, create=False)
    assert bank.load("grand piano").name == "grand piano"  # the display name is kept
    assert bank.load("grand-piano").name == "grand piano"  # the file's name finds it too
    assert sorted(bank.names()) == sorted(n for _, n, _ in FACTORY_PROMPTS)
    # A bank of an older version, whose files were named with spaces, still loads.
    old = tmp_path / "old"
    old.mkdir()
    save_patch(Patch("warm pad", bank.load("cello").table), old / "warm pad.json")
    b = Bank(old)
    assert b.names() == ["warm pad"] and b.load("warm pad").name == "warm pad"
    assert b.load("warm-pad").name == "warm pad"
    # Saved again over its name, it takes the new file name and the old file goes.
    b.save(b.load("warm pad"), overwrite=True)
    assert sorted(p.name for p in old.glob("*.json")) == ["warm-pad.json"]
    assert json.loads((old / "warm-pad.json").read_text())["name"] == "warm pad"


def _parsers(parser: argparse.ArgumentParser, path: str = "promptsynth"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_command_shows_an_example_that_parses():
    parser = build_parser()
    seen = set()
    for path, p in _parsers(parser):
        if id(p) in seen:
            continue
        seen.add(id(p))
        examples = getattr(p, "examples", ())
        assert examples, f"`{path} --help` shows no example"
        assert "example" in p.format_help()
        for cmd in examples:
            words = shlex.split(cmd)
            assert words[0] == "promptsynth" and " ".join(words[1:]).startswith(path.split(" ", 1)[1] if " " in path else "")
            parser.parse_args(words[1:])  # exits 2 on a bad example


@pytest.mark.parametrize(
    "command",
    [
        "promptsynth params --json",
        "promptsynth patch list",
        "promptsynth patch show grand-piano --out grand-piano.png",
        "promptsynth patch render grand-piano --pitch 48 --out piano-c3.wav",
        "promptsynth patch morph grand-piano violin --t 0.3 --name piano-violin",
        "promptsynth patch program 0 violin",
        "promptsynth render --patch grand-piano --pitch 72 --out piano.wav",
    ],
)
def test_the_quick_examples_work_as_printed(tmp_path, command):
    """Run in an empty folder with an empty user bank, as a newcomer would."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))
    r = subprocess.run([sys.executable, "-m", "server", *shlex.split(command)[1:]], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    examples = {c for _, p in _parsers(build_parser()) for c in getattr(p, "examples", ())}
    assert command in examples
