"""Production settings plus one extra URL: a bare JSON view to compare the webhook with."""

from liveadmin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.webhook_bench_urls"
