#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: `platestream demo` writes a synthetic
# 24-well plate, runs a 3-step pipeline over it with one worker per core, and streams every
# step live into a persistent napari viewer. With a display the viewer stays open; without
# one it runs on a private Xvfb and the demo writes a snapshot PNG. Extra arguments go to
# `platestream demo` (see `platestream demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/platestream demo "$@"
