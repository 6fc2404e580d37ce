#!/usr/bin/env bash
# Start a local ClickHouse 26.9 server in the background (for humans; tests start their own).
#   scripts/ch_start.sh DATA_DIR [launcher options: --http-port 8123 --tcp-port 9000 --database app ...]
# Prints the READY line (http=HOST:PORT tcp=HOST:PORT pid=N). Output goes to DATA_DIR/.server/server.log.
# Stop with scripts/ch_stop.sh DATA_DIR. Env CHDB_PY / B24CH_CHDB_PYTHON pick the interpreter.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: $0 DATA_DIR [chdb_server.py options]" >&2
    exit 2
fi
DATA="$1"; shift
PY="${CHDB_PY:-${B24CH_CHDB_PYTHON:-$ROOT/.build/chvenv/bin/python}}"
if [ ! -x "$PY" ]; then
    echo "FAILED: $PY not found; run scripts/setup_clickhouse.sh first" >&2
    exit 1
fi
mkdir -p "$DATA/.server"
if [ -f "$DATA/.server/server.pid" ]; then
    OLD="$(tr -dc '0-9' < "$DATA/.server/server.pid")"
    if [ -n "$OLD" ] && kill -0 "$OLD" 2>/dev/null; then
        echo "FAILED: $DATA is already served by pid $OLD; stop it with scripts/ch_stop.sh $DATA" >&2
        exit 1
    fi
fi
LOG="$DATA/.server/server.log"
: > "$LOG"
nohup "$PY" "$ROOT/scripts/chdb_server.py" --data "$DATA" "$@" >"$LOG" 2>&1 </dev/null &
PID=$!
for _ in $(seq 1 600); do
    if grep -q '^READY' "$LOG"; then
        grep '^READY' "$LOG"
        exit 0
    fi
    if grep -q '^FAILED' "$LOG" || ! kill -0 "$PID" 2>/dev/null; then
        cat "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done
echo "FAILED: no READY within 60 s; log: $LOG" >&2
kill -TERM "$PID" 2>/dev/null || true
exit 1
