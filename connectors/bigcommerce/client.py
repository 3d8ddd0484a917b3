"""BigCommerce's REST API (V3, and V2 where V3 has no equivalent) over `requests`, paced.

Every store shares one request quota between all its apps (150 requests per 30 s on Standard and
Plus). Each response says how much is left (`X-Rate-Limit-Requests-Left`) and when the window
resets (`X-Rate-Limit-Time-Reset-Ms`); the client waits for the reset before spending the last
few requests instead of running into 429s, and on a 429 it waits `Reset-Ms` and sends the SAME
request again, so a write is never dropped. It waits in-process only while the wait is short
(`MAX_INLINE_WAIT_S`); a longer one raises `RateLimited(retry_after)` before anything is sent,
so the job is queued again for then instead of holding a worker. Connection errors, timeouts
and 5xx raise `PlatformUnavailable` at once (a short connect timeout, a bounded read): the job
(and RQ) retries later with backoff. 401/403 mean the token no longer works.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from connectors.base import (
    MAX_INLINE_WAIT_S,
    ConnectorError,
    PlatformUnavailable,
    RateLimited,
    ReauthorisationRequired,
)

log = logging.getLogger(__name__)

API_BASE = "https://api.bigcommerce.com/stores/{store_hash}"
# Connect fast (a little over a multiple of TCP's 3 s retransmit), read within a bound: an
# unreachable platform costs a job seconds, not minutes.
TIMEOUT = (3.05, 20)
# Requests kept in reserve: the quota is shared with the store's other apps, so wait for the
# window to reset a little before the last request, not after a 429.
REQUESTS_LEFT_FLOOR = 1
MAX_RATE_LIMIT_RETRIES = 3
DEFAULT_RESET_S = 1.0


class NotFound(ConnectorError):
    """404: the resource is gone (a product deleted since the event was sent)."""


class RequestRefused(ConnectorError):
    """A 4xx other than 401/403/404/429: the request itself is wrong; retrying will not help."""

    def __init__(self, message: str, status: int, body: dict | None):
        super().__init__(message)
        self.status = status
        self.body = body or {}


@dataclass
class RateLimitState:
    """The quota as the last response described it."""

    requests_left: int | None = None
    reset_ms: int | None = None
    quota: int | None = None
    window_ms: int | None = None
    seen_at: float = 0.0  # the client's clock when the response came


@dataclass
class CallStats:
    calls: int = 0
    rate_limited: int = 0
    waited_s: float = 0.0


def api_base(store_hash: str, override: str | None = None) -> str:
    """The store's API root; `override` (tests, benchmarks) replaces api.bigcommerce.com."""
    if override:
        return f"{override.rstrip('/')}/stores/{store_hash}"
    return API_BASE.format(store_hash=store_hash)


class BigCommerceClient:
    def __init__(
        self,
        store_hash: str,
        access_token: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        base_url: str | None = None,
        session: requests.Session | None = None,
    ):
        self.store_hash = store_hash
        self.base_url = (base_url or api_base(store_hash)).rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self._http = session or requests.Session()
        self._http.headers.update(
            {
                "X-Auth-Token": access_token,
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
        )
        self.limits = RateLimitState()
        self.stats = CallStats()

    def request(
        self, method: str, path: str, json: object = None, params: dict | None = None
    ) -> dict:
        """Send one request, pacing and retrying as the quota requires; the parsed JSON body.

        Returns {} for 204 and empty bodies. V2 list endpoints answer with a JSON array, which
        comes back as {"data": [...]}, so callers always get a dict.
        """
        url = self.base_url + path
        rate_limited = 0
        while True:
            self._pace(method, path)
            try:
                response = self._http.request(
                    method, url, json=json, params=params, timeout=TIMEOUT
                )
            except requests.RequestException as exc:
                raise PlatformUnavailable(f"BigCommerce {method} {path}: {exc}") from exc
            self.stats.calls += 1
            self._read_limits(response)
            status = response.status_code
            if status == 429:
                rate_limited += 1
                self.stats.rate_limited += 1
                # Reset-Ms first; if the store keeps answering 429 (other apps share the
                # quota), add a growing margin.
                reset_s = (self.limits.reset_ms or DEFAULT_RESET_S * 1000) / 1000
                wait = reset_s * (1 + 0.5 * (rate_limited - 1))
                if wait > MAX_INLINE_WAIT_S or rate_limited > MAX_RATE_LIMIT_RETRIES:
                    raise RateLimited(f"BigCommerce {method} {path}: rate limited", wait)
                self._wait(wait)
                self.limits.requests_left = None  # waited for the reset already
                continue
            if status >= 500:
                raise PlatformUnavailable(
                    f"BigCommerce {method} {path}: HTTP {status}", _retry_after(response)
                )
            if status in (401, 403):
                raise ReauthorisationRequired(
                    f"BigCommerce refused the store's token ({status}) for {method} {path}"
                )
            body = _parse(response)
            if status == 404:
                raise NotFound(f"BigCommerce {method} {path}: not found")
            if status >= 400:
                raise RequestRefused(
                    f"BigCommerce {method} {path}: HTTP {status}: {_title(body)}", status, body
                )
            return body

    def _pace(self, method: str, path: str) -> None:
        left, reset_ms = self.limits.requests_left, self.limits.reset_ms
        if left is not None and reset_ms is not None and left <= REQUESTS_LEFT_FLOOR:
            # The client outlives a job (one per store and process): count from when it was said.
            wait = reset_ms / 1000 - max(0.0, self._clock() - self.limits.seen_at)
            if wait > MAX_INLINE_WAIT_S:
                raise RateLimited(
                    f"BigCommerce {method} {path}: the store's quota resets in {wait:.1f} s", wait
                )
            self._wait(wait)
            # The window has reset; the next response says how much the new one holds.
            self.limits.requests_left = None

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.stats.waited_s += seconds
        self._sleep(seconds)

    def _read_limits(self, response: requests.Response) -> None:
        headers = response.headers
        self.limits = RateLimitState(
            requests_left=_int(headers.get("X-Rate-Limit-Requests-Left")),
            reset_ms=_int(headers.get("X-Rate-Limit-Time-Reset-Ms")),
            quota=_int(headers.get("X-Rate-Limit-Requests-Quota")),
            window_ms=_int(headers.get("X-Rate-Limit-Time-Window-Ms")),
            seen_at=self._clock(),
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds, when a 5xx answer carries it (HTTP-dates are not used here)."""
    try:
        value = float(response.headers.get("Retry-After") or "")
    except ValueError:
        return None
    return min(value, 3600.0) if value >= 0 else None


def _parse(response: requests.Response) -> dict:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {"raw": response.text[:2000]}
    if isinstance(body, list):
        return {"data": body}
    return body if isinstance(body, dict) else {"data": body}


def _title(body: dict) -> str:
    return str(body.get("title") or body.get("errors") or body.get("raw") or "")[:500]
