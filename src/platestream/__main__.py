"""``python -m platestream`` is the ``platestream`` command."""

import sys

from platestream.cli import main

sys.exit(main())
