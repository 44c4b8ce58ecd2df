"""`apps ...`: manage apps from the command line through the same services as the API."""

from __future__ import annotations

import argparse
import json

from cosync.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    apps = subparsers.add_parser("apps", help="manage apps")
    commands = apps.add_subparsers(dest="apps_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="create an app and print its appId and app token")
    create.add_argument("name", help="the app's display name, unique on this server")
    create.add_argument("--json", action="store_true", help="print the whole created app as JSON")
    create.set_defaults(handler=run_create)


def run_create(args: argparse.Namespace) -> int:
    from cosync.errors import ApiError
    from cosync.services.apps import create_app

    try:
        app = create_app(args.name)
    except ApiError as error:
        raise CommandError(error.detail or error.error.message) from None
    if args.json:
        print(json.dumps(app, indent=2))
    else:
        print(f"appId     {app['appId']}")
        print(f"appToken  {app['appToken']}")
    return 0
