#!/usr/bin/env bash
# Set up (scripts/setup.sh test) and run every check: ruff, mypy, then the tests, with a
# virtual X server so napari has a display and OpenGL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/ruff check src tests
.venv/bin/mypy
xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest "$@"
