"""One job process: a one-process ``ProcessPoolExecutor`` and the jobs queued in it.

Each of a worker's ``--max-processes`` slots is its own pool, so a job that
kills its process (``os._exit``, SIGKILL, a segfault, the OOM killer) breaks
only its own slot. Futures of a one-process pool finish in submission order,
so the oldest unfinished one is the job that was running when the process
died; the ones behind it never started and can run in the replacement.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from . import execution, wakeup

if TYPE_CHECKING:
    from .models import Job, Outcome

logger = logging.getLogger("plain.worker")

LOST_PROCESS = (
    "Lost: the process running this job died abruptly (os._exit, a signal such as "
    "SIGKILL, a segmentation fault or the out-of-memory killer)."
)


def task_for(job: Job) -> execution.Task:
    return execution.Task(
        job_uuid=str(job.uuid),
        job_request_uuid=str(job.job_request_uuid),
        job_class=job.job_class,
        parameters=job.parameters,
        queue=job.queue,
        priority=job.priority,
        retries=job.retries,
        retry_attempt=job.retry_attempt,
        unique_key=job.unique_key,
        trace_id=job.trace_id,
        span_id=job.span_id,
    )


class Slot:
    """One job process (a single-worker ProcessPoolExecutor) and its futures, oldest first."""

    def __init__(self, depth: int, max_jobs_per_process: int | None, waker: wakeup.LocalWaker) -> None:
        self.depth = depth
        self.max_jobs_per_process = max_jobs_per_process
        self.waker = waker
        self.submitted: deque[tuple[Job, Future]] = deque()
        self.executor = self._new_executor()
        self.jobs_in_process = 0

    def _new_executor(self) -> ProcessPoolExecutor:
        # Recycling after --max-jobs-per-process is done here rather than with
        # max_tasks_per_child, which hangs a one-process pool on Python 3.11.
        self.jobs_in_process = 0
        self.broken = False
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=execution.initialize,
        )
        # The first task reports the process id (and starts the process now).
        self.ping = executor.submit(execution.ping)
        return executor

    def kill(self) -> None:
        """SIGKILL this slot's process; reap() then sees a broken pool as usual."""
        try:
            os.kill(self.ping.result(timeout=5), signal.SIGKILL)
        except (OSError, TimeoutError, BrokenProcessPool):
            pass

    @property
    def exhausted(self) -> bool:
        limit = self.max_jobs_per_process
        return limit is not None and self.jobs_in_process >= limit

    @property
    def room(self) -> int:
        return 0 if self.exhausted or self.broken else self.depth - len(self.submitted)

    def submit(self, job: Job) -> bool:
        """Queue a job in this process; False if the process has died (reap() replaces it)."""
        try:
            future = self.executor.submit(execution.execute, task_for(job))
        except BrokenProcessPool:
            self.broken = True
            return False
        self.jobs_in_process += 1
        future.add_done_callback(lambda _: self.waker.wake())
        self.submitted.append((job, future))
        return True

    def reap(self) -> tuple[list[tuple[Job, Outcome]], list[Job]]:
        """Return (finished, never started). A broken process is replaced."""
        finished: list[tuple[Job, Outcome]] = []
        while self.submitted and self.submitted[0][1].done():
            job, future = self.submitted.popleft()
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                # Futures finish in submission order in a one-process pool, so
                # the oldest unfinished one was running when the process died;
                # the rest were queued behind it and never started.
                finished.append((job, interrupted(job, "LOST", LOST_PROCESS)))
                unstarted = [queued for queued, _ in self.submitted]
                self.submitted.clear()
                self.replace()
                return finished, unstarted
            if error is not None:
                # Failed outside execute(), for example an outcome that could not be pickled.
                finished.append((job, interrupted(job, "ERRORED", f"{type(error).__name__}: {error}")))
            else:
                finished.append((job, future.result()))
        if self.broken and not self.submitted:
            self.replace()  # the process died between jobs
        elif self.exhausted and not self.submitted:
            self.executor.shutdown(wait=False)
            self.executor = self._new_executor()
        return finished, []

    def replace(self) -> None:
        logger.warning("Replacing a job process that died", extra={"event": "process_replaced"})
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new_executor()

    def cancel_queued(self) -> list[Job]:
        """Take back the futures that have not reached the process yet."""
        kept: deque[tuple[Job, Future]] = deque()
        cancelled = []
        for job, future in self.submitted:
            if future.cancel():
                cancelled.append(job)
            else:
                kept.append((job, future))
        self.submitted = kept
        return cancelled


def interrupted(job: Job, status: str, error: str) -> Outcome:
    """The outcome of a run that did not report one itself (the retry delay comes from the class)."""
    from .models import Outcome

    return Outcome.without_report(job, status=status, error=error)
