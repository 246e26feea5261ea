"""The supervisor: the main process of ``plain worker run``.

One loop of named steps (SPEC section 4):

    reap -> dispatch -> settle (record + claim) -> dispatch -> maintain -> wait

- reap: collect outcomes of finished job processes; a process that died takes
  only its own running job with it (recorded LOST, retried if it has retries);
- dispatch: hand claimed jobs to processes with room;
- record: move finished jobs to JobResult in one transaction;
- claim: move runnable JobRequests to Job in one transaction, sized to the
  room left (running + --max-pending-per-process per process);
- maintain: heartbeat, rescue, expire, stats, schedule when due;
- wait: only when there is nothing to do, through the waker.

Each process slot is its own single-process pool (``processes.Slot``): when a
job kills its process, the jobs running in the other processes carry on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
import uuid
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from plain.models import DatabaseError, db_connection
from plain.runtime import settings
from plain.utils import timezone

from . import maintenance, wakeup
from .exceptions import ProcessStartError
from .processes import Slot

if TYPE_CHECKING:
    from .maintenance import Duty
    from .models import Job, Outcome

logger = logging.getLogger("plain.worker")


#: Longest pause after a database error (seconds); pauses double up to this.
MAX_BACKOFF_SECONDS = 30.0

CUT_OFF = "Cancelled: the worker stopped and the shutdown timeout ({timeout:g}s) ran out before this job finished."


class Supervisor:
    def __init__(
        self,
        *,
        queues: list[str],
        max_processes: int,
        max_jobs_per_process: int | None = None,
        max_pending_per_process: int = 10,
        stats_every: float = 0,
        shutdown_timeout: float | None = None,
        extra_duties: list[Duty] | None = None,
    ) -> None:
        from .models import WorkerIdentity

        self.queues = queues
        self.max_processes = max_processes
        self.max_jobs_per_process = max_jobs_per_process
        self.max_pending_per_process = max_pending_per_process
        self.shutdown_timeout = settings.WORKER_SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout
        self.identity = WorkerIdentity(uuid=uuid.uuid4(), hostname=socket.gethostname(), pid=os.getpid())
        self.waker = wakeup.make_waker(queues, settings.WORKER_POLL_INTERVAL)
        self.slots: list[Slot] = []
        self.ready: deque[Job] = deque()  # claimed, not yet handed to a process
        self.unrecorded: list[tuple[Job, Outcome]] = []
        self.stop_requested = 0  # number of SIGTERM/SIGINT received
        self.backoff = 0.0
        self.retry_at = 0.0
        self.more_work = True
        self.maintenance = maintenance.duties(
            identity=self.identity,
            queues=queues,
            max_processes=max_processes,
            stats_every=stats_every,
            running=self.held_count,
            on_lost=self.on_lost,
            extra=extra_duties,
        )

    # lifecycle

    def run(self) -> None:
        self.start()
        try:
            while not self.stop_requested:
                self.step()
        finally:
            self.shutdown()

    def start(self) -> None:
        from .claims import prepare_database
        from .models import Worker

        prepare_database()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.waker.install_signal_wakeup()
        depth = 1 + self.max_pending_per_process
        self.slots = [Slot(depth, self.max_jobs_per_process, self.waker) for _ in range(self.max_processes)]
        self.warm_up()
        # Registered once its processes are up: a Worker row means "ready for jobs".
        Worker.register(self.identity, queues=self.queues, max_processes=self.max_processes, now=timezone.now())
        logger.info(
            "Worker started: queues=%s processes=%d",
            ",".join(self.queues),
            self.max_processes,
            extra={"event": "worker_started", "worker_id": str(self.identity.uuid), "queue": self.queues},
        )

    def warm_up(self, attempts: int = 3) -> None:
        """Wait for every job process to start before claiming, so the first jobs
        don't wait on one slow start while lower-priority jobs run elsewhere.
        A process killed while starting is replaced; one that cannot start at
        all (the app fails to import) stops the worker."""
        for slot in self.slots:
            for attempt in range(1, attempts + 1):
                try:
                    slot.ping.result(timeout=120)
                    break
                except BrokenProcessPool:
                    if attempt == attempts:
                        raise ProcessStartError(
                            f"A job process died {attempts} times while starting; its error is printed above"
                        ) from None
                    slot.replace()

    def on_lost(self, results: list[Any]) -> None:
        """Log jobs recorded LOST; stop our own process if it is still running one (a hung job)."""
        lost = {result.job_uuid for result in results}
        for result in results:
            maintenance.log_lost(result)
        for slot in self.slots:
            if slot.submitted and slot.submitted[0][0].uuid in lost:
                slot.kill()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested += 1

    # one iteration

    def step(self) -> None:
        self.reap()
        self.dispatch()
        if time.monotonic() >= self.retry_at:
            self.guarded(self.settle)
            self.dispatch()
            self.guarded(lambda: self.maintenance.run_due(timezone.now()))
        if not self.stop_requested:
            self.wait_for_work()

    def reap(self) -> None:
        for slot in self.slots:
            finished, unstarted = slot.reap()
            self.unrecorded.extend(finished)
            self.ready.extendleft(reversed(unstarted))
            for job, outcome in finished:
                log_outcome(job, outcome)

    def dispatch(self) -> None:
        """Hand claimed jobs to the processes with the most room."""
        if not self.ready and not self.more_work:
            self.rebalance()
        while self.ready:
            slot = max(self.slots, key=lambda s: s.room)
            if slot.room <= 0:
                return
            if slot.submit(self.ready[0]):
                self.ready.popleft()

    def rebalance(self) -> None:
        """With no more work to claim, an idle process takes jobs queued behind a busy one."""
        if all(slot.submitted for slot in self.slots):
            return
        for slot in self.slots:
            if len(slot.submitted) > 1:
                self.ready.extend(slot.cancel_queued())

    def settle(self) -> None:
        """Record finished jobs and claim replacements in one transaction.

        Two moves share a commit here (a deliberate exception to one move per
        transaction) because commits, not queries, bound a busy worker's speed.
        Memory is only updated once the commit succeeded.
        """
        from plain.models import transaction

        from .models import Job, JobRequest

        batch = self.unrecorded[:]
        limit = self.capacity()
        with transaction.atomic():
            if batch:
                Job.finish(batch, self.identity)
            claimed = (
                JobRequest.claim(queues=self.queues, limit=limit, worker=self.identity, now=timezone.now())
                if limit > 0 and not self.stop_requested
                else []
            )
        del self.unrecorded[: len(batch)]
        self.ready.extend(claimed)
        self.more_work = limit > 0 and len(claimed) == limit

    def record(self) -> None:
        """Record finished jobs on their own (used while stopping)."""
        from .models import Job

        batch = self.unrecorded[:]
        if batch:
            Job.finish(batch, self.identity)
            del self.unrecorded[: len(batch)]

    def capacity(self) -> int:
        """How many more jobs this worker may hold."""
        return sum(slot.depth for slot in self.slots) - self.held_count()

    def held_count(self) -> int:
        return len(self.ready) + sum(len(slot.submitted) for slot in self.slots)

    def wait_for_work(self) -> None:
        if self.more_work and self.capacity() > 0:
            return
        if any(slot.submitted and slot.submitted[0][1].done() for slot in self.slots):
            return
        timeout = self.maintenance.seconds_until_due()
        if time.monotonic() < self.retry_at:
            timeout = min(timeout, self.retry_at - time.monotonic())
        elif self.capacity() > 0:
            timeout = min(timeout, self.seconds_until_delayed())
        self.waker.wait(timeout)

    def seconds_until_delayed(self) -> float:
        from .models import JobRequest

        start_at = self.guarded(lambda: JobRequest.next_start_at(self.queues))
        if start_at is None:
            return 3600.0
        return max(0.0, (start_at - timezone.now()).total_seconds())

    # failures of the database itself

    def guarded(self, action: Any) -> Any:
        """Run a database step; on a database error log once, back off and carry on."""
        try:
            result = action()
        except DatabaseError as error:  # Infrastructure boundary: retried after a pause, nothing dropped.
            self.backoff = min(MAX_BACKOFF_SECONDS, max(0.5, self.backoff * 2))
            self.retry_at = time.monotonic() + self.backoff
            logger.warning(
                "Database error, retrying in %.1fs: %s",
                self.backoff,
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                extra={"event": "database_error", "worker_id": str(self.identity.uuid)},
            )
            close_connection()
            return None
        if self.backoff:
            logger.info("Database is back", extra={"event": "database_recovered"})
            self.backoff = 0.0
            self.reconcile()
        return result

    def reconcile(self) -> None:
        """Hand back jobs a claim committed while its reply was lost with the connection."""
        from .models import Job

        known = [job.id for job in self.ready] + [job.id for slot in self.slots for job, _ in slot.submitted]
        known += [job.id for job, _ in self.unrecorded]
        try:
            Job.release_unknown(self.identity, known)
        except DatabaseError:
            close_connection()

    # shutdown, in order

    def shutdown(self) -> None:
        try:
            self.hand_back()
            self.drain()
            self.cut_off()
        finally:
            self.leave()

    def hand_back(self) -> None:
        """Step 2: jobs claimed but not started go back to the queue unchanged."""
        from .models import Job

        unstarted = list(self.ready)
        self.ready.clear()
        for slot in self.slots:
            unstarted += slot.cancel_queued()
        self.retry_while_stopping(lambda: Job.release(unstarted, self.identity))
        logger.info(
            "Stopping: handed %d unstarted jobs back to the queue, waiting up to %gs for %d running",
            len(unstarted),
            self.shutdown_timeout,
            self.held_count(),
            extra={"event": "worker_stopping", "worker_id": str(self.identity.uuid)},
        )

    def drain(self) -> None:
        """Step 3: let running jobs finish within the shutdown timeout (a second signal ends it)."""
        deadline = time.monotonic() + self.shutdown_timeout
        signals_seen = self.stop_requested
        while self.held_count() and time.monotonic() < deadline and self.stop_requested == signals_seen:
            self.reap()
            self.guarded(self.record)
            self.guarded(lambda: self.maintenance.run_due(timezone.now()))
            if self.held_count():
                self.waker.wait(min(deadline - time.monotonic(), self.maintenance.seconds_until_due()))
        self.reap()

    def cut_off(self) -> None:
        """Step 4: stop the processes and record the jobs they were running as CANCELLED."""
        from .models import JobResultStatuses, Outcome

        error = CUT_OFF.format(timeout=self.shutdown_timeout)
        for slot in self.slots:
            for job, _ in slot.submitted:
                outcome = Outcome.without_report(job, status=JobResultStatuses.CANCELLED, error=error)
                self.unrecorded.append((job, outcome))
            slot.submitted.clear()
        for process in multiprocessing.active_children():
            process.kill()
        for slot in self.slots:
            slot.executor.shutdown(wait=True, cancel_futures=True)
        self.retry_while_stopping(self.record)

    def retry_while_stopping(self, action: Any, attempts: int = 5) -> None:
        """A stopping worker has no next loop to retry in: try a database step a few times, a second apart."""
        for attempt in range(1, attempts + 1):
            try:
                action()
                return
            except DatabaseError as error:  # Infrastructure boundary: leave() reports what stays unrecorded.
                logger.warning(
                    "Database error while stopping (attempt %d of %d): %s",
                    attempt,
                    attempts,
                    error,
                    extra={"event": "database_error", "worker_id": str(self.identity.uuid)},
                )
                close_connection()
                time.sleep(1)

    def leave(self) -> None:
        from .models import Worker

        if self.unrecorded:
            logger.error(
                "Stopped with %d outcomes unrecorded (database unavailable); "
                "their jobs will be recorded LOST by another worker",
                len(self.unrecorded),
                extra={"event": "outcomes_unrecorded"},
            )
        try:
            Worker.leave(self.identity)
        except DatabaseError:
            close_connection()
        self.waker.close()
        logger.info("Worker stopped", extra={"event": "worker_stopped", "worker_id": str(self.identity.uuid)})


def close_connection() -> None:
    try:
        db_connection.close()
    except DatabaseError:
        pass


def log_outcome(job: Job, outcome: Outcome) -> None:
    level = logging.DEBUG if outcome.status == "SUCCESSFUL" else logging.WARNING
    if logger.isEnabledFor(level):
        duration = (outcome.ended_at - (outcome.started_at or outcome.ended_at)).total_seconds()
        logger.log(
            level,
            "Job %s %s in %.3fs",
            job.job_class,
            outcome.status.lower(),
            duration,
            extra={
                "event": "job_finished",
                "job_uuid": str(job.uuid),
                "job_class": job.job_class,
                "queue": job.queue,
                "status": outcome.status,
            },
        )
