"""``python -m jitune``: the same as the ``jitune`` command."""

import sys

from .cli import main

sys.exit(main())
