#!/usr/bin/env bash
# Issue 16's head-to-head: a full load of DEALS deals (all fields + user fields) by b24ch
# (`crm_deal` as serve/sync load it), fast_bitrix24 `get_all` and b24pysdk `call_list_fast`
# (what `as_list_fast` runs), under every billing variant of the demo portal, each variant on
# its own portal (the variants run at once; the figures are the portal's bills, which do not
# depend on CPU). Output: target/bench-issue16/<deals>-<variant>.txt
#   scripts/bench/issue16.sh 20000 100000        # sizes; default 20000 100000
# PYTHON (default .build/pyenv/bin/python) must import fast_bitrix24 and b24pysdk
# (scripts/bench/setup_peers.sh); PROFILE=release|debug (default release).
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILE="${PROFILE:-release}"
PYTHON="${PYTHON:-.build/pyenv/bin/python}"
SCALE="${SCALE:-100}"
if [ "$PROFILE" = release ]; then
    cargo build --release --example bench_listing
else
    cargo build --example bench_listing
fi
out=target/bench-issue16
mkdir -p "$out"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(20000 100000)
for deals in "${sizes[@]}"; do
    for variant in per-method whole-batch-a whole-batch-b whole-batch-c both; do
        "./target/$PROFILE/examples/bench_listing" --deals "$deals" --time-scale "$SCALE" \
            --billing "$variant" --run pipeline,fast,pysdk --python "$PYTHON" \
            --peer-timeout-secs 900 >"$out/$deals-$variant.txt" 2>&1 &
    done
    wait
done
for f in "$out"/*.txt; do echo "== $f"; grep -v "^{" "$f" | tail -6 || true; done
