"""`python -m cosync atlas ...`: MongoDB Atlas access-list commands (not written yet)."""

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    return None
