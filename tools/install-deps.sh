#!/bin/bash
# Install the system packages vac needs to build, test and run (idempotent; root).
set -euo pipefail
if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  PKGS="python3-venv python3-dev gcc pkg-config libvirt-dev"
  missing=""
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
elif command -v dnf >/dev/null 2>&1; then
  dnf install -y -q python3-devel gcc pkgconf-pkg-config libvirt-devel
fi
