#!/usr/bin/env bash
# The Python peers of the head-to-head benchmark in .build/pyenv: fast-bitrix24 (via
# scripts/python_testenv.sh) and b24pysdk, the official SDK, pinned.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/python_testenv.sh
.build/pyenv/bin/python -m pip install --quiet "b24pysdk==1.3.2"
.build/pyenv/bin/python -c "import b24pysdk, fast_bitrix24; print('peers ok')"
