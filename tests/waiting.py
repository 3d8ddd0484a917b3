"""Waiting on a condition with a deadline: the only way tests wait (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.1,
    before_each: Callable[[], object] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy, and return that; fail after `timeout`
    seconds saying `what` was awaited. `before_each` runs before every check (for example to
    expire the test's database session, so each check reads fresh rows)."""
    deadline = time.monotonic() + timeout
    while True:
        if before_each is not None:
            before_each()
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
