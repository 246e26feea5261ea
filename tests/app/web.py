"""Views the admin-enabled and telemetry tests reach over HTTP.

``LoginView`` is a test-only login (an admin user's email, no password): the
test app has no password package, and the admin only needs a logged-in user
whose ``is_admin`` is true. ``EnqueueView`` enqueues a job inside a web
request, so a test can follow the trace from the request to the job.
"""

from __future__ import annotations

from html import escape

from plain.http import JsonResponse, Response, ResponseRedirect
from plain.urls import Router, path
from plain.views import View

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Log in</title></head>
<body>
<form method="post">
  <p>{error}</p>
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autofocus>
  <button type="submit">Log in</button>
</form>
</body></html>
"""


class LoginView(View):
    def get(self) -> Response:
        return Response(LOGIN_PAGE.format(error=""))

    def post(self) -> Response:
        from plain.auth import login

        from .users.models import User

        email = self.request.data.get("email", "")
        user = User.objects.filter(email=email, is_admin=True).first()
        if user is None:
            return Response(LOGIN_PAGE.format(error=f"No admin user {escape(email)}"), status_code=403)
        login(self.request, user)
        return ResponseRedirect(self.request.query_params.get("next") or "/admin/")


class EnqueueView(View):
    """POST enqueues RecordJob(key) and answers with the stored trace ids."""

    def post(self) -> JsonResponse:
        from .jobs import RecordJob

        request = RecordJob(self.url_kwargs["key"]).run_in_worker()
        return JsonResponse({"uuid": str(request.uuid), "trace_id": request.trace_id, "span_id": request.span_id})


class WebRouter(Router):
    """The views above, without the admin (usable from the base test app too)."""

    namespace = ""
    urls = [
        path("login/", LoginView, name="login"),
        path("enqueue/<str:key>/", EnqueueView, name="enqueue"),
    ]
