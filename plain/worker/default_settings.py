"""Every WORKER_* setting, with its default and unit.

Each can also come from the environment as PLAIN_<NAME> (JSON-parsed), which is
how the tests shorten the timeouts.
"""

#: Days of JobResult history kept by `plain worker clear-completed` and the chore.
WORKER_JOB_HISTORY_DAYS: int = 7

#: Seconds after which a job that is still running is recorded as LOST.
WORKER_JOBS_LOST_AFTER: int = 60 * 60 * 24

#: Scheduled jobs: a list of (dotted job class or "cmd:<shell command>", cron string or Schedule).
WORKER_JOBS_SCHEDULE: list = []

#: Dotted paths of classes that wrap every job run, outermost first.
WORKER_MIDDLEWARE: list[str] = [
    "plain.worker.middleware.AppLoggerMiddleware",
]

#: Seconds between a worker's heartbeats (sent by its main process).
WORKER_HEARTBEAT_INTERVAL: int | float = 10

#: Seconds without a heartbeat after which other workers rescue a worker's jobs.
WORKER_HEARTBEAT_TIMEOUT: int | float = 60

#: Seconds a stopping worker waits for its running jobs (also --shutdown-timeout).
WORKER_SHUTDOWN_TIMEOUT: int | float = 30

#: Longest an idle worker waits before looking at the queue, wake-up signal or not.
WORKER_POLL_INTERVAL: int | float = 1

#: Deprecated name from plain.worker <= 0.27 (seconds). When set, it takes the
#: place of WORKER_JOB_HISTORY_DAYS so an upgraded app keeps its retention.
WORKER_JOBS_CLEARABLE_AFTER: int | None = None

#: Tests only: run_in_worker() runs the jobs that are due right away, in the
#: calling process and transaction (see plain.worker.testing). Never in production.
WORKER_EAGER: bool = False
