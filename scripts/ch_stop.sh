#!/usr/bin/env bash
# Stop the local ClickHouse server serving DATA_DIR: SIGTERM by PID, wait, SIGKILL after 15 s.
#   scripts/ch_stop.sh DATA_DIR
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 DATA_DIR" >&2
    exit 2
fi
PIDFILE="$1/.server/server.pid"
if [ ! -f "$PIDFILE" ]; then
    echo "no server running for $1 (no $PIDFILE)" >&2
    exit 0
fi
PID="$(tr -dc '0-9' < "$PIDFILE")"
if [ -z "$PID" ] || ! kill -0 "$PID" 2>/dev/null; then
    echo "server pid '${PID}' is not running; removing $PIDFILE" >&2
    rm -f "$PIDFILE"
    exit 0
fi
kill -TERM "$PID"
for _ in $(seq 1 150); do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "STOPPED pid=$PID"
        exit 0
    fi
    sleep 0.1
done
echo "server pid $PID did not stop within 15 s; sending SIGKILL" >&2
kill -KILL "$PID" 2>/dev/null || true
rm -f "$PIDFILE"
exit 0
