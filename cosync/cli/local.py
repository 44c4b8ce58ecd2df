"""`init`, `server-secret` and `serve`: set-up and the local development server."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from cosync.cli import CommandError

log = logging.getLogger("cosync.cli")


def register(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser("init", help="create the server key, its passphrase and the encryption key")
    init.add_argument("--if-missing", action="store_true", help="do nothing when the local secrets exist")
    init.add_argument(
        "--for-key-vault",
        metavar="DIRECTORY",
        type=Path,
        help="write new secrets as files into DIRECTORY and print the `az keyvault secret set` commands "
        "that store them, instead of creating the local development store",
    )
    init.add_argument("--vault-name", default="<your-vault-name>", help="vault name used in the printed commands")
    init.set_defaults(handler=run_init)

    secret = subparsers.add_parser("server-secret", help="print a server-secret token for the operator API")
    secret.set_defaults(handler=run_server_secret)

    serve = subparsers.add_parser("serve", help="serve the function app over HTTP for development")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7071, help="port to listen on (default 7071)")
    serve.add_argument(
        "--local-database",
        action="store_true",
        help="start a FerretDB with its data in .data/ferretdb unless MONGODB_URI is set",
    )
    serve.set_defaults(handler=run_serve)

    database = subparsers.add_parser(
        "database", help="run only the local FerretDB, for `func start` (stop it with Ctrl-C)"
    )
    database.add_argument("--port", type=int, default=27017, help="port on 127.0.0.1 (default 27017)")
    database.set_defaults(handler=run_database)


def run_init(args: argparse.Namespace) -> int:
    from cosync import secrets

    if args.for_key_vault:
        return _init_for_key_vault(args.for_key_vault, args.vault_name)
    directory = Path(os.environ.get("LOCAL_SECRETS_DIR") or ".secrets")
    try:
        created = secrets.create_local_secrets(directory)
    except secrets.MissingSecretError as error:
        raise CommandError(str(error)) from None
    if created:
        print(f"created local development secrets in {directory}/")
    elif args.if_missing:
        print(f"local development secrets already exist in {directory}/")
    else:
        raise CommandError(f"{directory}/ already contains secrets; remove it first to create new ones")
    return 0


def _init_for_key_vault(directory: Path, vault_name: str) -> int:
    from cosync import secrets

    if directory.exists() and any(directory.iterdir()):
        raise CommandError(f"{directory} is not empty; choose a new directory")
    values = secrets.generate_server_secrets()
    secrets.write_secret_files(directory, values)
    print(f"Wrote {', '.join(values)} to {directory}/ (mode 0600). Store them in Key Vault with:\n")
    for name in values:
        print(f"  az keyvault secret set --vault-name {vault_name} --name {name} --file {directory / name}")
    print(f"\nThen delete {directory}/, or keep it only in a place as safe as the vault.")
    return 0


def run_server_secret(args: argparse.Namespace) -> int:
    from cosync.tokens import issue_server_secret

    print(issue_server_secret())
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from cosync import localdb

    # Stop cleanly on SIGTERM as on Ctrl-C, so that the FerretDB started here is stopped too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # The default base URL names port 7071, so the JWT issuer and JWK Set address need the served port.
    listen_host = "127.0.0.1" if args.host in ("", "0.0.0.0", "::") else args.host
    if ":" in listen_host:
        listen_host = f"[{listen_host}]"
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{listen_host}:{args.port}")
    database = None
    if args.local_database and not os.environ.get("MONGODB_URI"):
        try:
            database = localdb.start(Path(".data/ferretdb"), port=27017 if _port_free(27017) else None)
        except localdb.LocalDatabaseError as error:
            raise CommandError(str(error)) from None
        os.environ["MONGODB_URI"] = database.uri
        log.info("started FerretDB at %s (data in .data/ferretdb)", database.uri)
    try:
        from cosync import devserver
        from cosync.secrets import get_secrets
        from function_app import app

        get_secrets()  # a missing secret stops start-up here, with its name and store

        devserver.serve(app, args.host, args.port)
    finally:
        if database is not None:
            database.stop()
    return 0


def run_database(args: argparse.Namespace) -> int:
    import time

    from cosync import localdb

    if not _port_free(args.port):
        raise CommandError(f"port {args.port} on 127.0.0.1 is in use; choose another with --port")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        database = localdb.start(Path(".data/ferretdb"), port=args.port)
    except localdb.LocalDatabaseError as error:
        raise CommandError(str(error)) from None
    print(f"FerretDB is serving {database.uri} with its data in .data/ferretdb; stop it with Ctrl-C")
    try:
        while database.process.poll() is None:
            time.sleep(1)
    finally:
        database.stop()
    return 0


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
