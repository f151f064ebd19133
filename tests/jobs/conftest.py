"""Fixtures the job tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jobs.webhook import Webhook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()
