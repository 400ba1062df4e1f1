"""``python -m platestream.bench``: every benchmark, as ``platestream bench`` runs them."""

import sys

from platestream.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
