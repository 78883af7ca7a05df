"""Run a Python script under cProfile with each thread's own CPU clock, every thread
profiled, and save the profiles combined (waiting on the network costs no CPU, so it
does not show).

    python bench/profile_cpu.py OUT.prof manage.py sendmsg ...
    python bench/profile_cpu.py OUT.prof -m celery -A liveadmin worker ...

The profile is written when the program returns (a Celery worker: after its warm
shutdown on SIGTERM).

Read it with ``python -m pstats OUT.prof`` (sort tottime, stats 30).
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading
import time

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile(time.thread_time_ns, 1e-9)
    with _lock:
        _profiles.append(profile)
    profile.runcall(_run, self)


def _dump(out: str, main_profile: cProfile.Profile) -> None:
    main_profile.create_stats()
    stats = pstats.Stats(main_profile)
    with _lock:
        for profile in _profiles:
            profile.create_stats()
            stats.add(profile)
    stats.dump_stats(out)


def main() -> None:
    out, *rest = sys.argv[1:]
    if rest[0] == "-m":
        module, *args = rest[1:]
        sys.argv = [module, *args]
        run = lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        script, *args = rest
        sys.argv = [script, *args]
        run = lambda: runpy.run_path(script, run_name="__main__")  # noqa: E731
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile(time.thread_time_ns, 1e-9)
    try:
        main_profile.runcall(run)
    except SystemExit:
        pass
    finally:
        _dump(out, main_profile)


if __name__ == "__main__":
    main()
