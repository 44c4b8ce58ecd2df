"""`users ...`: list, add, remove, suspend and activate an app's users, and reset a password.

The commands call the same services as the operator routes. Each sub-command is declared with
`_command`, which adds the APP_ID argument and `--json`; a new one needs its handler and that
one call.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import sys
from typing import Any, Callable

from cosync.cli import CommandError
from cosync.cli.output import print_json, print_table, service_errors

USER_COLUMNS = ["handle", "status", "userName", "locale", "createdAt", "lastLogin", "_id"]


def register(subparsers: argparse._SubParsersAction) -> None:
    users = subparsers.add_parser("users", help="manage an app's users")
    commands = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")

    listing = _command(commands, "list", "list the users of an app, sorted by handle", run_list)
    listing.add_argument("--search", metavar="TEXT", help="only users whose handle or user name contains TEXT")
    listing.add_argument("--hide-anonymous", action="store_true", help="leave out anonymous users")
    listing.add_argument("--page", type=int, default=0, help="page number, from 0 (default 0)")
    listing.add_argument("--limit", type=int, default=25, help="users per page, 1 to 100 (default 25)")

    add = _command(commands, "add", "create an active user with a password", run_add, with_handle=True)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of standard input"
    )
    add.add_argument("--locale", help="the user's locale, one the app enables (default EN)")
    add.add_argument("--metadata", metavar="JSON", help="the user's metadata as a JSON object")

    _command(commands, "remove", "delete a user and its sign-up, invite and reset records", run_remove, with_handle=True)
    _command(commands, "suspend", "suspend a user and revoke its access tokens", run_suspend, with_handle=True)
    _command(commands, "activate", "allow a suspended user to log in again", run_activate, with_handle=True)

    reset = _command(
        commands,
        "reset-password",
        "e-mail the user a reset code (the current password stops working), or set a given password;"
        " either way the user's access tokens are revoked",
        run_reset_password,
        with_handle=True,
    )
    reset.add_argument(
        "--password-md5",
        metavar="HEX",
        help="set this password: the 32-character MD5 hex of the new password, as the SDKs send it",
    )


def _command(
    commands: argparse._SubParsersAction,
    name: str,
    help_text: str,
    handler: Callable[[argparse.Namespace], int],
    with_handle: bool = False,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.add_argument("app_id", metavar="APP_ID", help="the app's appId")
    if with_handle:
        parser.add_argument("handle", metavar="HANDLE", help="the user's handle (e-mail address)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON for scripts")
    parser.set_defaults(handler=handler)
    return parser


def run_list(args: argparse.Namespace) -> int:
    from cosync.services.operator_users import search_users

    params = {"appId": args.app_id, "value": args.search, "offset": str(args.page), "limit": str(args.limit)}
    if args.hide_anonymous:
        params["hideAnonUser"] = "true"
    with service_errors():
        page = search_users(params)
    if args.json:
        print_json({"total": page.total, "page": args.page, "limit": args.limit, "users": page.items})
        return 0
    print_table(page.items, USER_COLUMNS)
    first = args.page * args.limit
    shown = f"{first + 1}-{first + len(page.items)}" if page.items else "none"
    print(f"\n{shown} of {page.total} users")
    return 0


def run_add(args: argparse.Namespace) -> int:
    from cosync.services.operator_users import add_user

    body: dict[str, Any] = {"appId": args.app_id, "handle": args.handle, "password": _password_digest(args)}
    if args.locale:
        body["locale"] = args.locale
    if args.metadata:
        body["metaData"] = args.metadata
    with service_errors():
        user = add_user(body)
    _report(args, user, f"added user {user['handle']} ({user['_id']})")
    return 0


def _password_digest(args: argparse.Namespace) -> str:
    """Return the MD5 hex of the password, the form in which every Cosync SDK sends it."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise CommandError("the two passwords differ")
    else:
        raise CommandError("standard input is not a terminal; pass the password with --password-stdin")
    if not password:
        raise CommandError("the password is empty")
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def run_remove(args: argparse.Namespace) -> int:
    from cosync.services.operator_users import remove_user

    with service_errors():
        user = remove_user({"appId": args.app_id, "handle": args.handle})
    _report(args, user, f"removed user {user['handle']}")
    return 0


def run_suspend(args: argparse.Namespace) -> int:
    return _set_status(args, "suspend", "suspended user {handle}; its access tokens no longer work")


def run_activate(args: argparse.Namespace) -> int:
    return _set_status(args, "active", "activated user {handle}")


def _set_status(args: argparse.Namespace, status: str, message: str) -> int:
    from cosync.services.operator_users import set_user_status

    with service_errors():
        set_user_status({"appId": args.app_id, "handle": args.handle, "status": status})
    _report(args, {"handle": args.handle, "status": status}, message.format(handle=args.handle))
    return 0


def run_reset_password(args: argparse.Namespace) -> int:
    from cosync.services.password import reset_user_password

    body = {"appId": args.app_id, "handle": args.handle}
    if args.password_md5 is not None:
        body["hashValue"] = args.password_md5
    with service_errors():
        reset_user_password(body)
    handle = args.handle.strip().lower()
    if args.password_md5 is None:
        message = f"e-mailed a reset code to {handle}; the old password no longer works"
    else:
        message = f"set the password of {handle}"
    _report(args, {"handle": handle, "method": "password" if args.password_md5 else "code"}, message)
    return 0


def _report(args: argparse.Namespace, value: dict[str, Any], message: str) -> None:
    if args.json:
        print_json(value)
    else:
        print(message)
