"""Fresh databases for each scenario, cloned from a migrated template.

Migrating takes a few seconds, so each (implementation, database) pair is
migrated once into a template, and every scenario gets its own copy: a copied
file on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. Everything the
harness creates is dropped by ``Databases.drop_all()``.

The harness reads table counts itself (sqlite3 / psycopg) rather than through
the venv under test, and only after the worker has stopped or the queue is
believed empty, so its reads never compete with the worker being measured.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from contextlib import closing
from pathlib import Path

JOB_TABLES = ("plainworker_jobrequest", "plainworker_job", "plainworker_jobresult")


class Databases:
    """Creates templates and per-scenario copies; remembers them to drop them."""

    def __init__(self, server: str, work_dir: Path) -> None:
        self.server = server.rstrip("/")
        self.work_dir = work_dir
        self.run_id = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.pg_names: list[str] = []
        self.counter = 0

    def template(self, kind: str, label: str, plain: Path, app_dir: Path, log: Path) -> str:
        """A migrated database for ``plain`` (the venv's plain script); returns its URL."""
        url = self._new(kind, "tpl_" + re.sub(r"\W", "_", label))
        with open(log, "a") as out:
            migrated = subprocess.run(
                [str(plain), "migrate", "--no-input"],
                check=False,
                cwd=app_dir,
                env={**os.environ, "DATABASE_URL": url},
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if migrated.returncode != 0:
            raise RuntimeError(f"`plain migrate` failed for {label} on {kind}; see {log}")
        return url

    def copy(self, kind: str, template_url: str) -> str:
        """A fresh database with the template's schema; returns its URL."""
        if kind == "sqlite":
            url = self._new(kind, "scenario")
            shutil.copyfile(sqlite_path(template_url), sqlite_path(url))
            return url
        name = self._pg_name("scenario")
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_url.rsplit("/", 1)[1]}"')
        return f"{self.server}/{name}"

    def drop(self, url: str) -> None:
        if url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(sqlite_path(url) + suffix).unlink(missing_ok=True)
            return
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.pg_names.remove(name)

    def drop_all(self) -> None:
        for name in list(self.pg_names):
            self.drop(f"{self.server}/{name}")

    def _new(self, kind: str, label: str) -> str:
        if kind == "sqlite":
            self.counter += 1
            return f"sqlite:///{self.work_dir / f'{label}_{self.counter}.sqlite3'}"
        name = self._pg_name(label)
        self._admin(f'CREATE DATABASE "{name}"')
        return f"{self.server}/{name}"

    def _pg_name(self, label: str) -> str:
        self.counter += 1
        name = f"plainworker_bench_{self.run_id}_{label}_{self.counter}"
        self.pg_names.append(name)
        return name

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.server}/postgres", autocommit=True) as conn:
            conn.execute(sql)


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def table_counts(url: str) -> dict[str, int]:
    """Rows in each job table, plus JobResult rows per status."""
    sql = " UNION ALL ".join(f"SELECT '{table}', COUNT(*) FROM {table}" for table in JOB_TABLES)
    sql += " UNION ALL SELECT 'results_' || LOWER(status), COUNT(*) FROM plainworker_jobresult GROUP BY status"
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_path(url), timeout=30)) as conn:
            rows = conn.execute(sql).fetchall()
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute(sql).fetchall()
    return dict(rows)
