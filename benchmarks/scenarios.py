"""The measured scenarios. Each takes a Bench (one implementation, one fresh database)
and returns the figures for its JSON line.

Every wait is capped: the published 0.27.1 worker drains about 8 jobs/s and
may die on SQLite, so a scenario reports what completed within its time limit
(``finished: false``) and whether the worker died, rather than hanging.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fresh_db import table_counts
from worker_process import ExecutionLog, Worker

DRIVER = Path(__file__).with_name("driver.py")
#: Jobs run before a measurement starts, so both job processes exist and are warm.
WARM_UP_JOBS = 20
#: How long the warm-up may take (the published worker needs about 3 s).
WARM_UP_SECONDS = 30
#: A queue no benchmark worker listens to: jobs sent there leave the worker idle.
UNWATCHED_QUEUE = "bench-unwatched"


class NotApplicable(Exception):
    """The implementation has no API for this scenario (reported as "n/a")."""


class WorkerDied(Exception):
    """The worker exited before the measurement could start (reported as "died")."""


class WorkerStalled(Exception):
    """The worker is running but ran none of the warm-up jobs (reported as "stalled")."""


class EnqueueFailed(Exception):
    """The implementation's enqueue API raised, e.g. "database is locked" (reported as "failed")."""


@dataclass(frozen=True)
class Implementation:
    label: str
    venv: Path
    version: str

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def plain(self) -> Path:
        return self.venv / "bin" / "plain"


def size(default: float, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Sizes:
    drain_jobs: int = size(2000, "jobs queued before the drain worker starts")
    latency_jobs: int = size(100, "jobs enqueued one at a time to the idle worker")
    latency_interval: float = size(0.1, "seconds between those enqueues")
    enqueue_jobs: int = size(1000, "run_in_worker calls in each single-enqueue scenario")
    bulk_jobs: int = size(10000, "jobs enqueued with run_in_worker_bulk")
    memory_jobs: int = size(10000, "jobs run between the two memory samples")
    time_limit: float = size(20, "seconds a drain, a latency tail or a single-enqueue loop may take")
    memory_time_limit: float = size(40, "seconds the memory scenario waits for its jobs")


@dataclass(frozen=True)
class Bench:
    """One scenario run: an implementation, a fresh database and a directory for its files."""

    implementation: Implementation
    url: str
    app_dir: Path
    out_dir: Path
    sizes: Sizes

    @property
    def log(self) -> ExecutionLog:
        return ExecutionLog(self.out_dir / "executions.log")

    def env(self) -> dict[str, str]:
        return {**os.environ, "DATABASE_URL": self.url, "BENCH_EXEC_LOG": str(self.log.path)}

    def driver(self, command: str, timeout: float = 600, **options: Any) -> dict[str, Any]:
        """Run driver.py under the implementation's interpreter; returns its JSON answer."""
        done = subprocess.run(
            [str(self.implementation.python), str(DRIVER), command, json.dumps(options)],
            check=False,
            cwd=self.app_dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        (self.out_dir / f"driver-{command}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EnqueueFailed(f"driver {command}: {last}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def start_worker(self) -> Worker:
        return Worker(self.implementation.plain, self.app_dir, self.env(), self.out_dir / "worker.log")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def warm_up(bench: Bench, worker: Worker) -> dict[str, int]:
    """Run WARM_UP_JOBS jobs (numbered below zero), then let the worker idle for a second.

    A worker that loses some of them (0.27.1 on SQLite can leave a job behind
    after "database is locked") is still measured; the figures say how many.
    """
    bench.driver("prefill", count=WARM_UP_JOBS, first=-WARM_UP_JOBS)

    def warm_up_runs() -> int:
        return sum(1 for n in bench.log.counts() if n < 0)

    worker.wait_for(lambda: warm_up_runs() >= WARM_UP_JOBS, WARM_UP_SECONDS)
    if not worker.alive() or not warm_up_runs():
        raise _no_warm_up(worker)
    time.sleep(1)
    return {"warm_up_not_run": WARM_UP_JOBS - warm_up_runs()}


def drain(bench: Bench) -> dict[str, Any]:
    """N jobs enqueued before the worker starts; how fast and how correctly it empties the queue."""
    count = bench.sizes.drain_jobs
    prefill = bench.driver("prefill", count=count)
    worker = bench.start_worker()
    try:
        finished = worker.wait_for(lambda: len(bench.log.counts()) >= count, bench.sizes.time_limit)
        if finished:
            worker.wait_for(lambda: _waiting_rows(bench.url) == 0, 10, poll=0.25)
    finally:
        stopped = worker.stop()
    executions = bench.log.read()
    runs = Counter(n for n, _, _ in executions)
    starts = sorted(started for _, started, _ in executions)
    tables = table_counts(bench.url)
    return {
        "jobs": count,
        "finished": finished,
        "time_limit_s": bench.sizes.time_limit,
        "jobs_per_s": (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0,
        "jobs_per_s_incl_startup": len(starts) / (starts[-1] - worker.started) if starts else 0.0,
        "executed_once": sum(1 for runs_of_n in runs.values() if runs_of_n == 1),
        "duplicates": sum(runs_of_n - 1 for runs_of_n in runs.values()),
        "not_executed": count - len(runs),
        "left_behind": tables["plainworker_jobrequest"] + tables["plainworker_job"],
        "results_successful": tables.get("results_successful", 0),
        "results_unsuccessful": tables["plainworker_jobresult"] - tables.get("results_successful", 0),
        "prefill_api": prefill["api"],
        **stopped,
        **worker.log_errors(),
    }


def latency(bench: Bench) -> dict[str, Any]:
    """An idle worker; one job enqueued every interval; enqueue commit -> run() start."""
    sizes = bench.sizes
    worker = bench.start_worker()
    try:
        warmed = warm_up(bench, worker)
        paced = bench.driver(
            "paced",
            count=sizes.latency_jobs,
            interval=sizes.latency_interval,
            timeout=sizes.latency_jobs * sizes.latency_interval + 120,
        )
        enqueued_at = {int(n): at for n, at in paced["enqueued_at"].items()}
        worker.wait_for(lambda: enqueued_at.keys() <= bench.log.started_at().keys(), sizes.time_limit)
    finally:
        stopped = worker.stop()
    started_at = bench.log.started_at()
    waits = sorted(1000 * (started_at[n] - at) for n, at in enqueued_at.items() if n in started_at)
    figures: dict[str, Any] = {"jobs": sizes.latency_jobs, "interval_s": sizes.latency_interval}
    if waits:
        figures |= {"p50_ms": percentile(waits, 0.5), "p95_ms": percentile(waits, 0.95), "max_ms": waits[-1]}
    return figures | {"not_started": len(enqueued_at) - len(waits), **warmed, **stopped, **worker.log_errors()}


def enqueue_single(bench: Bench) -> dict[str, Any]:
    """run_in_worker one at a time (one transaction each), no worker running."""
    return _single_rate(bench.driver("single", count=bench.sizes.enqueue_jobs, time_limit=bench.sizes.time_limit))


def enqueue_single_idle_worker(bench: Bench) -> dict[str, Any]:
    """The same calls while an idle worker runs (jobs go to a queue it does not watch)."""
    worker = bench.start_worker()
    try:
        warmed = warm_up(bench, worker)
        single = bench.driver(
            "single",
            count=bench.sizes.enqueue_jobs,
            time_limit=bench.sizes.time_limit,
            queue=UNWATCHED_QUEUE,
        )
    finally:
        stopped = worker.stop()
    return _single_rate(single) | warmed | stopped | worker.log_errors()


def _single_rate(single: dict[str, Any]) -> dict[str, Any]:
    figures = {"jobs": single.pop("done"), "timed_seconds": single.pop("seconds"), **single}
    return {"jobs_per_s": figures["jobs"] / figures["timed_seconds"], **figures}


def enqueue_bulk(bench: Bench) -> dict[str, Any]:
    """Job.run_in_worker_bulk in chunks of 1,000 jobs, no worker running."""
    bulk = bench.driver("bulk", count=bench.sizes.bulk_jobs, chunk=1000)
    if "unsupported" in bulk:
        raise NotApplicable(bulk["unsupported"])
    return {
        "jobs": bulk["done"],
        "chunk": 1000,
        "timed_seconds": bulk["seconds"],
        "jobs_per_s": bulk["done"] / bulk["seconds"],
    }


def memory(bench: Bench) -> dict[str, Any]:
    """Worker RSS (supervisor + job processes) after a warm-up and after N more jobs.

    Both samples are taken while the worker holds the rest of the queue, the
    second once all N jobs ran (or the time limit passed); the peak is sampled
    every half second in between.
    """
    count = bench.sizes.memory_jobs
    bench.driver("prefill", count=count + WARM_UP_JOBS)
    worker = bench.start_worker()
    peak_mb = 0.0

    def executed_at_least(jobs: int) -> bool:
        nonlocal peak_mb
        if worker.alive():
            peak_mb = max(peak_mb, float(worker.rss()["total_mb"]))
        return len(bench.log.counts()) >= jobs

    try:
        if not worker.wait_for(lambda: executed_at_least(WARM_UP_JOBS), WARM_UP_SECONDS, poll=0.2):
            raise _no_warm_up(worker)
        before = worker.rss()
        finished = worker.wait_for(lambda: executed_at_least(count + WARM_UP_JOBS), bench.sizes.memory_time_limit, 0.5)
        time.sleep(0.5)
        after = worker.rss() if worker.alive() else None
    finally:
        stopped = worker.stop()
    figures = {
        "jobs": count,
        "jobs_measured": len(bench.log.counts()) - WARM_UP_JOBS,
        "finished": finished,
        "time_limit_s": bench.sizes.memory_time_limit,
        "before": before,
        "after": after,
        "peak_total_mb": peak_mb,
    }
    if after:
        growth_mb = float(after["total_mb"]) - float(before["total_mb"])
        figures |= {
            "growth_mb": growth_mb,
            "growth_pct": 100 * growth_mb / float(before["total_mb"]),
            "children_replaced": before["child_pids"] != after["child_pids"],
        }
    return figures | stopped | worker.log_errors()


def _no_warm_up(worker: Worker) -> Exception:
    errors = [line for line in worker.log_path.read_text(errors="replace").splitlines() if "Error" in line]
    last_error = errors[-1] if errors else "none logged"
    if not worker.alive():
        return WorkerDied(f"exit code {worker.process.returncode} during the warm-up; last error: {last_error}")
    return WorkerStalled(f"ran no warm-up job in {WARM_UP_SECONDS} s; last error: {last_error}")


def _waiting_rows(url: str) -> int:
    tables = table_counts(url)
    return tables["plainworker_jobrequest"] + tables["plainworker_job"]


SCENARIOS = {
    "drain": drain,
    "latency": latency,
    "enqueue_single": enqueue_single,
    "enqueue_single_idle_worker": enqueue_single_idle_worker,
    "enqueue_bulk": enqueue_bulk,
    "memory": memory,
}
