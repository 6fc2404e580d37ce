#!/usr/bin/env bash
# Installs what the status-page browser test needs: Debian's chromium and playwright-core
# (driving that chromium; no browser download). Idempotent; fast when already installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
    echo "installing chromium (apt)…"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
NODE_DIR="$ROOT/.build/node"
if [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
    mkdir -p "$NODE_DIR"
    (cd "$NODE_DIR" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent playwright-core@1)
fi
echo "browser test deps: $(command -v chromium), $NODE_DIR/node_modules/playwright-core"
