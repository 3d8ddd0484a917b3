"""Shopify's GraphQL Admin API over HTTPS, paced by the shop's leaky bucket.

Shopify gives each app and store a bucket of cost points (restored at `restoreRate` per second)
and reports it in `extensions.cost.throttleStatus` on every response. The client remembers the
latest status per shop and, before each request, waits until the bucket holds what that query
asked for last time, so a storm of writes drains the bucket smoothly instead of bouncing off it.
A THROTTLED answer or an HTTP 429 is waited out as told and the SAME request is sent again:
a write is never dropped. Waits happen in-process only while short (`MAX_INLINE_WAIT_S`); a
longer one raises `RateLimited(retry_after)`, and the job is queued again for then instead of
holding a worker. Connection errors, timeouts and 5xx raise `PlatformUnavailable` at once.
A 401 gets one token refresh and one retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from connectors.base import (
    MAX_INLINE_WAIT_S,
    ConnectorError,
    Credentials,
    PlatformUnavailable,
    RateLimited,
    ReauthorisationRequired,
)

log = logging.getLogger(__name__)

API_VERSION = "2025-01"
# Connect fast, read within a bound: an unreachable Shopify costs a job seconds, not minutes.
REQUEST_TIMEOUT = (3.05, 20)
# A storm can meet many throttled answers in a row; past this the job stops and is queued again
# for later, with every badge still pending, so nothing is lost.
MAX_THROTTLED_RETRIES = 50
# No single wait is planned longer than this.
MAX_WAIT = 60.0
# No more waiting in all for one client (one job) than this: past it the job hands the wait to
# the queue (`RateLimited`) rather than holding a worker.
MAX_TOTAL_WAIT = 10.0


def endpoint_for(shop_domain: str, base_override: str | None = None) -> str:
    if base_override:
        return f"{base_override.rstrip('/')}/{shop_domain}/admin/api/{API_VERSION}/graphql.json"
    return f"https://{shop_domain}/admin/api/{API_VERSION}/graphql.json"


@dataclass
class Bucket:
    """The last `throttleStatus` Shopify reported for a shop, and when we saw it."""

    maximum: float
    available: float
    restore_rate: float
    seen_at: float
    # The requested cost each operation had last time, to plan the next one.
    costs: dict[str, float] = field(default_factory=dict)
    # The rate the bucket actually refilled at between our calls. Other workers and jobs of the
    # same app spend the same bucket, so it can be far below `restore_rate`.
    effective_rate: float | None = None

    @property
    def rate(self) -> float:
        return self.effective_rate if self.effective_rate is not None else self.restore_rate

    def available_at(self, now: float) -> float:
        restored = self.available + self.rate * max(0.0, now - self.seen_at)
        return min(self.maximum, restored)

    def wait_for(self, cost: float, now: float) -> float:
        deficit = min(cost, self.maximum) - self.available_at(now)
        return min(deficit / self.rate, MAX_WAIT) if deficit > 0 and self.rate > 0 else 0.0

    def observed(self, status: dict, charged: float, now: float) -> Bucket:
        """The bucket after a new `throttleStatus`, learning the refill rate really seen."""
        maximum = float(status.get("maximumAvailable") or self.maximum)
        available = float(status.get("currentlyAvailable") or 0)
        restore_rate = float(status.get("restoreRate") or self.restore_rate)
        effective = self.effective_rate
        elapsed = now - self.seen_at
        if elapsed >= 0.05 and available < maximum:
            seen = (available + charged - self.available) / elapsed
            seen = min(max(seen, restore_rate * 0.01), restore_rate)
            effective = seen if effective is None else (effective + seen) / 2
        return Bucket(maximum, available, restore_rate, now, self.costs, effective)


# Per process, per shop: consecutive jobs of one worker share what Shopify last said.
_BUCKETS: dict[str, Bucket] = {}
_BUCKETS_LOCK = threading.Lock()


@dataclass
class CallStats:
    requests: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0


class ShopifyGraphQL:
    def __init__(
        self,
        shop_domain: str,
        tokens: Credentials,
        *,
        endpoint: str | None = None,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        buckets: dict[str, Bucket] | None = None,
    ):
        self.shop_domain = shop_domain
        self.endpoint = endpoint or endpoint_for(shop_domain)
        self.tokens = tokens
        self.http = http or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.buckets = _BUCKETS if buckets is None else buckets
        self.stats = CallStats()

    def execute(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        redactable: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """Run one operation and return its `data`; raises ConnectorError when it fails.

        `redactable`: fields Shopify may withhold (protected customer data the app is not
        approved for): an answer whose only errors are ACCESS_DENIED on those fields is used,
        with them null, instead of failing.
        """
        operation = _operation_name(document)
        body = {"query": document, "variables": variables or {}}
        token = self.tokens.access_token()
        refreshed = False
        throttled = 0
        while True:
            self._pace(operation)
            response = self._post(body, token)
            if response.status_code == 401:
                if refreshed:
                    reason = f"Shopify refused the refreshed token for {self.shop_domain}"
                    self.tokens.refused(reason)
                    raise ReauthorisationRequired(reason)
                log.info("401 from Shopify for %s; refreshing the token once", self.shop_domain)
                token = self.tokens.refresh_after_unauthorized()
                refreshed = True
                continue
            if response.status_code == 429:
                throttled = self._count_throttle(throttled, operation)
                self._wait(_retry_after(response) or self._throttle_wait(operation), operation)
                continue
            if response.status_code >= 500:
                raise PlatformUnavailable(
                    f"Shopify answered HTTP {response.status_code} to {operation} for "
                    f"{self.shop_domain}",
                    _retry_after(response),
                )
            if response.status_code >= 400:
                raise ConnectorError(
                    f"Shopify answered HTTP {response.status_code} to {operation}: "
                    f"{response.text[:300]}"
                )
            payload = _json(response, operation)
            self._observe(payload, operation)
            errors = payload.get("errors")
            if errors and _is_throttled(errors):
                throttled = self._count_throttle(throttled, operation)
                self._wait(self._throttle_wait(operation), operation)
                continue
            if errors and _only_withheld(errors, redactable):
                log.info(
                    "Shopify withheld %s in %s for %s",
                    ", ".join(sorted(_withheld_fields(errors))),
                    operation,
                    self.shop_domain,
                )
            elif errors:
                raise ConnectorError(f"Shopify GraphQL errors in {operation}: {_messages(errors)}")
            return payload.get("data") or {}

    def _post(self, body: dict, token: str) -> requests.Response:
        try:
            response = self.http.post(
                self.endpoint,
                json=body,
                headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"Shopify unreachable for {self.shop_domain}: {exc}") from exc
        self.stats.requests += 1
        return response

    def _pace(self, operation: str) -> None:
        """Wait until the bucket holds what this operation cost last time."""
        with _BUCKETS_LOCK:
            bucket = self.buckets.get(self.shop_domain)
            cost = bucket.costs.get(operation) if bucket else None
            wait = bucket.wait_for(cost, self.clock()) if bucket and cost else 0.0
        if wait > 0.001:  # float dust after a wait that just refilled it
            self._wait(wait, operation)

    def _observe(self, payload: dict, operation: str) -> None:
        cost = (payload.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        if not status:
            return
        now = self.clock()
        with _BUCKETS_LOCK:
            bucket = self.buckets.get(self.shop_domain)
            if bucket is None:
                bucket = Bucket(
                    maximum=float(status.get("maximumAvailable") or 1000),
                    available=float(status.get("currentlyAvailable") or 0),
                    restore_rate=float(status.get("restoreRate") or 50),
                    seen_at=now,
                )
            else:
                bucket = bucket.observed(status, float(cost.get("actualQueryCost") or 0), now)
            if cost.get("requestedQueryCost") is not None:
                bucket.costs[operation] = float(cost["requestedQueryCost"])
            self.buckets[self.shop_domain] = bucket

    def _throttle_wait(self, operation: str) -> float:
        """Seconds until the bucket refills enough for this operation, from the last status."""
        with _BUCKETS_LOCK:
            bucket = self.buckets.get(self.shop_domain)
            if bucket is None:
                return 1.0
            cost = bucket.costs.get(operation) or 1.0
            deficit = max(cost - bucket.available_at(self.clock()), 1.0)
            return min(deficit / bucket.rate, MAX_WAIT) if bucket.rate > 0 else 1.0

    def _count_throttle(self, throttled: int, operation: str) -> int:
        self.stats.throttled += 1
        throttled += 1
        if throttled > MAX_THROTTLED_RETRIES:
            raise RateLimited(
                f"Shopify kept throttling {operation} for {self.shop_domain}; retrying later",
                self._throttle_wait(operation),
            )
        return throttled

    def _wait(self, seconds: float, operation: str) -> None:
        """Sleep for a short wait; hand a long one (or one past the job's total) to the queue."""
        if seconds > MAX_INLINE_WAIT_S or self.stats.waited_seconds + seconds > MAX_TOTAL_WAIT:
            raise RateLimited(
                f"Shopify's bucket for {self.shop_domain} asks {operation} to wait "
                f"{seconds:.1f} s; retrying later",
                seconds,
            )
        self.stats.waited_seconds += seconds
        self.sleep(seconds)


def _operation_name(document: str) -> str:
    for word in ("query", "mutation"):
        start = document.find(word + " ")
        if start >= 0:
            rest = document[start + len(word) + 1 :].lstrip()
            return rest.split("(")[0].split("{")[0].strip() or word
    return "anonymous"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not seconds >= 0:  # also refuses NaN
        return None
    return min(seconds, 3600.0)


def _json(response: requests.Response, operation: str) -> dict:
    try:
        payload = response.json()
    except ValueError as exc:
        raise ConnectorError(f"Shopify sent a non-JSON answer to {operation}") from exc
    if not isinstance(payload, dict):
        raise ConnectorError(f"Shopify sent an unexpected answer to {operation}")
    return payload


def _is_throttled(errors) -> bool:
    if not isinstance(errors, list):
        return False
    return any(
        isinstance(e, dict) and (e.get("extensions") or {}).get("code") == "THROTTLED"
        for e in errors
    )


def _withheld_fields(errors) -> set[str]:
    return {
        str(e["path"][-1])
        for e in errors
        if isinstance(e, dict) and isinstance(e.get("path"), list) and e["path"]
    }


def _only_withheld(errors, redactable: frozenset[str]) -> bool:
    """Every error is Shopify refusing a field the caller can do without (documented for
    protected customer data: the field comes back null, the rest of the answer stands)."""
    if not redactable or not isinstance(errors, list):
        return False
    for error in errors:
        if not isinstance(error, dict):
            return False
        if (error.get("extensions") or {}).get("code") != "ACCESS_DENIED":
            return False
        path = error.get("path")
        if not isinstance(path, list) or not any(str(part) in redactable for part in path):
            return False
    return True


def _messages(errors) -> str:
    if isinstance(errors, list):
        return "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
        )
    return str(errors)
