"""``python -m loadtests``: hand over to the command line in :mod:`loadtests.cli`."""

from __future__ import annotations

import sys

from loadtests.cli import main

if __name__ == "__main__":
    sys.exit(main())
