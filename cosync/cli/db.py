"""`db ...`: take over a database written by the reference CosyncJWT server (`check`,
`migrate`), end its never-expiring access tokens (`revoke-access-tokens`) and switch back to it
(`rollback`).

Exit status: 0 when the database is ready (check), every index exists (migrate) or every value
was rewritten (rollback); 2 when something is listed that the command cannot resolve; 1 when
the command itself failed.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from cosync.cli import CommandError
from cosync.cli.output import print_json, run_service

EXIT_BLOCKERS = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    database = subparsers.add_parser("db", help="check, migrate or roll back a database written by CosyncJWT")
    commands = database.add_subparsers(dest="db_command", required=True, metavar="COMMAND")

    _command(commands, "check", run_check, "report apps, users, duplicates and legacy formats without writing"
             " anything; exit status 2 when migrate would leave an index uncreated or a key does not fit")
    _command(commands, "migrate", run_migrate, "resolve the duplicates that can be resolved without deleting a"
             " user, then create every index; exit status 2 when an index could not be created", dry_run=True)
    _command(commands, "rollback", run_rollback, "rewrite encrypted fields and TOTP secrets into the formats of"
             " CosyncJWT, to switch back to it; stop this server first", dry_run=True)
    revoke = _command(commands, "revoke-access-tokens", run_revoke, "revoke every access token issued so far,"
                      " including the never-expiring tokens of CosyncJWT; the users log in again")
    scope = revoke.add_mutually_exclusive_group(required=True)
    scope.add_argument("--app", metavar="APP_ID", help="only the users of this app")
    scope.add_argument("--all", action="store_true", help="the users of every app")


def _command(
    commands: argparse._SubParsersAction, name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
    dry_run: bool = False,
) -> argparse.ArgumentParser:
    """Add a sub-command with `--json`, and `--dry-run` when asked."""
    command = commands.add_parser(name, help=help_text)
    if dry_run:
        command.add_argument("--dry-run", action="store_true", help="write nothing; print what a run would change")
    command.add_argument("--json", action="store_true", help="print the result as JSON")
    command.set_defaults(handler=handler)
    return command


def _database() -> Any:
    # Not db.get_database(): that creates the indexes, and `check` must not write.
    from cosync import db
    from cosync.settings import get_settings

    return db.get_client()[get_settings().mongodb_database]


def run_check(args: argparse.Namespace) -> int:
    from cosync.services.migration import check

    report = run_service(lambda: check(_database()))
    if args.json:
        print_json(report)
    else:
        _print_report(report)
    return EXIT_BLOCKERS if report["blockers"] else 0


def run_migrate(args: argparse.Namespace) -> int:
    from cosync.services.migration import migrate

    result = run_service(lambda: migrate(_database(), dry_run=args.dry_run))
    if args.json:
        print_json(result)
    else:
        _print_migration(result)
    not_created = result["indexes"]["blocked"] if args.dry_run else result["indexes"]["notCreated"]
    return EXIT_BLOCKERS if not_created else 0


def run_rollback(args: argparse.Namespace) -> int:
    from cosync.services.rollback import rollback

    result = run_service(lambda: rollback(_database(), dry_run=args.dry_run))
    if args.json:
        print_json(result)
    else:
        verb = "would rewrite" if args.dry_run else "rewrote"
        print(f"{verb} {result['appFieldsRewritten']} app fields and {result['totpSecretsRewritten']} TOTP secrets")
        for item in result["notDecrypted"]:
            print(f"not decrypted, left as is: {item}")
        left = result["cannotRollBack"]
        print(f"users with Argon2id passwords (reset their password on CosyncJWT): {left['argon2idPasswords']}")
        print("codes stored as hashes (request them again): "
              + ", ".join(f"{name} {count}" for name, count in left["hashedCodes"].items()))
    return EXIT_BLOCKERS if result["notDecrypted"] else 0


def run_revoke(args: argparse.Namespace) -> int:
    from cosync.services.migration import revoke_access_tokens

    try:
        revoked = run_service(lambda: revoke_access_tokens(_database(), args.app))
    except LookupError as error:
        raise CommandError(f"{error}; list the apps with `python -m cosync apps list`") from None
    if args.json:
        print_json(revoked)
    else:
        for app_id, count in revoked.items():
            print(f"app {app_id}: access tokens of {count} users revoked")
    return 0


def _print_report(report: dict[str, Any]) -> None:
    apps, users, pending = report["apps"], report["users"], report["pending"]
    statuses = ", ".join(f"{status} {count}" for status, count in apps["byStatus"].items())
    print(f"apps: {apps['total']} ({statuses or 'none'})")
    print(f"users: {users['total']}")
    for app in users["perApp"]:
        print(f"  {app['appId']}  {app['users']:>8}  {app['name']}")
    print(f"pending: {pending['signups']} sign-ups, {pending['invites']} invites, {pending['resetPasswords']} reset codes")
    formats = report["legacyFormats"]
    print(f"bcrypt passwords: {formats['bcryptPasswords']['users']} users, {formats['bcryptPasswords']['signups']} sign-ups"
          " (become Argon2id at the next login)")
    print("AES-256-CTR fields: " + ", ".join(f"{name} {count}" for name, count in formats["ctrFields"].items()))
    print(f"TOTP secrets in clear: {formats['clearTotpSecrets']}")
    print("codes in clear: " + ", ".join(f"{name} {count}" for name, count in formats["clearCodes"].items()))
    print(f"app tokens without kid: {report['keys']['appTokensWithoutKid']}"
          " (access tokens and server secrets are not stored, so they cannot be counted)")
    handles = report["handles"]
    print(f"handles to normalise: {len(handles['renames'])}; kept (Apple, Google): {len(handles['keptSocial'])};"
          f" case-only duplicates: {len(handles['caseDuplicates'])}")
    for item in handles["caseDuplicates"]:
        print(f"  app {item['appId']}: {', '.join(item['handles'])}")
    _print_indexes(report["indexes"])
    for line in report["blockers"]:
        print(f"blocker: {line}")


def _print_indexes(indexes: dict[str, list[str]]) -> None:
    for state, labels in indexes.items():
        if labels:
            print(f"indexes {state}: {', '.join(labels)}")


def _print_migration(result: dict[str, Any]) -> None:
    verb = "would" if result["dryRun"] else "did"
    print(f"{verb} normalise {len(result['renamedHandles'])} handles")
    for item in result["renamedHandles"]:
        print(f"  app {item['appId']}: {item['handle']} -> {item['normalised']}")
    print(f"{verb} archive {len(result['archivedSignups'])} duplicate sign-ups to migrationarchive")
    _print_indexes(result["indexes"])
    for item in result["unresolved"]["duplicates"]:
        print(f"unresolved: {item['collection']} documents {', '.join(item['ids'])} share {item['key']}")
    for item in result["unresolved"]["caseDuplicates"]:
        print(f"unresolved: app {item['appId']} has handles differing only in case: {', '.join(item['handles'])}")
