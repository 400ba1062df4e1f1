#!/usr/bin/env bash
# Build the documentation site (docs/ and the API reference generated from the docstrings)
# into site/. Usage: scripts/docs.sh [serve]   ("serve" previews it at http://127.0.0.1:8000)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
if [ "${1:-}" = "serve" ]; then
    exec .venv/bin/mkdocs serve --dev-addr 127.0.0.1:8000
fi
.venv/bin/mkdocs build --strict
echo "documentation in site/index.html"
