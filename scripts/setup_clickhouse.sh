#!/usr/bin/env bash
# Installs the local ClickHouse 26.9 server used by `b24ch demo` and the tests:
# a Python venv at .build/chvenv with the PyPI wheel chdb-core (which contains
# upstream clickhouse-local with real HTTP/TCP listeners; see
# docs/local-clickhouse.md). Idempotent: a fast no-op when already installed.
#
# Env: B24CH_CHVENV   venv location (default: <project>/.build/chvenv)
#      PYTHON         interpreter used to create the venv (default: python3)
set -euo pipefail

CHDB_VERSION="26.9.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${B24CH_CHVENV:-$ROOT/.build/chvenv}"
PY="${PYTHON:-python3}"

log() { echo "setup_clickhouse: $*" >&2; }

installed_version() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
print(m.version("chdb-core"))
PY
}

if [ "$(installed_version || true)" = "$CHDB_VERSION" ]; then
    log "chdb-core $CHDB_VERSION already installed in $VENV"
    echo "$VENV/bin/python"
    exit 0
fi

if ! command -v "$PY" >/dev/null 2>&1; then
    log "FAILED: $PY not found; install Python >= 3.9 (Debian: apt-get install python3 python3-venv)"
    exit 1
fi

# `python3 -m venv` needs ensurepip (Debian ships it in python3-venv).
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "python venv/ensurepip missing; installing python3-venv with apt-get"
    SUDO=""
    if [ "$(id -u)" != "0" ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo -n"
        else
            log "FAILED: not root and no sudo; run: apt-get install -y python3-venv"
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3-venv >/dev/null
fi

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv "$VENV"
fi

log "installing chdb-core==$CHDB_VERSION (about 180 MB) into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "chdb-core==$CHDB_VERSION"

got="$(installed_version || true)"
if [ "$got" != "$CHDB_VERSION" ]; then
    log "FAILED: chdb-core $CHDB_VERSION not importable from $VENV (found '${got}')"
    exit 1
fi
"$VENV/bin/python" -c 'import chdb._chdb' || {
    log "FAILED: 'import chdb._chdb' failed in $VENV"
    exit 1
}
log "chdb-core $CHDB_VERSION installed in $VENV"
echo "$VENV/bin/python"
