"""`python -m cosync`: the operator command line and the local development server."""

import sys

from cosync.cli import main

if __name__ == "__main__":
    sys.exit(main())
