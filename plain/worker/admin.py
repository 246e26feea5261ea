"""Admin pages for the three job tables, with dashboard cards and a Retry action.

plain.admin imports ``<package>.admin`` of every installed package when it
is ready; nothing in plain.worker imports this module, so an app without
plain.admin never loads it.

Delete is a cancel through the model transitions (``JobRequest.cancel()``,
``Job.cancel()``): the row leaves a CANCELLED result behind, and a worker still
running a deleted job discards its outcome. Retry goes through
``JobResult.retry()``, the result -> request move in models.py.
"""

from __future__ import annotations

from typing import Any

from plain.admin.cards import Card
from plain.admin.views import (
    AdminModelDeleteView,
    AdminModelDetailView,
    AdminModelListView,
    AdminViewset,
    register_viewset,
)
from plain.http import Response, ResponseRedirect
from plain.utils import timezone

from .models import Job, JobRequest, JobResult, JobResultStatuses
from .stats import runnable

NAV_SECTION = "Worker"

#: The result list's filters (plain.admin "displays") and the queryset method each applies.
RESULT_FILTERS = {
    "Successful": "successful",
    "Errored": "errored",
    "Cancelled": "cancelled",
    "Lost": "lost",
    "Retried": "retried",
}


def retry_results(ids: list[Any]) -> int:
    """Retry the retryable results among ``ids`` (failed, not retried yet); return how many."""
    retried = 0
    for result in JobResult.objects.retryable().filter(id__in=ids).order_by("id"):
        if result.retry() is not None:
            retried += 1
    return retried


def duration(result: JobResult) -> str:
    if not result.started_at or not result.ended_at:
        return ""
    return f"{(result.ended_at - result.started_at).total_seconds():.3f}s"


def find_request(request_uuid: Any) -> tuple[str, str] | None:
    """Where the job of a request uuid is now: (label, admin url) of its row in any table."""
    if request_uuid is None:
        return None
    if request := JobRequest.objects.filter(uuid=request_uuid).first():
        return "Retry (waiting)", JobRequestViewset.DetailView.get_view_url(request)
    if job := Job.objects.filter(job_request_uuid=request_uuid).first():
        return "Retry (running)", JobViewset.DetailView.get_view_url(job)
    if result := JobResult.objects.filter(job_request_uuid=request_uuid).order_by("-id").first():
        return f"Retry ({result.get_status_display().lower()})", JobResultViewset.DetailView.get_view_url(result)
    return None


# Dashboard cards


class ResultCard(Card):
    """How many results one of the list's filters shows, linking to that filtered list."""

    filter_name = ""

    def get_number(self) -> int:
        return getattr(JobResult.objects, RESULT_FILTERS[self.filter_name])().count()

    def get_link(self) -> str:
        return f"{JobResultViewset.ListView.get_view_url()}?display={self.filter_name}"


class SuccessfulCard(ResultCard):
    title = "Successful"
    description = "Finished without an error"
    filter_name = "Successful"
    text = "View successful"


class ErroredCard(ResultCard):
    title = "Errored"
    description = "Raised an exception"
    filter_name = "Errored"
    text = "View errored"


class LostCard(ResultCard):
    title = "Lost"
    description = "Its process or worker died"
    filter_name = "Lost"
    text = "View lost"


class RetriedCard(ResultCard):
    title = "Retried"
    description = "Failed and enqueued again"
    filter_name = "Retried"
    text = "View retried"


class WaitingCard(Card):
    title = "Waiting"
    text = "View requests"

    def get_number(self) -> int:
        return JobRequest.objects.filter(runnable(timezone.now())).count()

    def get_description(self) -> str:
        later = JobRequest.objects.exclude(runnable(timezone.now())).count()
        return f"Runnable now ({later} more scheduled for later)" if later else "Runnable now"

    def get_link(self) -> str:
        return JobRequestViewset.ListView.get_view_url()


class RunningCard(Card):
    title = "Running"
    description = "Claimed by a worker"
    text = "View jobs"

    def get_number(self) -> int:
        return Job.objects.count()

    def get_link(self) -> str:
        return JobViewset.ListView.get_view_url()


DASHBOARD_CARDS: list[type[Card]] = [
    SuccessfulCard,
    ErroredCard,
    LostCard,
    RetriedCard,
    WaitingCard,
    RunningCard,
]


# Views


class JobListView(AdminModelListView):
    """What the three lists share: their nav section and the dashboard cards."""

    nav_section = NAV_SECTION
    nav_icon = "gear"
    cards = DASHBOARD_CARDS


DELETED_REASON = "Cancelled: deleted from the admin."


class DeleteRowView(AdminModelDeleteView):
    """Delete on POST, then back to the list.

    plain.admin 0.41's confirmation form posts no fields, which its form-based
    DeleteView treats as an unbound form and ignores; this view needs none.
    """

    def post(self) -> Response:
        type(self.object).cancel([self.object.id], reason=DELETED_REASON)
        return ResponseRedirect(self.get_list_url())


class CancellableListView(JobListView):
    """The list of a table whose rows can be deleted, which cancels them."""

    actions = ["Delete"]

    def perform_action(self, action: str, target_ids: list) -> Response | None:
        if action == "Delete":
            self.model.cancel(list(target_ids), reason=DELETED_REASON)
        return None


@register_viewset
class JobRequestViewset(AdminViewset):
    class ListView(CancellableListView):
        model = JobRequest
        title = "Job requests"
        path = "worker/requests/"
        fields = ["id", "job_class", "queue", "priority", "retry_attempt", "start_at", "created_at", "uuid"]
        search_fields = ["uuid", "job_class", "queue", "unique_key"]
        queryset_order = ["-priority", "start_at", "id"]

    class DetailView(AdminModelDetailView):
        model = JobRequest
        title = "Job request"
        path = "worker/requests/<int:id>/"

    class DeleteView(DeleteRowView):
        model = JobRequest
        path = "worker/requests/<int:id>/delete/"


@register_viewset
class JobViewset(AdminViewset):
    class ListView(CancellableListView):
        model = Job
        title = "Jobs"
        path = "worker/jobs/"
        fields = ["id", "job_class", "queue", "priority", "retry_attempt", "started_at", "worker_uuid", "uuid"]
        search_fields = ["uuid", "job_request_uuid", "job_class", "queue", "worker_uuid"]
        queryset_order = ["started_at", "id"]

    class DetailView(AdminModelDetailView):
        model = Job
        title = "Job"
        path = "worker/jobs/<int:id>/"

    class DeleteView(DeleteRowView):
        model = Job
        path = "worker/jobs/<int:id>/delete/"


@register_viewset
class JobResultViewset(AdminViewset):
    class ListView(JobListView):
        model = JobResult
        title = "Job results"
        path = "worker/results/"
        fields = ["id", "job_class", "status", "queue", "retry_attempt", "ended_at", "uuid"]
        search_fields = ["uuid", "job_uuid", "job_request_uuid", "job_class", "queue"]
        queryset_order = ["-created_at", "-id"]
        displays = list(RESULT_FILTERS)
        actions = ["Retry"]

        def get_initial_queryset(self) -> Any:
            queryset = JobResult.objects.all()
            if method := RESULT_FILTERS.get(self.display):
                queryset = getattr(queryset, method)()
            return queryset

        def perform_action(self, action: str, target_ids: list) -> Response | None:
            if action == "Retry":
                retry_results(target_ids)
            return None

    class DetailView(AdminModelDetailView):
        model = JobResult
        title = "Job result"
        path = "worker/results/<int:id>/"
        template_name = "admin/plainworker/jobresult_detail.html"

        def get_fields(self) -> list[str]:
            # The error has its own readable block above the field list.
            return [name for name in super().get_fields() if name != "error"]

        def get_template_context(self) -> dict[str, Any]:
            context = super().get_template_context()
            context["can_retry"] = self.can_retry()
            context["duration"] = duration(self.object)
            context["is_failure"] = self.object.status != JobResultStatuses.SUCCESSFUL
            return context

        def can_retry(self) -> bool:
            return JobResult.objects.retryable().filter(id=self.object.id).exists()

        def get_links(self) -> dict[str, str]:
            links = super().get_links()
            if found := find_request(self.object.retry_job_request_uuid):
                label, url = found
                links[label] = url
            previous = JobResult.objects.filter(retry_job_request_uuid=self.object.job_request_uuid).first()
            if previous:
                links["Previous attempt"] = self.get_view_url(previous)
            return links

        def post(self) -> Response:
            """The detail page's Retry button."""
            if self.can_retry():
                self.object.retry()
            # Back to this page, whose header now links to wherever the retry is.
            return ResponseRedirect(self.request.path)
