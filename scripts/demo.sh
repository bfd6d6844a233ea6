#!/usr/bin/env bash
# Installs what is missing, builds bulwark (Release) and runs the main demo,
# examples/llm_gateway: agents answering prompts by calling a language model
# over HTTP, behind a breaker, a bulkhead, retry and a rate limiter, under a
# supervision tree; the live page is at http://127.0.0.1:8080/. The gateway
# starts examples/model_server (built here too) as its child process, with
# the demo's faults, and stops it when it ends.
#
#   bash scripts/demo.sh                  # about 20 s, with an outage in the middle
#   bash scripts/demo.sh --duration 60    # longer; --help lists the fault flags
#   bash scripts/demo.sh --quiet          # only the summary line
#   OPENAI_API_KEY=... bash scripts/demo.sh --url https://api.openai.com/v1 --model gpt-4o-mini
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

# The same build/ as scripts/test.sh, so the two share one build.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBW_SANITIZE=
cmake --build build --target example_llm_gateway model_server -j "$jobs"

echo
exec ./build/examples/llm_gateway "$@"
