#!/usr/bin/env bash
# Head-to-head full listing under cloud limits (b24ch vs fast_bitrix24 get_all vs b24pysdk
# call_list_fast) plus incremental and reconcile cost, on one in-process demo portal.
# Extra arguments go to the bench, e.g. `--time-scale 10 --run item,pysdk`.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .build/pyenv/bin/python ] || scripts/bench/setup_peers.sh
cargo build --release --example bench_listing
exec ./target/release/examples/bench_listing --deals 100000 "$@"
