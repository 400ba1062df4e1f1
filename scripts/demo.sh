#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/platestream config validate examples/nuclei_qc.toml
.venv/bin/platestream config show examples/nuclei_qc.toml --step segment --function nuclei_mask
