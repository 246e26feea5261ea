"""The benchmark's one job: it does nothing but note that it ran.

Each run appends "<n> <start time> <pid>" to the file named by BENCH_EXEC_LOG
with a single O_APPEND write, so counting executions costs the same few
microseconds under any implementation and never touches the database being
measured. The start time is taken as the first thing run() does, which is
what the pickup-latency scenario compares with the enqueue time.
"""

import os
import time

from plain.worker import Job, register_job

_log_fd = None


def note_execution(n):
    global _log_fd
    started = time.time()
    if _log_fd is None:
        _log_fd = os.open(os.environ["BENCH_EXEC_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_log_fd, f"{n} {started:.6f} {os.getpid()}\n".encode())


@register_job
class NoopJob(Job):
    def __init__(self, n):
        self.n = n

    def run(self):
        note_execution(self.n)
