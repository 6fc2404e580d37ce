#!/usr/bin/env bash
# THE main job on the embedded default (README): a demo Bitrix24 portal and a local ClickHouse
# 26.9, b24ch serve + apply, and ClickHouse filling its tables through refreshable views.
#   scripts/demo.sh [b24ch demo options, e.g. --deals 5000 --exit-after-load]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export B24CH_HOME="$ROOT"
scripts/setup_clickhouse.sh
cargo build --release --quiet
exec "${CARGO_TARGET_DIR:-target}/release/b24ch" demo "$@"
