"""`server-key ...`: replace the server key with an overlap, then re-sign the stored app tokens.

The server key signs the server secret, app tokens and access tokens. After `server-key rotate`
the previous key still verifies the tokens it signed until the chosen date. `server-key
reissue-app-tokens` then gives every app a token signed by the new key.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

from cosync.cli import CommandError

DEFAULT_OVERLAP_DAYS = 90


def register(subparsers: argparse._SubParsersAction) -> None:
    server_key = subparsers.add_parser("server-key", help="rotate the server key that signs app and access tokens")
    commands = server_key.add_subparsers(dest="server_key_command", required=True, metavar="COMMAND")

    rotate = commands.add_parser(
        "rotate",
        help="create a new server key; the current one keeps verifying its tokens until a date",
        description="Create a new RSA-3072 server key, encrypted with the current passphrase. The current "
        "key becomes server-previous-public-key and verifies the tokens it signed until "
        "server-previous-key-valid-until. Without KEY_VAULT_URL the local secret store is updated in "
        "place; with it, pass --for-key-vault to get files and the `az` commands that store them.",
    )
    rotate.add_argument(
        "--valid-until",
        metavar="DATE",
        help="end of the overlap, ISO 8601 such as 2026-03-01 or 2026-03-01T12:00:00Z "
        f"(default: {DEFAULT_OVERLAP_DAYS} days from now)",
    )
    rotate.add_argument(
        "--for-key-vault",
        metavar="DIRECTORY",
        type=Path,
        help="write the new secrets as files into DIRECTORY and print the `az keyvault secret set` commands",
    )
    rotate.add_argument("--vault-name", default="<your-vault-name>", help="vault name used in the printed commands")
    rotate.add_argument(
        "--replace-previous",
        action="store_true",
        help="rotate even though an earlier previous key is still within its overlap; its tokens stop verifying",
    )
    rotate.set_defaults(handler=run_rotate)

    reissue = commands.add_parser(
        "reissue-app-tokens",
        help="sign every stored app token and app secret with the current server key",
    )
    reissue.set_defaults(handler=run_reissue_app_tokens)


def run_rotate(args: argparse.Namespace) -> int:
    from cosync import secrets
    from cosync.settings import get_settings

    valid_until = _valid_until(args.valid_until)
    current = secrets.get_secrets()
    previous_until = current.server_previous_key_valid_until
    now = datetime.datetime.now(datetime.timezone.utc)
    if previous_until is not None and previous_until > now and not args.replace_previous:
        raise CommandError(
            f"the previous server key still verifies its tokens until {previous_until.isoformat()}; "
            "rotate after that date, or pass --replace-previous to end its overlap now"
        )
    values = secrets.rotated_server_secrets(current, valid_until)

    if args.for_key_vault:
        return _write_for_key_vault(args.for_key_vault, args.vault_name, values)
    settings = get_settings()
    if settings.key_vault_url:
        raise CommandError(f"secrets come from Key Vault {settings.key_vault_url}; pass --for-key-vault DIRECTORY")
    # Written in this order, a server that reloads between two files still verifies every token.
    secrets.write_secret_files(settings.local_secrets_dir, values)
    print(f"rotated the server key in {settings.local_secrets_dir}/; the previous key verifies its tokens "
          f"until {values[secrets.SERVER_PREVIOUS_KEY_VALID_UNTIL]}")
    print("next: python -m cosync server-key reissue-app-tokens")
    return 0


def _valid_until(text: str | None) -> datetime.datetime:
    from cosync.secrets import parse_valid_until

    now = datetime.datetime.now(datetime.timezone.utc)
    if text is None:
        return now + datetime.timedelta(days=DEFAULT_OVERLAP_DAYS)
    try:
        moment = parse_valid_until(text)
    except ValueError as error:
        raise CommandError(f"invalid --valid-until: {error}") from None
    if moment <= now:
        raise CommandError(f"invalid --valid-until: {text} is not in the future")
    return moment


def _write_for_key_vault(directory: Path, vault_name: str, values: dict[str, str]) -> int:
    from cosync import secrets

    if directory.exists() and any(directory.iterdir()):
        raise CommandError(f"{directory} is not empty; choose a new directory")
    secrets.write_secret_files(directory, values)
    print(f"Wrote {', '.join(values)} to {directory}/ (mode 0600). Store them in this order:\n")
    for name in values:
        print(f"  az keyvault secret set --vault-name {vault_name} --name {name} --file {directory / name}")
    cache_seconds = os.environ.get("SECRETS_CACHE_SECONDS") or "300"
    print(
        f"\nWithin SECRETS_CACHE_SECONDS ({cache_seconds} s) every worker signs with the new key. "
        "Then run `python -m cosync server-key reissue-app-tokens` and delete "
        f"{directory}/."
    )
    return 0


def run_reissue_app_tokens(args: argparse.Namespace) -> int:
    from cosync.services.app_keys import reissue_app_tokens

    changed = reissue_app_tokens()
    for app_id in changed:
        print(f"reissued the app token of {app_id}")
    print(f"{len(changed)} app tokens reissued; clients need the new appToken before the overlap ends")
    return 0
