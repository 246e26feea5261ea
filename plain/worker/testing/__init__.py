"""Test helpers for apps using plain.worker (documented in the README's Testing section).

- ``assert_enqueued``, ``assert_not_enqueued``, ``enqueued``: what is pending.
- ``drain``: run pending jobs here, recorded as a worker records them.
- ``perform``: run one job after a round trip through its stored parameters.
- ``enqueue_scheduled``: the scheduled occurrences of a time window, now.
- The ``WORKER_EAGER`` setting: ``run_in_worker()`` drains right away.
"""

from __future__ import annotations

from .assertions import assert_enqueued, assert_not_enqueued, enqueued
from .running import DrainLimitReached, JobFailed, drain, perform
from .scheduled import enqueue_scheduled

__all__ = [
    "DrainLimitReached",
    "JobFailed",
    "assert_enqueued",
    "assert_not_enqueued",
    "drain",
    "enqueue_scheduled",
    "enqueued",
    "perform",
]
