"""``python -m ser_live``: the same as the ``ser-live`` command."""

import sys

from .cli import main

sys.exit(main())
