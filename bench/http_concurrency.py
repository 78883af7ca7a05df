"""Benchmark: CPU per request of the ways a sender can keep requests in flight.

The bulk runner waits on the network; what it pays for each send is CPU. This
sends the same requests to the bare stand-in of bench/bulk_send.py three ways, in
one run, and prints CPU ms per request and the ratio to threads:

- threads: one pooled ``httpx.Client`` shared by a thread pool (what the runner does)
- event loop: one ``httpx.AsyncClient`` with asyncio tasks
- one thread: the same client, one request at a time (the floor)

    python bench/http_concurrency.py [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bulk_send import stand_in  # noqa: E402
from bench.support import free_port  # noqa: E402

BODY = b'{"RoomId":"bench-room","Sender_Account":"host-1","TextContent":"Bench"}'


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(run: Callable[[], None], requests: int) -> tuple[float, float]:
    """(CPU ms per request, wall seconds)."""
    cpu, wall = cpu_seconds(), time.monotonic()
    run()
    return 1000 * (cpu_seconds() - cpu) / requests, time.monotonic() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    n, width = min(args.requests, 20_000), args.concurrency
    port = free_port()
    server = stand_in(port)
    url = f"http://127.0.0.1:{port}/v4/live_engine_http_srv/send_text_msg"
    limits = httpx.Limits(max_connections=width * 2)
    try:
        client = httpx.Client(limits=limits)
        client.post(url, content=BODY)

        def threads() -> None:
            with ThreadPoolExecutor(width) as pool:
                list(pool.map(lambda _: client.post(url, content=BODY), range(n)))

        def one_thread() -> None:
            for _ in range(n):
                client.post(url, content=BODY)

        def event_loop() -> None:
            async def run() -> None:
                async with httpx.AsyncClient(limits=limits) as aclient:
                    gate = asyncio.Semaphore(width)

                    async def one() -> None:
                        async with gate:
                            await aclient.post(url, content=BODY)

                    await asyncio.gather(*(one() for _ in range(n)))

            asyncio.run(run())

        results = {
            "threads": measure(threads, n),
            "event loop": measure(event_loop, n),
            "one thread": measure(one_thread, n),
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
    base = results["threads"][0]
    for name, (ms, wall) in results.items():
        print(
            f"{name:>10}: {ms:.3f} ms CPU per request ({ms / base:.2f}x threads), "
            f"{n / wall:.0f} requests/s, {n} requests, {width} in flight"
        )
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
