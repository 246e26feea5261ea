"""Settings for the test app with plain.admin installed.

Selected with PLAIN_SETTINGS_MODULE=app.settings_admin by the admin, browser
and cross-process telemetry tests, which serve this app over HTTP from a
subprocess. The base ``app.settings`` stays free of the admin packages, so the
rest of the suite shows plain.worker working without them.

``app.tracing`` installs an OpenTelemetry SDK that writes spans to a file when
PLAINWORKER_TEST_SPANS is set (and does nothing otherwise).
"""

from . import settings as base
from .settings import *  # noqa: F403

INSTALLED_PACKAGES = [
    *base.INSTALLED_PACKAGES,
    "plain.sessions",
    "plain.auth",
    "plain.htmx",
    "plain.tailwind",
    "plain.elements",
    "plain.admin",
    "app.tracing",
]

URLS_ROUTER = "app.urls_admin.AdminAppRouter"

MIDDLEWARE = [
    "plain.sessions.middleware.SessionMiddleware",
    "plain.auth.middleware.AuthenticationMiddleware",
    "plain.admin.AdminMiddleware",
]

AUTH_USER_MODEL = "users.User"
AUTH_LOGIN_URL = "login"

# Served over plain HTTP on 127.0.0.1 by app.serve. DEBUG makes Plain serve the
# admin's assets straight from the installed packages (no `plain build` step).
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
HTTPS_REDIRECT_ENABLED = False
SESSION_COOKIE_SECURE = False
