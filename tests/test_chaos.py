"""Chaos: several real workers drain thousands of jobs while job processes and
whole workers are SIGKILLed, SIGTERMed and restarted at random. Then the
invariants of the Guarantees section are checked.

Bounded in time; every process it starts is killed at the end (worker fixture).
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter, defaultdict

import psutil
from conftest import DB_KIND, assert_each_job_in_one_table, wait_until

SIZES = {
    # jobs, workers, seconds of chaos
    "postgres": (3000, 3, 45),
    "sqlite": (1000, 2, 25),
}


def job_processes(worker_pid: int) -> list[psutil.Process]:
    """The spawned job processes of a worker (not multiprocessing's resource tracker)."""
    try:
        children = psutil.Process(worker_pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_chaos_every_job_ends_once_and_nothing_is_left(worker):
    from app.jobs import ChaosJob
    from app.records.models import Execution

    from plain.worker import Job
    from plain.worker.models import Job as JobRow
    from plain.worker.models import JobRequest, JobResult, Worker

    total, worker_count, chaos_seconds = SIZES[DB_KIND]
    rng = random.Random(1234)
    for start in range(0, total, 1000):
        Job.run_in_worker_bulk(
            [ChaosJob(f"chaos-{i}", rng.choice([5, 20, 50, 100])) for i in range(start, min(total, start + 1000))]
        )

    env = {"PLAIN_WORKER_SHUTDOWN_TIMEOUT": "2"}
    workers = [worker(env=env) for _ in range(worker_count)]
    wait_until(lambda: Worker.objects.count() == worker_count, timeout=60, message="workers to start")

    events: Counter[str] = Counter()
    plan: list[str] = []
    deadline = time.monotonic() + chaos_seconds
    while time.monotonic() < deadline and (JobRequest.objects.exists() or JobRow.objects.exists()):
        time.sleep(rng.uniform(0.3, 1.2))
        alive = [w for w in workers if w.alive()]
        victim = rng.choice(alive)
        if not plan:
            plan = ["kill-job-process"] * 3 + ["kill-worker", "stop-worker"]
            rng.shuffle(plan)
        action = plan.pop()
        if action == "kill-job-process":
            processes = job_processes(victim.pid)
            if processes:
                rng.choice(processes).kill()
                events[action] += 1
            continue
        if action == "kill-worker":
            victim.kill()
        else:
            victim.stop(signal.SIGTERM)
        events[action] += 1
        workers.remove(victim)
        workers.append(worker(env=env))

    wait_until(
        lambda: not JobRequest.objects.exists() and not JobRow.objects.exists(),
        timeout=180,
        interval=0.5,
        message="the queue to drain after the chaos",
    )
    assert all(w.alive() for w in workers), "surviving workers must not have crashed"

    results = list(JobResult.objects.all())
    by_key: dict[str, list] = defaultdict(list)
    for result in results:
        by_key[result.parameters["args"][0]].append(result)
    executions = Counter(Execution.objects.values_list("key", flat=True))

    # Every job has exactly one final outcome, and its attempts form an unbroken chain.
    assert len(by_key) == total
    for key, attempts in by_key.items():
        attempts.sort(key=lambda r: r.retry_attempt)
        assert [r.retry_attempt for r in attempts] == list(range(len(attempts))), key
        finals = [r for r in attempts if r.retry_job_request_uuid is None]
        assert len(finals) == 1, key
        assert all(r.retry_job_request_uuid for r in attempts[:-1]), key
        # Only the last attempt may be a success, and it is unless retries ran out.
        assert all(r.status != "SUCCESSFUL" for r in attempts[:-1]), key
        if attempts[-1].status != "SUCCESSFUL":
            assert attempts[-1].retry_attempt == attempts[-1].retries, key
        # Side effects: at least once when successful; more than once only when a
        # kill interrupted a run (at-least-once), never more than the attempts.
        runs = executions.get(key, 0)
        if attempts[-1].status == "SUCCESSFUL":
            assert runs >= 1, key
        interrupted = sum(1 for r in attempts if r.status in ("LOST", "CANCELLED"))
        assert runs <= 1 + interrupted, (key, runs, [r.status for r in attempts])
        assert runs <= len(attempts), key

    statuses = Counter(r.status for r in results)
    assert statuses["ERRORED"] == 0, statuses
    assert sum(statuses.values()) == len(results) == total + sum(len(a) - 1 for a in by_key.values())
    assert_each_job_in_one_table()
    assert events["kill-job-process"] and events["kill-worker"] and events["stop-worker"], events
    print(f"\nchaos on {DB_KIND}: {dict(events)}; outcomes {dict(statuses)}")
