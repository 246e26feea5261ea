"""Enqueue side of the benchmarks, run by the interpreter of the venv under test.

The harness starts this script with the chosen venv's python, in the
benchmark app's directory, as ``python driver.py <command> '<json options>'``.
It sets Plain up, does one thing and prints one JSON object on stdout. It uses
only the API both implementations share (``Job.run_in_worker``), plus
``Job.run_in_worker_bulk`` where it exists, so it runs unchanged against any
plain.worker version.

Commands:
    prefill   put ``count`` jobs in the queue as fast as the API allows
              (the bulk API, else run_in_worker in one transaction)
    single    ``count`` run_in_worker calls, one transaction each, stopping
              at ``time_limit`` seconds
    bulk      run_in_worker_bulk in chunks of ``chunk``

single and bulk enqueue one untimed job (number -1) first, so that opening the
connection and first-use imports are not part of the figure.
    paced     one run_in_worker every ``interval`` seconds; reports when
              each call returned (its commit time)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any


def prefill(count: int, first: int = 0) -> dict[str, Any]:
    from app.bench.jobs import NoopJob
    from plain.models import transaction

    started = time.perf_counter()
    numbers = range(first, first + count)
    if hasattr(NoopJob, "run_in_worker_bulk"):
        api = "run_in_worker_bulk"
        for chunk_start in range(0, count, 1000):
            NoopJob.run_in_worker_bulk([NoopJob(n) for n in numbers[chunk_start : chunk_start + 1000]])
    else:
        api = "run_in_worker in one transaction"
        with transaction.atomic():
            for n in numbers:
                NoopJob(n).run_in_worker()
    return {"count": count, "seconds": time.perf_counter() - started, "api": api}


def single(count: int, time_limit: float, queue: str = "default", first: int = 0) -> dict[str, Any]:
    from app.bench.jobs import NoopJob

    NoopJob(-1).run_in_worker(queue=queue)  # Connects and imports outside the timing.
    call_seconds = []
    started = time.perf_counter()
    for n in range(first, first + count):
        before = time.perf_counter()
        NoopJob(n).run_in_worker(queue=queue)
        call_seconds.append(time.perf_counter() - before)
        if before + call_seconds[-1] - started > time_limit:
            break
    elapsed = time.perf_counter() - started
    ordered = sorted(call_seconds)
    return {
        "done": len(call_seconds),
        "seconds": elapsed,
        "call_ms_p50": 1000 * ordered[len(ordered) // 2],
        "call_ms_p95": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "call_ms_max": 1000 * ordered[-1],
    }


def bulk(count: int, chunk: int, queue: str = "default") -> dict[str, Any]:
    from app.bench.jobs import NoopJob

    if not hasattr(NoopJob, "run_in_worker_bulk"):
        return {"unsupported": "this plain.worker has no Job.run_in_worker_bulk"}
    NoopJob.run_in_worker_bulk([NoopJob(-1)], queue=queue)  # Connects and imports outside the timing.
    started = time.perf_counter()
    for chunk_start in range(0, count, chunk):
        jobs = [NoopJob(n) for n in range(chunk_start, min(count, chunk_start + chunk))]
        NoopJob.run_in_worker_bulk(jobs, queue=queue)
    return {"done": count, "seconds": time.perf_counter() - started}


def paced(count: int, interval: float, first: int = 0) -> dict[str, Any]:
    from app.bench.jobs import NoopJob

    enqueued_at = {}
    next_at = time.perf_counter()
    for n in range(first, first + count):
        time.sleep(max(0.0, next_at - time.perf_counter()))
        NoopJob(n).run_in_worker()
        enqueued_at[n] = time.time()
        next_at += interval
    return {"enqueued_at": enqueued_at}


COMMANDS: dict[str, Callable[..., dict[str, Any]]] = {
    "prefill": prefill,
    "single": single,
    "bulk": bulk,
    "paced": paced,
}


def main() -> None:
    import plain.runtime

    command, options = sys.argv[1], json.loads(sys.argv[2])
    plain.runtime.setup()
    print(json.dumps(COMMANDS[command](**options)))


if __name__ == "__main__":
    main()
