"""The job registry: every job tastebud knows, by name, whether it can run yet or not.

Jobs whose issue has not landed are listed as planned, with the reason, so ``jobs list``
shows the whole plan and ``jobs run`` says what is missing. Plugging one in is one line in
``tastebud/jobs/definitions/__init__.py``: ``registry.register("train", _deferred("train"))`` keeps
the planned schedule, timeout and retry policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from tastebud.jobs.base import JobDefinition, JobFunction, JobNotAvailable, UnknownJob
from tastebud.jobs.schedules import Schedule, parse_schedule
from tastebud.stores.retry import RetryPolicy


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}

    def add(self, definition: JobDefinition) -> JobDefinition:
        self._jobs[definition.name] = definition
        return definition

    def planned(
        self,
        name: str,
        schedule: str | Schedule,
        reason: str,
        *,
        timeout_seconds: float = 600.0,
        retry: RetryPolicy | None = None,
        description: str = "",
    ) -> JobDefinition:
        """List a job that cannot run yet, and why."""
        return self.add(
            JobDefinition(
                name=name,
                func=None,
                schedule=_schedule(schedule),
                timeout_seconds=timeout_seconds,
                retry=retry or RetryPolicy(),
                description=description,
                reason=reason,
            )
        )

    def register(self, name: str, func: JobFunction, **changes: Any) -> JobDefinition:
        """Make ``name`` runnable. A planned job keeps its schedule and policies unless
        ``changes`` (schedule, timeout_seconds, retry, description) say otherwise."""
        if "schedule" in changes:
            changes["schedule"] = _schedule(changes["schedule"])
        existing = self._jobs.get(name)
        if existing is None:
            if "schedule" not in changes:
                raise ValueError(f"a new job {name!r} needs a schedule")
            return self.add(JobDefinition(name=name, func=func, **changes))
        return self.add(replace(existing, func=func, reason=None, **changes))

    def get(self, name: str) -> JobDefinition:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(self._jobs) or "none"
            raise UnknownJob(f"unknown job {name!r}; known jobs: {known}") from None

    def runnable(self, name: str) -> JobDefinition:
        definition = self.get(name)
        if not definition.available:
            raise JobNotAvailable(f"job {name!r} is not available yet: {definition.reason}")
        return definition

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(self._jobs.values())

    def names(self) -> list[str]:
        return list(self._jobs)


def _schedule(value: str | Schedule) -> Schedule:
    return parse_schedule(value) if isinstance(value, str) else value
