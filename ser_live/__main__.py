"""``python -m ser_live``: the same as the ``ser-live`` command."""

import sys

from .cli.main import main

if __name__ == "__main__":  # spawned worker processes import this module again; they must not run the command
    sys.exit(main())
