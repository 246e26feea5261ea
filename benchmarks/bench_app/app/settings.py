"""Settings of the benchmark app (copied into a temp dir by the harness).

DATABASE_URL comes from the environment, a fresh database per scenario.
Everything else is left at the package defaults, so the numbers are what a
user gets out of the box. The job lives in the installed package app.bench
(app/bench/jobs.py) because plain.worker 0.27.1 imports the jobs module of
installed packages only, not app/jobs.py.
"""

SECRET_KEY = "plain-worker-benchmarks"
URLS_ROUTER = "app.urls.AppRouter"
TIME_ZONE = "UTC"

INSTALLED_PACKAGES = [
    "plain.models",
    "plain.worker",
    "app.bench",
]
