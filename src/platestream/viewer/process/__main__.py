"""``python -m platestream.viewer.process``: run a viewer (see ``_app``)."""

import sys

from ._app import main

sys.exit(main())
