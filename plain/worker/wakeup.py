"""How an idle worker waits for work: one wakeable ``wait(timeout)``.

Three things end a wait early:

- a local wake-up: a job process finished (future callback) or a signal
  arrived (``signal.set_wakeup_fd`` writes to the same pipe);
- on PostgreSQL, a NOTIFY on ``plainworker_jobrequest`` whose payload is one of
  this worker's queues. A statement trigger on the JobRequest table sends it
  (migration 0004), so it fires on commit for every way a request is created:
  run_in_worker, bulk enqueue, retries and hand-backs;
- on SQLite, a commit by any other connection to the database file: a second
  connection reads ``PRAGMA data_version`` every ``DATA_VERSION_CHECK``
  seconds, a read of shared memory that takes no lock. The worker's own
  commits move it too; that costs one empty claim, never a missed job;
- the timeout, capped at the poll interval where there is no signal (an
  in-memory SQLite database, or a broken LISTEN connection).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import sqlite3
import time
from typing import Any, Protocol

logger = logging.getLogger("plain.worker")

CHANNEL = "plainworker_jobrequest"

#: Seconds between attempts to re-open a broken LISTEN connection.
LISTEN_RETRY_SECONDS = 5.0


class Waker(Protocol):
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; return True if woken for new work."""
        ...

    def wake(self) -> None:
        """Thread-safe: end the current (or next) wait now."""
        ...

    def close(self) -> None: ...


class LocalWaker:
    """A self-pipe; the base of both databases' wakers."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def install_signal_wakeup(self) -> None:
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"\0")

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass

    def _select(self, extra: list[int], timeout: float) -> list[int]:
        try:
            ready, _, _ = select.select([self._read, *extra], [], [], max(timeout, 0))
        except InterruptedError:
            return [self._read]
        if self._read in ready:
            self._drain()
        return ready

    def wait(self, timeout: float) -> bool:
        return bool(self._select([], timeout))

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


#: Seconds between two reads of SQLite's ``PRAGMA data_version`` while idle.
DATA_VERSION_CHECK = 0.01


class PollingWaker(LocalWaker):
    """No signal at all: waits are capped at the poll interval."""

    def __init__(self, poll_interval: float) -> None:
        super().__init__()
        self.poll_interval = poll_interval

    def wait(self, timeout: float) -> bool:
        self._select([], min(timeout, self.poll_interval))
        return True


class DataVersionWaker(PollingWaker):
    """SQLite: wake when another connection commits to the database file.

    SQLite has no notifications, but ``PRAGMA data_version`` on a connection
    changes whenever a different connection has committed. Checking it every
    ``DATA_VERSION_CHECK`` seconds gives an idle worker a pickup delay of about
    that much, where a plain poll would wait up to ``WORKER_POLL_INTERVAL``.
    The poll interval still bounds every wait, as a safety net.
    """

    def __init__(self, connect_params: dict[str, Any], poll_interval: float) -> None:
        super().__init__(poll_interval)
        self._conn = sqlite3.connect(**{**connect_params, "isolation_level": None})
        self._version = self._read_version()

    def _read_version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + min(timeout, self.poll_interval)
        while (remaining := deadline - time.monotonic()) > 0:
            if self._select([], min(remaining, DATA_VERSION_CHECK)):
                return True
            try:
                version = self._read_version()
            except sqlite3.Error as error:  # Infrastructure boundary: wait out the poll instead of spinning.
                logger.warning("Cannot read PRAGMA data_version: %s", error, extra={"event": "data_version_failed"})
                self._select([], deadline - time.monotonic())
                return True
            if version != self._version:
                self._version = version
                return True
        return True

    def close(self) -> None:
        self._conn.close()
        super().close()


class ListenWaker(LocalWaker):
    """PostgreSQL: a dedicated autocommit connection LISTENing for enqueues."""

    def __init__(self, queues: list[str], poll_interval: float) -> None:
        super().__init__()
        self.queues = set(queues)
        self.poll_interval = poll_interval
        self._conn: Any = None
        self._next_attempt = 0.0
        self._connect()

    def _connect(self) -> None:
        from plain.models import db_connection

        self._next_attempt = time.monotonic() + LISTEN_RETRY_SECONDS
        try:
            conn = db_connection.get_new_connection(db_connection.get_connection_params())
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception as error:  # Infrastructure boundary: fall back to polling until it is back.
            logger.warning("LISTEN connection failed, polling instead: %s", error, extra={"event": "listen_failed"})
            self._conn = None
            return
        self._conn = conn
        self._consume()

    def _consume(self) -> bool:
        """Read pending notifications; True if one was for our queues."""
        relevant = False
        for notify in self._conn.notifies(timeout=0):
            relevant = relevant or not notify.payload or notify.payload in self.queues
        return relevant

    def wait(self, timeout: float) -> bool:
        if self._conn is None:
            if time.monotonic() >= self._next_attempt:
                self._connect()
            if self._conn is None:
                # Wake for the next reconnect attempt too: a WORKER_POLL_INTERVAL
                # longer than LISTEN_RETRY_SECONDS must not postpone it.
                retry_in = max(0.0, self._next_attempt - time.monotonic())
                self._select([], min(timeout, self.poll_interval, retry_in))
                return True
        ready = self._select([self._conn.fileno()], timeout)
        if self._conn.fileno() not in ready:
            return bool(ready)
        try:
            return self._consume() or self._read in ready
        except Exception as error:  # Infrastructure boundary: the server went away.
            logger.warning("LISTEN connection lost: %s", error, extra={"event": "listen_lost"})
            self._close_conn()
            return True

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._close_conn()
        super().close()


def make_waker(queues: list[str], poll_interval: float) -> LocalWaker:
    from plain.models import db_connection

    if db_connection.vendor == "postgresql":
        return ListenWaker(queues, poll_interval)
    if db_connection.vendor == "sqlite" and not db_connection.is_in_memory_db():
        return DataVersionWaker(db_connection.get_connection_params(), poll_interval)
    return PollingWaker(poll_interval)
