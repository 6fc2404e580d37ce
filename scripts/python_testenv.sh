#!/usr/bin/env bash
# Create the Python venv used by tests/demo_portal_python.rs: .build/pyenv with fast-bitrix24
# (a real third-party Bitrix24 client from PyPI) installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV=.build/pyenv
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "fast-bitrix24==1.8.14"
"$VENV/bin/python" -c "import fast_bitrix24; print('fast_bitrix24', fast_bitrix24.__version__ if hasattr(fast_bitrix24, '__version__') else 'ok')"
