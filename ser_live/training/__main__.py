"""``python -m ser_live.training``: the ``ser-live-train`` command (:mod:`ser_live.training.command`)."""

import sys

from .command import main

sys.exit(main())
