#!/usr/bin/env bash
# Installs what the status-page browser test needs: Debian's chromium (+ an emoji font, portal
# titles often carry emoji) and playwright-core driving that chromium (no browser download).
# Idempotent; fast when already installed. Exits non-zero, saying what is missing, when it
# cannot install them: the browser tests then fail in scripts/test.sh rather than skip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
fail() { echo "setup_browser.sh: $*; the status-page browser tests cannot run" >&2; exit 1; }

apt_install() {
    [ -n "${APT_UPDATED:-}" ] || { $SUDO apt-get update -qq || fail "apt-get update failed"; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null || fail "apt-get install $* failed"
}
if [ ! -x /usr/bin/chromium ]; then
    echo "installing chromium (apt)…"
    apt_install chromium
fi
if ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; then
    apt_install fonts-noto-color-emoji
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
NODE_DIR="$ROOT/.build/node"
if [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
    mkdir -p "$NODE_DIR"
    (cd "$NODE_DIR" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent playwright-core@1) \
        || fail "npm install playwright-core failed"
fi
/usr/bin/chromium --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1 \
    || fail "/usr/bin/chromium does not start headless"
(cd "$NODE_DIR" && node -e "require('playwright-core')") || fail "playwright-core does not load"
echo "browser test deps: /usr/bin/chromium, $NODE_DIR/node_modules/playwright-core"
