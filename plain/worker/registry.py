"""Job name <-> class map.

A job's stored name is its dotted path (``app.jobs.WelcomeUserJob``). Aliases
keep rows written under an old name runnable after a rename.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import TYPE_CHECKING, TypeVar, overload

from .exceptions import JobNotRegistered

if TYPE_CHECKING:
    from .jobs import Job

JobT = TypeVar("JobT", bound="type[Job]")


def job_class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class JobsRegistry:
    def __init__(self) -> None:
        self.jobs: dict[str, type[Job]] = {}
        self.aliases: dict[str, str] = {}
        self.ready = False

    def register(self, cls: type[Job], alias: str = "") -> None:
        name = job_class_name(cls)
        self.jobs[name] = cls
        if alias:
            self.aliases[alias] = name

    def get_class(self, name: str) -> type[Job]:
        """Return the class stored under a name or alias, or raise JobNotRegistered."""
        cls = self._lookup(name)
        if cls is None and "." in name:
            # A job defined outside an auto-imported jobs.py registers when its
            # module is imported, so try importing it before giving up.
            try:
                import_module(name.rsplit(".", 1)[0])
            except ImportError:
                pass
            cls = self._lookup(name)
        if cls is None:
            raise JobNotRegistered(name)
        return cls

    def _lookup(self, name: str) -> type[Job] | None:
        return self.jobs.get(name) or self.jobs.get(self.aliases.get(name, ""))

    def names(self) -> list[str]:
        return sorted(self.jobs)


jobs_registry = JobsRegistry()


@overload
def register_job(cls: JobT, /) -> JobT: ...
@overload
def register_job(*, alias: str = "") -> Callable[[JobT], JobT]: ...
def register_job(cls=None, /, *, alias=""):
    """Register a Job subclass so workers can find it by name.

    Use bare (``@register_job``) or with the class's previous dotted name
    (``@register_job(alias="app.jobs.OldName")``).
    """

    def decorator(job_cls):
        jobs_registry.register(job_cls, alias=alias)
        return job_cls

    if cls is not None:
        return decorator(cls)
    return decorator
