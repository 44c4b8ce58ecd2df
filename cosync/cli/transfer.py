"""`export` and `import`: move an app between servers as a file (see docs/export-format.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cosync.cli import CommandError
from cosync.cli.output import print_json, service_errors

SENSITIVE_NOTE = "the file holds the app's keys, credentials and password hashes: keep it as safe as the database"


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export", help="write an app with its users, templates and secrets to a JSON file"
    )
    export.add_argument("app_id", metavar="APP_ID", help="the app's appId")
    export.add_argument("file", metavar="FILE", help="the file to write (mode 0600), or - for standard output")
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.set_defaults(handler=run_export)

    imported = subparsers.add_parser(
        "import", help="create an app from an export file or a CosyncJWT export ZIP"
    )
    imported.add_argument("file", metavar="FILE", type=Path, help="the export file (.json) or CosyncJWT ZIP")
    imported.add_argument("--overwrite", action="store_true", help="replace the app with the same appId")
    imported.add_argument("--name", help="store the app under this name instead of the one in the file")
    imported.add_argument("--json", action="store_true", help="print the imported app as JSON for scripts")
    imported.set_defaults(handler=run_import)


def run_export(args: argparse.Namespace) -> int:
    from cosync.services.transfer import export_app

    with service_errors():
        exported = export_app(args.app_id)
    if args.file == "-":
        sys.stdout.buffer.write(exported.content)
        sys.stdout.buffer.flush()
    else:
        _write_private_file(Path(args.file), exported.content, args.force)
        print(f"exported app {args.app_id} to {args.file}")
    print(f"note: {SENSITIVE_NOTE}", file=sys.stderr)
    return 0


def _write_private_file(path: Path, content: bytes, replace: bool) -> None:
    """Write `content` to a new file readable by its owner only."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise CommandError(f"{path} exists; pass --force to replace it") from None
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "wb") as output:
        os.fchmod(output.fileno(), 0o600)
        output.write(content)


def run_import(args: argparse.Namespace) -> int:
    from cosync.services.transfer import Upload, import_upload

    try:
        content = args.file.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {args.file}: {error.strerror}") from None
    with service_errors():
        result = import_upload(Upload(content=content, app_name=args.name, overwrite=args.overwrite))
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(result)
        return 0
    counts = ", ".join(f"{count} {section}" for section, count in result["imported"].items())
    print(f"imported app {result['name']!r}: {counts}")
    print(f"appId     {result['appId']}")
    print(f"appToken  {result['appToken']}")
    return 0
