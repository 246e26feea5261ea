"""Benchmark harness for plain.worker: `bash benchmarks/run --help`.

Runs each scenario (scenarios.py) for each implementation (a virtualenv with
some plain.worker installed) on each database, every run on a fresh database,
and prints one JSON line per (implementation, database, scenario) on stdout.
Progress and the summary table (report.py) go to stderr, so
``bash benchmarks/run > results.jsonl`` keeps the JSON clean.

This script runs under the repository's own .venv (it needs psutil and
psycopg); the implementations under test only ever run in their own venvs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from fresh_db import Databases
from report import summary
from scenarios import (
    SCENARIOS,
    Bench,
    EnqueueFailed,
    Implementation,
    NotApplicable,
    Sizes,
    WorkerDied,
    WorkerStalled,
)

HERE = Path(__file__).parent
REPO = HERE.parent
PUBLISHED_VENVS = HERE / ".venvs"
QUICK = Sizes(
    drain_jobs=300,
    latency_jobs=20,
    enqueue_jobs=200,
    bulk_jobs=2000,
    memory_jobs=1000,
    time_limit=8,
    memory_time_limit=10,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bash benchmarks/run",
        description="Measure plain.worker: drain, pickup latency, enqueue and memory, on SQLite and PostgreSQL.",
    )
    parser.add_argument(
        "--db",
        action="append",
        choices=["sqlite", "postgres"],
        help="database to run on; repeat for both (default: both)",
    )
    parser.add_argument(
        "--venv",
        action="append",
        metavar="LABEL=PATH",
        help="a virtualenv with plain.worker installed; repeatable; replaces the default "
        "ours=<repo>/.venv. The first one is the base of the ratios.",
    )
    parser.add_argument(
        "--compare-published",
        nargs="?",
        const="0.27.1",
        metavar="VERSION",
        help="also run the published plain.worker (default 0.27.1), installed with uv "
        f"into {PUBLISHED_VENVS.relative_to(REPO)}/published-VERSION",
    )
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="scenario to run; repeatable (default: all)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each scenario this many times, implementations taking turns; the summary shows medians (default: 1)",
    )
    parser.add_argument("--quick", action="store_true", help=f"small sizes, to check the harness works: {QUICK}")
    defaults = Sizes()
    for size in fields(Sizes):
        parser.add_argument(
            f"--{size.name.replace('_', '-')}",
            type=int if size.type == "int" else float,
            default=None,
            help=f"{size.metadata['help']} (default {getattr(defaults, size.name)})",
        )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL (default: %(default)s, or $BENCH_POSTGRES)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, SQLite files)")
    return parser.parse_args(argv)


def chosen_sizes(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else Sizes()
    overrides = {size.name: getattr(args, size.name) for size in fields(Sizes) if getattr(args, size.name) is not None}
    return Sizes(**{**asdict(base), **overrides})


def implementations(args: argparse.Namespace) -> list[Implementation]:
    venvs = [entry.partition("=")[::2] for entry in args.venv or [f"ours={REPO / '.venv'}"]]
    if any(not label or not path for label, path in venvs):
        sys.exit("--venv takes LABEL=PATH, for example --venv main=/work/main/.venv")
    if args.compare_published:
        venvs.append((f"published-{args.compare_published}", str(published_venv(args.compare_published))))
    found = []
    for label, path in venvs:
        venv = Path(path).resolve()
        version = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import importlib.metadata as m, psycopg; print(m.version('plain.worker'))",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if version.returncode != 0:
            sys.exit(f"{label}: {venv} has no plain.worker and psycopg importable:\n{version.stderr.strip()}")
        found.append(Implementation(label, venv, version.stdout.strip()))
    return found


def published_venv(version: str) -> Path:
    """A venv with plain.worker==version from PyPI, created once and reused."""
    venv = PUBLISHED_VENVS / f"published-{version}"
    if not (venv / "bin" / "plain").exists():
        progress(f"installing plain.worker=={version} into {venv}")
        subprocess.run([sys.executable, "-m", "uv", "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "uv",
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                f"plain.worker=={version}",
                "psycopg[binary]",
                "psutil",
            ],
            check=True,
        )
    return venv


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_scenario(name: str, bench: Bench, database: str) -> dict[str, Any]:
    implementation = bench.implementation
    line: dict[str, Any] = {
        "implementation": implementation.label,
        "version": implementation.version,
        "database": database,
        "scenario": name,
    }
    started = time.monotonic()
    try:
        figures = SCENARIOS[name](bench)
        line |= {"status": "ok", **figures}
    except NotApplicable as reason:
        line |= {"status": "n/a", "reason": str(reason)}
    except WorkerDied as reason:
        line |= {"status": "died", "reason": str(reason), "worker_died": True}
    except WorkerStalled as reason:
        line |= {"status": "stalled", "reason": str(reason)}
    except EnqueueFailed as reason:
        line |= {"status": "failed", "reason": str(reason), "logs": str(bench.out_dir)}
    except Exception as error:  # noqa: BLE001 - the scenario boundary: report it, go on with the next one.
        line |= {"status": "error", "error": f"{type(error).__name__}: {error}", "logs": str(bench.out_dir)}
    line["scenario_seconds"] = round(time.monotonic() - started, 2)
    return line


def headline(line: dict[str, Any]) -> str:
    if line["status"] != "ok":
        return line.get("reason") or line.get("error", "")
    shown = ("jobs_per_s", "p50_ms", "p95_ms", "growth_mb", "duplicates", "db_locked_errors", "finished")
    return ", ".join(
        f"{key}={round(line[key], 2) if isinstance(line[key], float) else line[key]}" for key in shown if key in line
    )


def run_database(
    database: str,
    scenario_names: list[str],
    repeats: int,
    targets: list[Implementation],
    sizes: Sizes,
    dbs: Databases,
    *,
    app_dir: Path,
    out_dir: Path,
) -> list[dict[str, Any]]:
    """Every scenario on one database, implementations taking turns; prints each JSON line as it comes."""
    out_dir.mkdir()
    templates = {
        target.label: dbs.template(
            database,
            target.label,
            target.plain,
            app_dir,
            out_dir / f"migrate-{target.label}.log",
        )
        for target in targets
    }
    lines = []
    for name in scenario_names:
        for repeat in range(1, repeats + 1):
            for target in targets:
                run_dir = out_dir / target.label / f"{name}-{repeat}"
                run_dir.mkdir(parents=True)
                url = dbs.copy(database, templates[target.label])
                line = run_scenario(name, Bench(target, url, app_dir, run_dir, sizes), database) | {"repeat": repeat}
                dbs.drop(url)
                lines.append(line)
                print(json.dumps(line), flush=True)
                progress(f"[{database}] {name:<27} {target.label:<18} {line['status']:<6} {headline(line)}")
    for url in templates.values():
        dbs.drop(url)
    return lines


def main(argv: list[str]) -> int:
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop workers and drop the databases.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args = parse_args(argv)
    sizes = chosen_sizes(args)
    databases = args.db or ["sqlite", "postgres"]
    scenario_names = args.scenario or list(SCENARIOS)
    targets = implementations(args)
    work = Path(tempfile.mkdtemp(prefix="plainworker-bench-"))
    shutil.copytree(HERE / "bench_app", work / "app_root")
    dbs = Databases(args.postgres, work)
    lines: list[dict[str, Any]] = []
    progress(f"sizes: {sizes}\nwork directory: {work}")
    try:
        for database in databases:
            lines += run_database(
                database,
                scenario_names,
                args.repeat,
                targets,
                sizes,
                dbs,
                app_dir=work / "app_root",
                out_dir=work / database,
            )
    finally:
        dbs.drop_all()
        failed = any(line["status"] == "error" for line in lines)
        if args.keep or failed or any(line["status"] not in ("ok", "n/a") for line in lines):
            progress(f"logs kept in {work}")
        else:
            shutil.rmtree(work)
    progress("")
    progress(summary(lines, [target.label for target in targets], databases))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
