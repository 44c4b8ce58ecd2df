"""`python -m cosync atlas ...`: MongoDB Atlas project access list commands.

`atlas allow-ip` puts the deployment's outbound IP (the NAT gateway address that the Bicep
templates output as AZURE_OUTBOUND_IP) on the Atlas project IP access list, so the database
can be closed to every other address.
"""

from __future__ import annotations

import argparse
import os

from cosync.atlas import ANYWHERE, DEFAULT_BASE_URL, AtlasClient, AtlasError, allow_address
from cosync.cli import CommandError

DEFAULT_COMMENT = "Cosync JWT Function App outbound IP"


def register(subparsers: argparse._SubParsersAction) -> None:
    atlas = subparsers.add_parser(
        "atlas",
        help="manage the MongoDB Atlas project IP access list",
        description="Manage the MongoDB Atlas project IP access list through the Atlas Administration API v2.",
    )
    commands = atlas.add_subparsers(dest="atlas_command", required=True, metavar="COMMAND")

    allow_ip = commands.add_parser(
        "allow-ip",
        help="add the deployment's outbound IP to the Atlas project access list",
        description=(
            "Add the deployment's outbound IP to the Atlas project IP access list, and with "
            "--remove-anywhere delete the 0.0.0.0/0 entry. Entries already in the wanted state "
            "are left alone, so the command can run after every provisioning. The API key comes "
            "from ATLAS_PUBLIC_KEY and ATLAS_PRIVATE_KEY and needs the Project Owner role; "
            f"ATLAS_API_BASE_URL overrides the API address ({DEFAULT_BASE_URL})."
        ),
    )
    allow_ip.add_argument(
        "--ip",
        help="IPv4 or IPv6 address (or CIDR block) to allow; default: $AZURE_OUTBOUND_IP, "
        "the outbound IP that `azd provision` stores in the azd environment",
    )
    allow_ip.add_argument(
        "--project-id",
        help="Atlas project (group) id, 24 hexadecimal digits; default: $ATLAS_PROJECT_ID",
    )
    allow_ip.add_argument(
        "--public-key",
        help="public key of the Atlas API key; default: $ATLAS_PUBLIC_KEY. The private key is "
        "read only from $ATLAS_PRIVATE_KEY so that it never appears in a process list",
    )
    allow_ip.add_argument(
        "--remove-anywhere",
        action="store_true",
        help=f"also delete the {ANYWHERE} entry (allow access from anywhere), after the IP is on the list",
    )
    allow_ip.add_argument(
        "--comment",
        default=DEFAULT_COMMENT,
        help=f"comment stored with a new entry (default: {DEFAULT_COMMENT!r})",
    )
    allow_ip.set_defaults(handler=run_allow_ip)


def run_allow_ip(args: argparse.Namespace) -> int:
    address = args.ip or _environment("AZURE_OUTBOUND_IP")
    if not address:
        raise CommandError(
            "missing outbound IP: pass --ip or set AZURE_OUTBOUND_IP "
            "(for example --ip \"$(azd env get-value AZURE_OUTBOUND_IP)\")"
        )
    project_id = args.project_id or _environment("ATLAS_PROJECT_ID")
    if not project_id:
        raise CommandError("missing Atlas project id: pass --project-id or set ATLAS_PROJECT_ID")
    public_key = args.public_key or _environment("ATLAS_PUBLIC_KEY")
    private_key = _environment("ATLAS_PRIVATE_KEY")
    if not public_key or not private_key:
        raise CommandError(
            "missing Atlas API key: set ATLAS_PUBLIC_KEY (or pass --public-key) and ATLAS_PRIVATE_KEY"
        )

    client = AtlasClient(public_key, private_key, _environment("ATLAS_API_BASE_URL") or DEFAULT_BASE_URL)
    try:
        changes = allow_address(client, project_id, address, args.comment, args.remove_anywhere)
    except ValueError as error:
        raise CommandError(f"invalid IP address {address!r}: {error}") from None
    except AtlasError as error:
        raise CommandError(str(error)) from None

    where = f"the access list of Atlas project {project_id}"
    for change in changes:
        if change.action == "added":
            print(f"added {change.cidr_block} to {where}")
        elif change.action == "removed":
            print(f"removed {change.cidr_block} from {where}")
        elif change.present:
            print(f"unchanged: {change.cidr_block} is already on {where}")
        else:
            print(f"unchanged: {change.cidr_block} is not on {where}")
    return 0


def _environment(name: str) -> str:
    return os.environ.get(name, "").strip()
