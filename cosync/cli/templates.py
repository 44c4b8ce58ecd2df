"""`templates ...` and `locales ...`: an app's e-mail templates and locales from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from cosync.cli import CommandError
from cosync.cli.output import print_fields, print_json, print_table, run_service


def register(subparsers: argparse._SubParsersAction) -> None:
    templates = subparsers.add_parser("templates", help="list and edit an app's e-mail templates")
    commands = templates.add_subparsers(dest="templates_command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list the templates of each enabled locale")
    listing.add_argument("app_id", metavar="APP_ID")
    listing.add_argument("--locale", help="only this locale, such as FR")
    listing.add_argument("--json", action="store_true", help="print the templates, bodies included, as JSON")
    listing.set_defaults(handler=run_list)

    change = commands.add_parser("set", help="change a template's subject, sender, body or link text")
    change.add_argument("app_id", metavar="APP_ID")
    change.add_argument("name", metavar="TEMPLATE", help="template name, such as signUp or invite")
    change.add_argument("--locale", default="EN", help="the template's locale (default EN)")
    change.add_argument("--subject", help="new subject; %%APP_NAME%% is replaced when sending")
    change.add_argument("--reply-to", help="sender address for this template; empty for the default")
    change.add_argument("--html-file", type=Path, metavar="FILE", help="file with the new HTML body (UTF-8)")
    change.add_argument("--link-text", help="text of the %%LINK%% anchor (signUpLink only)")
    change.add_argument("--json", action="store_true", help="print the changed template as JSON")
    change.set_defaults(handler=run_set)

    locales = subparsers.add_parser("locales", help="enable or disable locales of an app (EN always stays)")
    locale_commands = locales.add_subparsers(dest="locales_command", required=True, metavar="COMMAND")
    for name, summary in (("add", "enable locales and create their templates"),
                          ("remove", "disable locales and delete their templates")):
        command = locale_commands.add_parser(name, help=summary)
        command.add_argument("app_id", metavar="APP_ID")
        command.add_argument("codes", nargs="+", metavar="CODE", help="two-letter locale code, such as FR")
        command.add_argument("--json", action="store_true", help="print the result as JSON")
        command.set_defaults(handler=run_locales, locale_action=name)


def run_list(args: argparse.Namespace) -> int:
    from cosync.services import email_templates

    grouped = run_service(lambda: email_templates.list_templates(args.app_id))
    if args.locale:
        locale = args.locale.upper()
        if locale not in grouped:
            raise CommandError(f"locale {locale} is not enabled for app {args.app_id}")
        grouped = {locale: grouped[locale]}
    if args.json:
        print_json(grouped)
        return 0
    rows = [template for templates in grouped.values() for template in templates]
    print_table(rows, ["locale", "templateName", "subject", "replyTo", "updatedAt"])
    return 0


def run_set(args: argparse.Namespace) -> int:
    from cosync.services import email_templates

    body = {"appId": args.app_id, "templateName": args.name, "locale": args.locale}
    for field, value in (("subject", args.subject), ("replyTo", args.reply_to), ("localeLinkText", args.link_text)):
        if value is not None:
            body[field] = value
    if args.html_file is not None:
        try:
            body["htmlTemplate"] = args.html_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"could not read {args.html_file}: {error}") from None
    template = run_service(lambda: email_templates.update_template(body))
    if args.json:
        print_json(template)
    else:
        print_fields({name: template.get(name) for name in ("locale", "templateName", "subject", "replyTo", "updatedAt")})
    return 0


def run_locales(args: argparse.Namespace) -> int:
    from cosync.services import email_templates

    if args.locale_action == "add":
        result = run_service(lambda: email_templates.change_locales(args.app_id, add=args.codes))
    else:
        result = run_service(lambda: email_templates.change_locales(args.app_id, remove=args.codes))
    if args.json:
        print_json(result)
    else:
        print(f"locales of app {args.app_id}: {', '.join(result['locales'])}")
    return 0
