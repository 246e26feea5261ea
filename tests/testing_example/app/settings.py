"""Settings for the app the README's Testing example (plain/worker/README.md) runs in.

tests/test_testing_example.py copies this project to a temporary directory,
writes the example's code blocks into it and runs pytest there, with
plain.models' own rolled-back `db` fixture. The database comes from DATABASE_URL.
"""

SECRET_KEY = "plain-worker-testing-example"
URLS_ROUTER = "app.urls.AppRouter"
TIME_ZONE = "UTC"

INSTALLED_PACKAGES = [
    "plain.models",
    "plain.worker",
    "app.users",
]
