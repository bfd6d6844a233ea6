#!/usr/bin/env bash
# Installs what is missing, builds bulwark (Release) and runs the main demo.
#
#   bash scripts/demo.sh            # the full tour
#   bash scripts/demo.sh --quiet    # only the summary line
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

# The same build/ as scripts/test.sh, so the two share one build.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBW_SANITIZE=
cmake --build build --target example_demo -j "$jobs"

echo
exec ./build/examples/demo "$@"
