"""Settings for the test app.

The database comes from DATABASE_URL (tests/conftest.py creates a fresh
SQLite file or PostgreSQL database per test session).
"""

SECRET_KEY = "plain-worker-tests"
URLS_ROUTER = "app.urls.AppRouter"
TIME_ZONE = "UTC"

INSTALLED_PACKAGES = [
    "plain.models",
    "plain.worker",
    "app.users",
    "app.records",
]
