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

    rotate = commands.add_parser(
        "rotate-key",
        help="give an app a new RSA-2048 key pair for its user JWTs",
        description="Sign the app's user JWTs with a new key pair from now on. The replaced public key "
        "stays in the app's JWK Set until the user JWTs it signed have expired.",
    )
    rotate.add_argument("app_id", metavar="APP_ID", help="the app's appId")
    rotate.add_argument(
        "--revoke-previous",
        action="store_true",
        help="remove every earlier key from the JWK Set at once, so the JWTs they signed stop verifying "
        "(use it when a private key has leaked)",
    )
    rotate.add_argument("--json", action="store_true", help="print the result as JSON")
    rotate.set_defaults(handler=run_rotate_key)


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


def run_rotate_key(args: argparse.Namespace) -> int:
    from cosync.errors import ApiError
    from cosync.services.app_keys import rotate_app_key

    try:
        result = rotate_app_key(args.app_id, {"revokePrevious": args.revoke_previous})
    except ApiError as error:
        raise CommandError(error.detail or error.error.message) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"new key     {result['kid']}")
    for previous in result["previousKeys"]:
        print(f"previous    {previous['kid']} published until {previous['publishedUntil']}")
    return 0
