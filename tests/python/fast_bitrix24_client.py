"""Drive the demo portal with fast_bitrix24, a real third-party client from PyPI.

Usage: python fast_bitrix24_client.py <webhook_url> <base_url>

Checks (exit code 0 = all passed):
1. get_all('crm.deal.list') returns exactly the seeded deal IDs and titles (ground truth from
   /_control/ground_truth/deal), even while the portal injects 503 QUERY_LIMIT_EXCEEDED faults
   that the client must retry.
2. A burst of single calls above the bucket size is paced by the client at the portal's rate:
   the portal reports no 503 and the calls take as long as the leaky bucket demands.
3. The same burst sent naively (no throttling) gets 503 QUERY_LIMIT_EXCEEDED from the portal.

fast_bitrix24 accepts http:// webhooks: its URL check (utils._url_valid) only requires a scheme,
host and path, and `ssl=True` only matters for https. No monkeypatching is needed.
"""

import json
import sys
import time
import urllib.error
import urllib.request

from fast_bitrix24 import Bitrix


def control(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}/_control/{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read().decode())


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}")
        sys.exit(1)
    print(f"ok: {msg}")


def main():
    webhook, base = sys.argv[1], sys.argv[2]
    truth = control(base, "ground_truth/deal")
    expected = {str(r["ID"]): r["TITLE"] for r in truth}
    control(base, "counters/reset", {})
    # Two 503s the client has to retry through.
    control(base, "faults", {"type": "query_limit_exceeded", "remaining": 2})

    b = Bitrix(webhook, verbose=False)
    deals = b.get_all("crm.deal.list", params={"select": ["ID", "TITLE"]})
    got = {d["ID"]: d["TITLE"] for d in deals}
    check(len(deals) == len(expected), f"{len(deals)} deals listed, {len(expected)} seeded")
    check(got == expected, "IDs and titles equal the ground truth (Cyrillic, emoji, quotes, newlines)")
    c = control(base, "counters")
    check(c["query_limit_exceeded"] == 2, f"503 QUERY_LIMIT_EXCEEDED handled by retry: {c['query_limit_exceeded']}")
    check(c["per_method"].get("batch", 0) >= 1, "get_all used batch")

    # 2. Client-side pacing: 60 single calls; bucket 50 then 2/s → at least ~5 s.
    control(base, "counters/reset", {})
    ids = sorted(int(i) for i in expected)[:60]
    t0 = time.monotonic()
    for i in ids:
        r = b.call("crm.deal.get", {"id": i}, raw=True)
        item = r.get("result", r) if isinstance(r, dict) else r
        check_title = item.get("TITLE") if isinstance(item, dict) else None
        if check_title != expected[str(i)]:
            print(f"FAIL: crm.deal.get {i}: {check_title!r}")
            sys.exit(1)
    elapsed = time.monotonic() - t0
    c = control(base, "counters")
    check(c["requests_total"] >= 60, f"{c['requests_total']} requests sent")
    check(c["query_limit_exceeded"] == 0, "client stayed within the leaky bucket (no 503)")
    check(elapsed >= 4.0, f"rate respected: 60 calls took {elapsed:.1f}s (bucket 50, 2/s)")

    # 3. A bigger burst without client throttling is refused by the portal.
    control(base, "counters/reset", {})
    statuses = []
    for i in ids * 2:
        req = urllib.request.Request(f"{webhook}crm.deal.get?id={i}")
        try:
            with urllib.request.urlopen(req) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read().decode())
            statuses.append(e.code)
            if e.code == 503:
                assert body == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    n503 = statuses.count(503)
    check(n503 >= 10, f"naive burst of {len(statuses)} throttled by the portal: {n503} x 503")
    print("ALL PASSED")


if __name__ == "__main__":
    main()
