"""`invites ...`: invite people to an app, resend or withdraw invitations, as the operator.

The commands call the same services as the `/api/app/...Invite` routes.
"""

from __future__ import annotations

import argparse
import json

from cosync.cli import CommandError
from cosync.cli.output import print_json, print_table, run_service


def register(subparsers: argparse._SubParsersAction) -> None:
    invites = subparsers.add_parser("invites", help="manage invitations to an app")
    commands = invites.add_subparsers(dest="invites_command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="e-mail an invitation code to each address")
    create.add_argument("app_id", metavar="APP_ID", help="the app to invite people to")
    create.add_argument("emails", metavar="EMAIL", nargs="+", help="addresses to invite (commas also separate them)")
    create.add_argument("--locale", help="locale of the invitation mail template (default EN)")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    create.set_defaults(handler=run_create)

    resend = commands.add_parser("resend", help="e-mail a new code for a pending invitation; the old code stops working")
    resend.add_argument("app_id", metavar="APP_ID")
    resend.add_argument("email", metavar="EMAIL")
    resend.add_argument("--json", action="store_true", help="print the result as JSON")
    resend.set_defaults(handler=run_resend)

    remove = commands.add_parser("remove", help="delete every invitation of an address")
    remove.add_argument("app_id", metavar="APP_ID")
    remove.add_argument("email", metavar="EMAIL")
    remove.add_argument("--json", action="store_true", help="print the removed invitation as JSON")
    remove.set_defaults(handler=run_remove)


def run_create(args: argparse.Namespace) -> int:
    from cosync.services.invites import create_app_invites

    result = run_service(lambda: create_app_invites(args.app_id, args.emails, args.locale))
    if args.json:
        print_json(result)
    else:
        rows = [{"EMAIL": item["handle"], "RESULT": "invited", "EXPIRES": item["expiresAt"]} for item in result["invites"]]
        rows += [{"EMAIL": address, "RESULT": "skipped: has an account or a live invitation"} for address in result["exists"]]
        rows += [{"EMAIL": address, "RESULT": "failed: mail not sent"} for address in result["failed"]]
        print_table(rows, ["EMAIL", "RESULT", "EXPIRES"])
    if result["failed"]:
        raise CommandError(f"invitation mail not sent to {', '.join(result['failed'])}")
    return 0


def run_resend(args: argparse.Namespace) -> int:
    from cosync.services.invites import resend_app_invite

    run_service(lambda: resend_app_invite(args.app_id, args.email))
    print(json.dumps({"resent": args.email.strip().lower()}) if args.json else f"sent a new code to {args.email.strip().lower()}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from cosync.services.invites import remove_app_invite

    removed = run_service(lambda: remove_app_invite(args.app_id, args.email))
    if args.json:
        print_json(removed)
    else:
        row = {"EMAIL": removed["handle"], "STATUS": removed.get("status"), "SENT BY": removed.get("senderHandle"),
               "UPDATED": removed.get("updatedAt")}
        print_table([row], list(row))
    return 0
