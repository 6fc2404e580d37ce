"""fast_bitrix24 `get_all('crm.deal.list', {'select': ['*', 'UF_*']})` against the demo portal.

Usage: peer_fast_bitrix24.py WEBHOOK_URL TIME_SCALE [METHOD]
Prints one JSON line: rows, unique ids, wall seconds, error (if the client gave up).
The client runs with its defaults (pool 50, 2 req/s, operating_time_limit 480 s per 10 min,
respect_velocity_policy on), on the portal's clock (scaled_clock.py).
"""

import json
import sys
import time
import types

import fast_bitrix24.srh as srh
import fast_bitrix24.throttle as throttle
from fast_bitrix24 import Bitrix

from scaled_clock import scaled


def main():
    webhook, scale = sys.argv[1], float(sys.argv[2])
    method = sys.argv[3] if len(sys.argv) > 3 else "crm.deal.list"
    clock = scaled(scale)
    # throttle.py: time.monotonic() and asyncio.sleep(); srh.py: asyncio's sleep (backoff).
    throttle.time = types.SimpleNamespace(monotonic=clock.monotonic)
    throttle.asyncio = types.SimpleNamespace(sleep=clock.asleep)
    srh.sleep = clock.asleep
    b = Bitrix(webhook, verbose=False)
    t0 = time.monotonic()
    rows, error = [], None
    try:
        rows = b.get_all(method, params={"select": ["*", "UF_*"]})
    except Exception as e:  # noqa: BLE001 - report what stopped the client
        error = f"{type(e).__name__}: {str(e)[:300]}"
    wall = time.monotonic() - t0
    ids = {str(r.get("ID")) for r in rows if isinstance(r, dict)}
    print(json.dumps({"client": "fast_bitrix24 get_all", "rows": len(rows),
                      "unique_ids": len(ids), "wall_secs": wall, "error": error}))


if __name__ == "__main__":
    main()
