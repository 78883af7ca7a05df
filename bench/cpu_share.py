"""Where the CPU went during a load run, read from /proc (Linux): how idle the machine's
CPUs were, how busy the server's busiest thread was, and the server's CPU per request.

bench/webhook_load.py prints it beside each run. A run whose CPUs sat partly idle while
no server thread was near 100 % was bounded by neither: the time went in waiting
between threads (a request's hand-offs inside the server), which no change to the
Python that answers it can remove.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def _machine() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs since boot (/proc/stat; iowait counts as idle)."""
    fields = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(root: int) -> list[int]:
    tree, pids, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(tree.get(pid, []))
    return pids


def _threads(pids: list[int]) -> dict[int, int]:
    """utime + stime in ticks of every thread of these processes."""
    ticks: dict[int, int] = {}
    for pid in pids:
        try:
            tasks = list((PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


@dataclass(frozen=True)
class CpuShare:
    idle: float  # share of all the machine's CPU time that was idle
    busiest_thread: float  # share of the run's wall time the busiest server thread ran
    server_cpu_s: float  # CPU seconds of every thread of the server

    def per_request_us(self, requests: int) -> float:
        return self.server_cpu_s / max(requests, 1) * 1e6

    def describe(self, requests: int) -> str:
        return (
            f"CPUs idle {self.idle:.0%}, busiest server thread {self.busiest_thread:.0%} "
            f"busy, server CPU {self.per_request_us(requests):.0f} µs a request"
        )


class CpuWindow:
    """``with CpuWindow(server_pid) as window: ...``; then ``window.share``."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.share: CpuShare | None = None

    def __enter__(self) -> CpuWindow:
        self._pids = _tree(self.root_pid)
        self._threads = _threads(self._pids)
        self._machine = _machine()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._started
        idle, total = _machine()
        threads = _threads(self._pids)
        used = {tid: t - self._threads.get(tid, 0) for tid, t in threads.items()}
        self.share = CpuShare(
            idle=(idle - self._machine[0]) / max(total - self._machine[1], 1),
            busiest_thread=max(used.values(), default=0) / TICKS / wall,
            server_cpu_s=sum(used.values()) / TICKS,
        )
