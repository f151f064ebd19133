"""The failure alert hook: an error log line always, and a webhook POST when configured.

Alerting must never turn one failure into two, so a webhook that is down is logged and
otherwise ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from tastebud.jobs.failures import failure_reason
from tastebud.observability import get_logger

log = get_logger("tastebud.jobs.alerts")


class AlertHook:
    def __init__(self, webhook_url: str | None = None, timeout_seconds: float = 5.0) -> None:
        self.webhook_url = webhook_url
        self.timeout_seconds = timeout_seconds

    def job_failed(
        self,
        job_name: str,
        run_id: str,
        start: datetime,
        end: datetime,
        attempts: int,
        error: BaseException,
    ) -> None:
        payload: dict[str, Any] = {
            "alert": "job_failed",
            "job_name": job_name,
            "run_id": run_id,
            "interval_start": start.isoformat(),
            "interval_end": end.isoformat(),
            "attempts": attempts,
            "reason": failure_reason(error),
            "error": f"{type(error).__name__}: {error}",
        }
        log.error("job failed", **payload)
        self.send(payload)

    def send(self, payload: dict[str, Any]) -> bool:
        """POST ``payload`` as JSON to the webhook; returns whether it was delivered."""
        if not self.webhook_url:
            return False
        try:
            response = httpx.post(self.webhook_url, json=payload, timeout=self.timeout_seconds)
            response.raise_for_status()
        except httpx.HTTPError as error:
            log.warning("alert webhook failed", url=self.webhook_url, error=str(error))
            return False
        return True
