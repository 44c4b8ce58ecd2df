"""The operator command line.

Each module in `COMMAND_MODULES` adds its sub-commands with `register(subparsers)`. A
sub-command stores its handler as the `handler` default, which receives the parsed arguments
and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = (
    "cosync.cli.local",
    "cosync.cli.apps",
    "cosync.cli.templates",
    "cosync.cli.atlas",
    "cosync.cli.server_key",
    "cosync.cli.invites",
    "cosync.cli.users",
    "cosync.cli.transfer",
    "cosync.cli.db",
)


class CommandError(Exception):
    """A command failed; the message is printed as one line and the exit status is 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cosync",
        description="Cosync JWT server: operator commands and the local development server.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from cosync.secrets import MissingSecretError
    from cosync.settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CommandError, MissingSecretError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
