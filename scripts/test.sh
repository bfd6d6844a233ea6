#!/usr/bin/env bash
# Installs what is missing, builds everything with warnings as errors, and
# runs every test with ctest. Extra arguments go to ctest, e.g.
#
#   bash scripts/test.sh                 # every test
#   bash scripts/test.sh -R mailbox      # only tests whose name matches
#   CTEST_PARALLEL_LEVEL=2 bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# nats-server: the node tests (tests/node) start a private one on loopback;
# openssl makes the throwaway certificates of the TLS test.
bash scripts/setup.sh nats-server openssl
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBW_SANITIZE= -DBW_WERROR=ON \
  -DBW_BUILD_TESTS=ON
cmake --build build -j "$jobs"

cd build
ctest --output-on-failure --no-tests=error --timeout 900 "$@"
