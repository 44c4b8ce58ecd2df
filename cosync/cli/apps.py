"""`apps ...`, `logs` and `stats`: manage apps from the command line through the same services
as the operator API."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cosync.cli import CommandError
from cosync.cli.output import parse_assignments, print_fields, print_json, print_table, run_service

APP_COLUMNS = ["appId", "name", "status", "signupFlow", "createdAt"]
LOG_COLUMNS = ["createdAt", "logType", "action", "status", "handle", "value"]


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page", default=None, help="page number, from 0 (default 0)")
    parser.add_argument("--limit", default=None, help="entries per page, 1 to 100 (default 25)")


def register(subparsers: argparse._SubParsersAction) -> None:
    apps = subparsers.add_parser("apps", help="list, show, create, change, reset and delete apps, and rotate their keys")
    commands = apps.add_subparsers(dest="apps_command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list apps, or search them by name")
    listing.add_argument("--search", metavar="TEXT", help="only apps whose name contains TEXT, ignoring case")
    listing.add_argument("--exact", action="store_true", help="with --search: the whole name, case-sensitive")
    _paging(listing)
    _json_flag(listing)
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="show one app, without its secrets")
    show.add_argument("app_id", metavar="APP_ID")
    _json_flag(show)
    show.set_defaults(handler=run_show)

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

    update = commands.add_parser(
        "update", help="change app fields, for example signupEnabled=false name='New name'",
        description="Change fields that the update route allows (see docs/operator.md); values are "
        "given as a form body would carry them: true/false, numbers, text, JSON for metaData.",
    )
    update.add_argument("app_id", metavar="APP_ID")
    update.add_argument("fields", nargs="+", metavar="FIELD=VALUE")
    _json_flag(update)
    update.set_defaults(handler=run_update)

    settings = commands.add_parser(
        "settings", help="show the app's settings, or change one named setting",
        description="Without SETTING, print the settings. With it, change that named setting, for "
        "example: settings APP_ID signupFlow signupFlow=link",
    )
    settings.add_argument("app_id", metavar="APP_ID")
    settings.add_argument("setting", nargs="?", metavar="SETTING")
    settings.add_argument("fields", nargs="*", metavar="FIELD=VALUE")
    _json_flag(settings)
    settings.set_defaults(handler=run_settings)

    reset = commands.add_parser("reset", help="delete the app's users, sign-ups, invites and resets; restore templates")
    reset.add_argument("app_id", metavar="APP_ID")
    reset.add_argument("--yes", action="store_true", help="confirm; without it nothing is deleted")
    reset.set_defaults(handler=run_reset)

    delete = commands.add_parser("delete", help="delete the app and all its data")
    delete.add_argument("app_id", metavar="APP_ID")
    delete.add_argument("--yes", action="store_true", help="confirm; without it nothing is deleted")
    delete.set_defaults(handler=run_delete)

    logs = subparsers.add_parser("logs", help="show an app's audit log, newest first")
    logs.add_argument("app_id", metavar="APP_ID")
    logs.add_argument("--action", help="comma-separated action names, such as login,signup")
    logs.add_argument("--status", choices=["success", "error"], help="only records with this status")
    logs.add_argument("--type", choices=["app", "user"], help="only operator (app) or end-user (user) records")
    logs.add_argument("--from", dest="from_date", metavar="TIME", help="ISO 8601 time, inclusive (UTC without zone)")
    logs.add_argument("--to", dest="to_date", metavar="TIME", help="ISO 8601 time, exclusive (UTC without zone)")
    _paging(logs)
    _json_flag(logs)
    logs.set_defaults(handler=run_logs)

    stats = subparsers.add_parser("stats", help="show an app's users, pending sign-ups and invites, and logins per day")
    stats.add_argument("app_id", metavar="APP_ID")
    stats.add_argument("--days", default=None, help="days of logins to count, 1 to 366 (default 30)")
    _json_flag(stats)
    stats.set_defaults(handler=run_stats)


def run_list(args: argparse.Namespace) -> int:
    from cosync.services import apps

    if args.search is None and not (args.page or args.limit):
        found = run_service(apps.list_apps)
    else:
        found = run_service(lambda: apps.search_apps(args.search, args.exact, args.page, args.limit))
    if args.json:
        print_json(found)
    elif found:
        print_table(found, APP_COLUMNS)
    else:
        print("no apps")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from cosync.services import apps

    app = run_service(lambda: apps.admin_view(apps.load_app(args.app_id)))
    if args.json:
        print_json(app)
    else:
        print_fields(app)
    return 0


def run_create(args: argparse.Namespace) -> int:
    from cosync.services.apps import create_app

    app = run_service(lambda: create_app(args.name))
    if args.json:
        print_json(app)
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


def run_update(args: argparse.Namespace) -> int:
    from cosync.services import app_settings

    body = {**parse_assignments(args.fields), "appId": args.app_id}
    app = run_service(lambda: app_settings.update_app(body))
    _print_changed(app, args.json, sorted(set(body) - {"appId"}))
    return 0


def run_settings(args: argparse.Namespace) -> int:
    from cosync.services import app_settings, apps

    if args.setting is None:
        if args.fields:
            raise CommandError("name the SETTING before its FIELD=VALUE arguments")
        app = run_service(lambda: apps.admin_view(apps.load_app(args.app_id)))
        settings = {name: app.get(name) for name in sorted(app) if name not in ("appToken", "appPublicKey")}
        if args.json:
            print_json(settings)
        else:
            print_fields(settings)
        return 0
    body = {**parse_assignments(args.fields), "appId": args.app_id, "setting": args.setting}
    app = run_service(lambda: app_settings.update_setting(body))
    _print_changed(app, args.json, sorted(set(body) - {"appId", "setting"}))
    return 0


def _print_changed(app: dict[str, Any], as_json: bool, fields: list[str]) -> None:
    if as_json:
        print_json(app)
        return
    # Credentials are stored encrypted and never shown; the other fields print their new value.
    print_fields({name: app.get(name, "(stored)") for name in fields})


def run_reset(args: argparse.Namespace) -> int:
    from cosync.services import app_data

    if not args.yes:
        raise CommandError(f"this deletes every user, sign-up and invite of app {args.app_id}; add --yes to confirm")
    run_service(lambda: app_data.reset_app(args.app_id))
    print(f"reset app {args.app_id}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from cosync.services import app_data

    if not args.yes:
        raise CommandError(f"this deletes app {args.app_id} and all its data; add --yes to confirm")
    run_service(lambda: app_data.delete_app(args.app_id))
    print(f"deleted app {args.app_id}")
    return 0


def run_logs(args: argparse.Namespace) -> int:
    from cosync.services import app_logs

    params = {
        "appId": args.app_id, "filterAction": args.action, "status": args.status, "type": args.type,
        "fromDate": args.from_date, "toDate": args.to_date, "offset": args.page, "limit": args.limit,
    }
    result = run_service(lambda: app_logs.list_logs(params))
    if args.json:
        print_json(result)
        return 0
    print_table(result["logs"], LOG_COLUMNS, max_cell_chars=60)
    print(f"{len(result['logs'])} of {result['totalLog']} records")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from cosync.services import app_logs

    result = run_service(lambda: app_logs.app_stats({"appId": args.app_id, "days": args.days, "limit": "1"}))
    if args.json:
        figures = {name: value for name, value in result.items() if name not in ("users", "invites", "signups")}
        print_json(figures)
        return 0
    print_fields({
        "users": result["totalUser"],
        "anonymous users": result["totalAnonUser"],
        "pending sign-ups": result["pendingSignups"],
        "pending invites": result["pendingInvites"],
    })
    print()
    print_table(result["loginsPerDay"], ["date", "logins"])
    return 0
