"""The `promptsynth` command line.

Each group of subcommands lives in a module of `server.commands` that defines
``register(subparsers)``; heavy imports (torch, training) happen inside the handlers so
that `promptsynth --help` and `promptsynth devices` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

__all__ = ["main", "build_parser", "CliError"]

# Command modules, in the order their commands appear in --help.
_COMMAND_MODULES = (
    "server.commands.play",
    "server.commands.render",
    "server.commands.patch",
    "server.commands.train",
)


class CliError(Exception):
    """A user error on the command line: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptsynth",
        description="Turn a few words into a playable FM/ADSR instrument.",
    )
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
    except CliError as exc:
        print(f"promptsynth {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
