"""The `promptsynth` command line.

Each group of subcommands lives in a module of `server.commands` that defines
``register(subparsers)``; heavy imports (torch, training) happen inside the handlers so
that `promptsynth --help` and `promptsynth devices` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import signal
import sys

__all__ = ["main", "build_parser", "CliError", "example", "shared_option", "version"]

# Command modules, in the order their commands appear in --help.
_COMMAND_MODULES = (
    "server.commands.play",
    "server.commands.render",
    "server.commands.patch",
    "server.commands.train",
)


class CliError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


def example(parser: argparse.ArgumentParser, *commands: str) -> argparse.ArgumentParser:
    """End ``parser``'s --help with commands that work as printed (a test runs them)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    heading = "examples:" if len(commands) > 1 else "example:"
    parser.epilog = heading + "\n" + "\n".join(f"  {c}" for c in commands)
    parser.examples = commands
    return parser


def shared_option(parsers, *flags: str, **kwargs) -> None:
    """An option of a whole command (``--bank``, ``--model``) that works before and after
    its action: the command's parser has it with its default, each action's parser has it
    with no default (so that leaving it out there keeps what was given before)."""
    parent, *actions = parsers
    parent.add_argument(*flags, **kwargs)
    kwargs = {k: v for k, v in kwargs.items() if k != "default"}
    for action in actions:
        action.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)


def version() -> str:
    """``promptsynth X.Y.Z (theta schema N)``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    from engine.schema import SCHEMA_VERSION

    try:
        v = package_version("promptsynth")
    except PackageNotFoundError:
        v = "(not installed)"
    return f"promptsynth {v} (theta schema {SCHEMA_VERSION})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptsynth",
        description="Turn a few words into a playable FM/ADSR instrument.",
    )
    parser.add_argument("--version", action="version", version=version())
    example(parser, 'promptsynth render --prompt "a guitar note" --out guitar.wav')
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
        sys.stdout.flush()
    except CliError as exc:
        print(f"promptsynth {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`promptsynth patch list | head`): stop quietly, as the
        # tools people know do, with their status (killed by SIGPIPE: 128 + 13).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
