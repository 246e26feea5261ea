"""A real `plain worker run --max-processes 2` subprocess, and the file its jobs write.

The worker runs in its own session so that stopping it can reach every job
process even when the supervisor does not shut down in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import psutil

WORKER_ARGS = ["worker", "run", "--max-processes", "2", "--stats-every", "0"]


class ExecutionLog:
    """Lines "<n> <start time> <pid>" appended by app.bench.jobs.NoopJob, one per run()."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[tuple[int, float, int]]:
        """Complete lines only: a line being written right now is left for the next read."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        rows = []
        for line in text.split("\n")[:-1]:
            n, started, pid = line.split()
            rows.append((int(n), float(started), int(pid)))
        return rows

    def started_at(self) -> dict[int, float]:
        """First start time of each job number."""
        first: dict[int, float] = {}
        for n, started, _ in self.read():
            first[n] = min(started, first.get(n, started))
        return first

    def counts(self) -> Counter[int]:
        return Counter(n for n, _, _ in self.read())


class Worker:
    """One worker subprocess with its output in a log file."""

    def __init__(self, plain: Path, app_dir: Path, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.started = time.time()
        with open(log_path, "w") as log:
            self.process = subprocess.Popen(
                [str(plain), *WORKER_ARGS],
                cwd=app_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, done: Callable[[], bool], timeout: float, poll: float = 0.1) -> bool:
        """Poll ``done`` until it holds, the worker dies or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if not self.alive():
                return done()
            time.sleep(poll)
        return done()

    def rss(self) -> dict[str, float | int | list[int]]:
        """Resident memory in MB of the supervisor and of all its descendants."""
        parent = psutil.Process(self.process.pid)
        children = parent.children(recursive=True)
        child_rss = 0
        for child in children:
            try:
                child_rss += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        parent_rss = parent.memory_info().rss
        return {
            "parent_mb": parent_rss / 2**20,
            "children_mb": child_rss / 2**20,
            "total_mb": (parent_rss + child_rss) / 2**20,
            "children": len(children),
            "child_pids": sorted(child.pid for child in children),
        }

    def stop(self, timeout: float = 30) -> dict[str, int | bool | None]:
        """SIGTERM, then SIGKILL to the whole session if it has not exited in ``timeout``."""
        died = not self.alive()
        killed = False
        if not died:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
        if killed or died:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)
        return {"worker_died": died, "worker_exit_code": self.process.returncode, "worker_killed": killed}

    def log_errors(self) -> dict[str, int]:
        text = self.log_path.read_text(errors="replace")
        return {
            "db_locked_errors": text.count("database is locked"),
            "tracebacks": text.count("Traceback (most recent call last)"),
        }
