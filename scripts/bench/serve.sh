#!/usr/bin/env bash
# End to end into ClickHouse through url() (one full crm_deal load of 100k deals), then 8
# entities refreshed alone and all at once (SYSTEM REFRESH VIEW). Needs the local ClickHouse
# (scripts/setup_clickhouse.sh). Extra arguments go to the bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --example bench_serve
exec ./target/release/examples/bench_serve "$@"
