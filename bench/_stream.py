"""Streaming measurement (own process): ``stream: true`` chat completions, time to first token and total time.

    python bench/_stream.py URL REQUESTS CONCURRENCY [WARMUP]

Each request is timed from just before it is sent to the first SSE ``data:`` line (TTFT: the role chunk, the
first thing a client can render from) and to the end of the stream. A stream counts as an error unless the
status is 200 and it ends with ``data: [DONE]``. Prints one ``STREAMJSON {...}`` line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _procs import Procs, pin  # noqa: E402
from _wrk import HEADERS, STREAM_BODY  # noqa: E402


def _pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else 0.0


async def _measure(url: str, requests: int, conc: int, warmup: int) -> dict[str, Any]:
    import aiohttp

    body = STREAM_BODY.encode()
    ttft: list[float] = []
    total: list[float] = []
    errors = 0
    todo = requests + warmup
    counter = {"n": 0}
    connector = aiohttp.TCPConnector(limit=conc)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> tuple[float, float] | None:
            t0 = time.perf_counter()
            first = None
            done = False
            async with session.post(url, data=body, headers=HEADERS) as resp:
                async for line in resp.content:
                    if line.startswith(b"data:"):
                        if first is None:
                            first = time.perf_counter() - t0
                        if line.strip() == b"data: [DONE]":
                            done = True
                ok = resp.status == 200 and done and first is not None
            return (first, time.perf_counter() - t0) if ok else None  # type: ignore[return-value]

        async def worker() -> None:
            nonlocal errors
            while counter["n"] < todo:
                counter["n"] += 1
                i = counter["n"]
                try:
                    r = await one()
                except Exception:
                    r = None
                if r is None:
                    errors += 1
                elif i > warmup:
                    ttft.append(r[0])
                    total.append(r[1])

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - t0
    ttft.sort()
    total.sort()
    ms = 1000.0
    return {
        "requests": len(ttft),
        "conc": conc,
        "errors": errors,
        "streams_per_s": round(len(ttft) / elapsed, 1) if elapsed else 0.0,
        "ttft_p50_ms": round(_pct(ttft, 50) * ms, 3),
        "ttft_p99_ms": round(_pct(ttft, 99) * ms, 3),
        "total_p50_ms": round(_pct(total, 50) * ms, 3),
        "total_p99_ms": round(_pct(total, 99) * ms, 3),
    }


def run_stream(
    procs: Procs, url: str, requests: int, conc: int, *, cpu: int | None, warmup: int = 20
) -> dict[str, Any]:
    cmd = [*pin(cpu), sys.executable, str(Path(__file__).resolve()), url, str(requests), str(conc), str(warmup)]
    proc = procs.start("stream-client", cmd, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        procs.stop(proc)
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("STREAMJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"stream client failed (exit {proc.returncode}):\n{text}")
    return json.loads(line[len("STREAMJSON ") :])


def main() -> None:
    url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print("STREAMJSON " + json.dumps(asyncio.run(_measure(url, n, conc, warmup))), flush=True)


if __name__ == "__main__":
    main()
