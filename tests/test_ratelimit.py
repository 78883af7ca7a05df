"""The send-rate limiter: documented rates, and the shared bucket holding the rate
across several worker processes (Redis) and threads (in-process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis

from messaging import ratelimit
from tests.factories import make_app

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8"

# A worker process: wait for the common start, take tokens until the deadline,
# print the times it got them.
WORKER = """
import json, sys, time
import redis
from messaging.ratelimit import RedisTokenBucket
url, key, rate, capacity, duration = sys.argv[1:]
bucket = RedisTokenBucket(redis.Redis.from_url(url))
print("ready", flush=True)
start = float(sys.stdin.readline())
time.sleep(max(0.0, start - time.time()))
stamps = []
while True:
    bucket.acquire(key, float(rate), float(capacity))
    now = time.time()
    if now >= start + float(duration):
        break
    stamps.append(now)
print(json.dumps(stamps), flush=True)
"""


@pytest.mark.django_db
def test_it_uses_the_documented_rates():
    app = make_app()
    assert ratelimit.rate_per_second(app, "text") == 200
    assert ratelimit.rate_per_second(app, "custom") == 200
    assert ratelimit.rate_per_second(app, "broadcast") == 1
    zego = make_app(provider="zego")
    assert ratelimit.rate_per_second(zego, "command") == 100


@pytest.mark.django_db
def test_it_uses_the_apps_lower_limit():
    app = make_app(rate_limit=50)
    assert ratelimit.rate_per_second(app, "text") == 50
    # A limit above the documented one never raises it.
    assert ratelimit.rate_per_second(app, "broadcast") == 1
    assert ratelimit.rate_per_second(make_app(rate_limit=500), "text") == 200


def test_it_holds_the_rate_across_worker_processes():
    rate, duration, processes = 100.0, 1.5, 4
    capacity = ratelimit.burst_for(rate)
    key = f"test:ratelimit:{uuid.uuid4().hex}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    args = [REDIS_URL, key, str(rate), str(capacity), str(duration)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(processes)
    ]
    per_process = []
    try:
        # Every process is up (Django loaded) before the common start.
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        start = time.time() + 0.2
        for worker in workers:
            worker.stdin.write(f"{start}\n")
            worker.stdin.flush()
        for worker in workers:
            out, _ = worker.communicate(timeout=30)
            assert worker.returncode == 0
            per_process.append(json.loads(out))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    stamps = [t for got in per_process for t in got]
    # Never above rate x duration + burst, and close to it: the processes shared
    # one bucket (a loaded machine only delays callers, which can lower the count).
    assert len(stamps) <= rate * duration + capacity
    assert len(stamps) >= rate * duration * 0.75
    assert all(len(got) > 0 for got in per_process)
    redis.Redis.from_url(REDIS_URL).delete(key)


def test_it_holds_the_rate_across_threads_in_process():
    bucket = ratelimit.LocalTokenBucket()
    rate, duration = 200.0, 1.0
    capacity = ratelimit.burst_for(rate)
    key = f"test:{uuid.uuid4().hex}"
    stamps: list[float] = []
    lock = threading.Lock()
    start = time.monotonic()

    def hammer() -> None:
        while True:
            bucket.acquire(key, rate, capacity)
            now = time.monotonic()
            if now >= start + duration:
                return
            with lock:
                stamps.append(now)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rate * duration * 0.75 <= len(stamps) <= rate * duration + capacity


def test_it_sleeps_only_the_computed_wait():
    bucket = ratelimit.LocalTokenBucket()
    key = f"test:{uuid.uuid4().hex}"
    assert bucket.reserve(key, 10.0, 1.0) == 0.0
    # The next token is one tenth of a second away; the third two tenths.
    assert bucket.reserve(key, 10.0, 1.0) == pytest.approx(0.1, abs=0.01)
    assert bucket.reserve(key, 10.0, 1.0) == pytest.approx(0.2, abs=0.01)


@pytest.mark.django_db
def test_it_shares_the_bucket_in_redis_when_redis_url_is_set(settings):
    settings.REDIS_URL = REDIS_URL
    app = make_app(rate_limit=5)
    key = ratelimit.bucket_key(app, "text")
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(key)
    assert isinstance(ratelimit.get_bucket(), ratelimit.RedisTokenBucket)
    began = time.monotonic()
    for _ in range(3):
        ratelimit.acquire(app, "text")
    # Burst of one token at 5/s: the 2nd and 3rd waited 0.2 s each.
    assert time.monotonic() - began >= 0.35
    assert float(client.hget(key, "tokens")) < 1
    client.delete(key)


@pytest.mark.django_db
def test_it_uses_the_in_process_bucket_without_redis(settings):
    settings.REDIS_URL = ""
    assert ratelimit.get_bucket() is ratelimit._local_bucket


@pytest.mark.django_db
def test_it_limits_in_process_when_redis_is_unreachable(settings, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    app = make_app(rate_limit=5)
    began = time.monotonic()
    ratelimit.acquire(app, "text")
    ratelimit.acquire(app, "text")
    # The second call waited for the in-process bucket's next token.
    assert time.monotonic() - began >= 0.15
    assert "Redis unavailable" in caplog.text


@pytest.mark.django_db
def test_when_redis_returns_the_process_sends_in_the_slots_the_bucket_gave_it(
    settings,
):
    """Back from its share, a process owes the bucket the slots of its share (those
    of the last second and those still ahead); the next caller's slots come after
    both, and this process's own slots end before them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(rate_limit=40)
    key = ratelimit.bucket_key(app, "text")
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(key, f"{key}:peers")
    rate = ratelimit.pace_for(ratelimit.rate_per_second(app, "text"))
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    ratelimit.reserve(app, "text", 16)  # at its share, the bucket unreachable
    settings.REDIS_URL = REDIS_URL
    start, interval, n = ratelimit.reserve(app, "text", 16)
    assert key not in ratelimit._degraded
    ours_end = start + n * interval
    other = ratelimit.RedisTokenBucket(client)
    asked = time.monotonic()
    theirs = asked + other.reserve(key, rate, ratelimit.burst_for(rate))
    assert theirs >= ours_end - 0.005
