"""Background jobs for Plain, stored in the app's database."""

from .jobs import Job
from .registry import register_job

__all__ = ["Job", "register_job"]
