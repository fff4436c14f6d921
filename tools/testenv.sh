#!/bin/bash
# Real test environment (placeholder until the hypervisor issue fills it in).
set -euo pipefail
case "${1:-}" in
  install|start|stop|status) exit 0 ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
