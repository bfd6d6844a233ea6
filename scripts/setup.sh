#!/usr/bin/env bash
# Installs what bulwark needs to build and test, from Debian's packages, and
# only what is missing. Safe to run again: with everything present it does
# nothing (no apt-get update, no root needed).
#
#   bash scripts/setup.sh
#
# Extra packages can be named on the command line (e.g. valgrind clang).
set -euo pipefail

PACKAGES=(build-essential cmake pkg-config libck-dev libcmocka-dev libmicrohttpd-dev libnats-dev
  libcurl4-openssl-dev libjansson-dev "$@")

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg -s also succeeds for a removed package whose config files remain:
  # check the status line, not just the exit code.
  status=$(dpkg -s "$p" 2>/dev/null | sed -n 's/^Status: //p' || true)
  if [ "$status" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present (${PACKAGES[*]})"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup: not root and no sudo: install these yourself: ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
