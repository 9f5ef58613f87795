"""Step-time watchdog: notices CPU contention in a training loop and lowers torch's thread count.

Why: torch's CPU ops run on an OpenMP (libgomp) thread team, and every parallel region ends at
a barrier. When another process takes one of the cores the team runs on, each region waits for
the thread that shares that core with it, and a step slows by far more than the lost core's
share (`benchmarks/contention.py`, figures in docs/benchmarks.md); fewer threads than free cores
have no barrier to wait at. So the lever is the intra-op thread count (`torch.set_num_threads`,
process-wide: every later torch op of the process runs with it).

Signals, read once per step by `StepWatchdog.observe`:

- run-queue wait: the time this process's threads spent runnable but without a CPU (Linux
  `/proc/self/task/*/schedstat`), per second of wall time, i.e. how many of our threads waited on
  average since the previous step. About 0 on free cores; above `max_waiting` the cores are
  oversubscribed. It needs no quiet steps to compare with, so it also catches a competitor that
  was there before the run started.
- step time above `factor` x the running median of recent steps taken at the full thread count
  (the `warmup` first steps, with their one-off costs, neither count nor are judged by it): where
  schedstat is missing, and for slowdowns that show no run-queue wait.

`patience` contended steps in a row lower the thread count by the cores other processes took, as
estimated from the wait (`fewer_threads`; halved without one), down to one. While lowered, one
step every `probe_every` steps (doubling after each probe that finds the cores still contended)
runs at the full count again; a probe that is not contended keeps that count. A thread count
above the CPUs the process may use (affinity mask, cgroup v2 quota) is lowered to that number on
the first step, and that number is then the full count. The first time the watchdog acts it
prints one line (also when it finds contention at one thread, where it has nothing to lower); each
change of the thread count returns `contention/*` fields for the step's metrics record.
`close` restores the count the watchdog started with.

Not adopted: `OMP_WAIT_POLICY=PASSIVE` (idle OpenMP threads sleep at once instead of spinning for
a while, libgomp's default). libgomp reads it once, when it loads, so it cannot wait for contention
to appear: it would change every quiet step too. `benchmarks/contention.py` measures it as a side.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import torch


def runqueue_wait() -> float | None:
    """Seconds this process's live threads have spent runnable but waiting for a CPU, summed
    (the second field of Linux's per-thread schedstat); None where the kernel does not expose it.
    Threads that have ended drop out of the sum."""
    if not os.path.exists("/proc/self/schedstat"):
        return None
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def cpu_limit(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity mask, lowered by a cgroup v2 CPU quota (a
    container's `--cpus`), rounded up."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


class StepWatchdog:
    """Watches a training loop's step times for CPU contention and lowers torch's thread count.

    `observe(seconds)` once per step (the step's own wall time, without eval or checkpoint time);
    `close()` after the loop. With `enabled=False` (or on a GPU run) it does nothing. `say` gets
    the one console line (None: silent, e.g. on non-main ranks). As a context manager it closes
    itself when the block ends, however it ends."""

    def __init__(self, enabled: bool = True, say: Callable[[str], None] | None = None, factor: float = 3.0,
                 max_waiting: float = 0.5, patience: int = 2, window: int = 20, warmup: int = 1,
                 probe_every: int = 50):
        self.enabled, self.say = enabled, say
        self.factor, self.max_waiting, self.patience, self.warmup = factor, max_waiting, patience, warmup
        self.probe_every = probe_every
        self.original = self.full = self.threads = self.lowered = torch.get_num_threads()
        self.times: deque[float] = deque(maxlen=window)  # steps at the full count, not contended
        self.seen = self.strikes = self.calm = 0
        self.probing = self.told = False
        self._wait, self._clock = runqueue_wait(), time.perf_counter()

    def observe(self, seconds: float) -> dict[str, float]:
        """Judge one step; returns the fields to add to its metrics record (empty unless the thread
        count changed)."""
        if not self.enabled:
            return {}
        wait, clock = runqueue_wait(), time.perf_counter()
        waiting = None  # how many of our threads waited for a CPU, on average, since the last call
        if wait is not None and self._wait is not None:
            waiting = max(0.0, wait - self._wait) / max(clock - self._clock, 1e-9)
        self._wait, self._clock = wait, clock
        self.seen += 1
        if self.seen == 1 and self.threads > (limit := cpu_limit()):
            self.full = limit
            return self._set(limit, f"torch runs {self.threads} threads on {limit} usable CPUs", waiting, None)
        warm = self.seen <= self.warmup  # a warm-up step's time says nothing; its run-queue wait does
        median = statistics.median(self.times) if len(self.times) >= 3 else None
        slowdown = seconds / median if median and not warm else None
        contended = ((slowdown is not None and slowdown > self.factor)
                     or (waiting is not None and waiting > self.max_waiting))
        if self.probing:  # this step ran at the full count again
            self.probing = False
            if contended:
                self.probe_every *= 2
                return self._set(self.lowered, "", waiting, slowdown)
            self.times.append(seconds)
            return {"contention/threads": self.threads}
        if not contended:
            self.strikes = 0
            if self.threads == self.full:
                if not warm:
                    self.times.append(seconds)
                return {}
            self.calm += 1
            if self.calm < self.probe_every:
                return {}
            self.calm, self.probing = 0, True
            return self._set(self.full, "", waiting, slowdown)
        self.strikes += 1
        if self.strikes < self.patience:
            return {}
        self.strikes = 0
        waited = waiting if waiting is not None and waiting > self.max_waiting else None  # else it tells nothing
        what = (f"{waited:.1f} of this run's threads waited for a CPU" if waited is not None
                else f"steps take {slowdown:.1f}x their median of {median:.2f} s")
        if self.threads == 1:  # nothing left to lower: tell once (no record: the metrics stay as without it)
            if not self.told:
                self._tell(f"CPU contention: {what}; torch already runs one thread, so steps stay slow while another "
                           f"process uses the cores")
            return {}
        return self._set(fewer_threads(self.threads, waited), what, waiting, slowdown)

    def __enter__(self) -> StepWatchdog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # however the loop ends: a run that raises leaves no lowered thread count behind

    def close(self) -> None:
        """Restore the thread count the watchdog started with."""
        if self.enabled and self.threads != self.original:
            torch.set_num_threads(self.original)
            self.threads = self.original

    def _set(self, n: int, what: str, waiting: float | None, slowdown: float | None) -> dict[str, float]:
        before, self.threads = self.threads, n
        torch.set_num_threads(n)
        if n < before:
            self.lowered, self.calm = n, 0
            if what and not self.told:
                self._tell(f"CPU contention: {what}; torch threads {before} -> {n} (each lost core otherwise stalls "
                           f"every parallel op; cpu_watchdog=false turns this off)")
            return _fields(n, waiting, slowdown)
        return {"contention/threads": n}

    def _tell(self, line: str) -> None:
        self.told = True
        if self.say is not None:
            self.say(line)


def fewer_threads(threads: int, waiting: float | None) -> int:
    """The thread count for a contended step: `threads` less the cores other processes took, or
    half of it without a run-queue wait to estimate them from. With n threads and k
    competitors sharing n cores, each of the n + k gets n / (n + k) of a core, so our threads wait
    w = n k / (n + k) on average and k = w n / (n - w)."""
    if waiting is None or waiting <= 0.0:
        return max(1, threads // 2)
    taken = threads if waiting >= threads else round(waiting * threads / (threads - waiting))
    return max(1, threads - max(1, taken))


def _fields(threads: int, waiting: float | None, slowdown: float | None) -> dict[str, float]:
    rec: dict[str, float] = {"contention/threads": threads}
    if waiting is not None:
        rec["contention/waiting"] = round(waiting, 3)
    if slowdown is not None:
        rec["contention/slowdown"] = round(slowdown, 2)
    return rec
