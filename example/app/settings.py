"""Settings for the plain.worker demo app (SQLite, file next to this project)."""

from pathlib import Path

SECRET_KEY = "plain-worker-demo-not-secret"
URLS_ROUTER = "app.urls.AppRouter"

INSTALLED_PACKAGES = [
    "plain.models",
    "plain.worker",
    "app.users",
]

DATABASE = {
    "ENGINE": "plain.models.backends.sqlite3",
    "NAME": str(Path(__file__).parent.parent / "demo.sqlite3"),
}

# Keep job history for 30 days instead of the default 7.
WORKER_JOB_HISTORY_DAYS = 30
