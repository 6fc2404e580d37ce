"""Run a Python Bitrix24 client on the demo portal's simulated clock.

The demo portal runs `time_scale` simulated seconds per real second (its leaky bucket drains
2 × scale requests per real second, its 600 s operating window passes in 600 / scale real
seconds). b24ch's governor is told the same scale (`clock_scale`). The Python clients read
`time.monotonic()` and sleep with `time.sleep` / `asyncio.sleep`; this module gives the modules
named by the caller a clock that runs `scale` times faster and sleeps that are `scale` times
shorter, so their throttling decisions are exactly the ones they would make against a real
portal at scale 1. Nothing else (HTTP, timeouts, parsing) is touched.
"""

import asyncio
import time
import types

_T0 = time.monotonic()


def scaled(scale: float) -> types.SimpleNamespace:
    """A stand-in for the `time` and `asyncio` module attributes the clients use."""

    def monotonic() -> float:
        return _T0 + (time.monotonic() - _T0) * scale

    def sleep(d: float) -> None:
        time.sleep(max(d, 0.0) / scale)

    async def asleep(d: float, *a, **k):
        return await asyncio.sleep(max(d, 0.0) / scale, *a, **k)

    return types.SimpleNamespace(monotonic=monotonic, sleep=sleep, asleep=asleep, time=time.time)
