"""b24pysdk (official SDK) `call_list_fast` (chained batch, start=-1, moving ID window).

Usage: peer_b24pysdk.py WEBHOOK_URL TIME_SCALE [METHOD]
Prints one JSON line: rows, unique ids, wall seconds, error.

b24pysdk builds every URL as `https://{domain}/rest/...` (api/callers/call_method.py); the demo
portal speaks plain http, so `_MethodCaller._base_url` is patched to `http://`. That is the only
change. The SDK has no client-side rate or operating limiter; its requester retries 503 with
`time.sleep`, which runs on the portal's clock (scaled_clock.py).
"""

import importlib
import json
import sys
import time
import types
from urllib.parse import urlsplit

from b24pysdk.api.callers.call_list_fast import call_list_fast

from scaled_clock import scaled


def main():
    webhook, scale = sys.argv[1], float(sys.argv[2])
    method = sys.argv[3] if len(sys.argv) > 3 else "crm.deal.list"
    clock = scaled(scale)
    # The package re-exports functions under these module names: take the modules.
    call_method = importlib.import_module("b24pysdk.api.callers.call_method")
    base_requester = importlib.import_module("b24pysdk.api.requesters._base_requester")
    base_requester.time = types.SimpleNamespace(sleep=clock.sleep, monotonic=clock.monotonic,
                                                time=time.time)
    call_method._MethodCaller._base_url = property(lambda self: f"http://{self._domain}/rest")
    u = urlsplit(webhook)
    # /rest/{user}/{code}/ → auth token "user/code"
    parts = [p for p in u.path.split("/") if p]
    token = "/".join(parts[1:3])
    t0 = time.monotonic()
    n, ids, error = 0, set(), None
    try:
        resp = call_list_fast(domain=u.netloc, auth_token=token, is_webhook=True,
                              api_method=method, params={"select": ["*", "UF_*"]},
                              timeout=600)
        for row in resp["result"]:
            n += 1
            ids.add(str(row.get("ID", row.get("id"))))
    except Exception as e:  # noqa: BLE001 - report what stopped the client
        error = f"{type(e).__name__}: {str(e)[:300]}"
    wall = time.monotonic() - t0
    print(json.dumps({"client": "b24pysdk call_list_fast", "rows": n, "unique_ids": len(ids),
                      "wall_secs": wall, "error": error}))


if __name__ == "__main__":
    main()
