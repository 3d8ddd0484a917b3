"""The one small interface every platform adapter implements, and what the app hands it.

Platform HTTP, auth headers and rate limits live behind it; callers see app-level facts
(`domain.events.ProductFacts`) and hand it app-level badges (`domain.badges.BadgePush`).
Adapters know no Flask, no ORM and nothing of the app: the app builds each one with what it
needs (a `Credentials` source that can refresh, a `KeyValueCache`, plain settings values) and
persists what it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.badges import BadgePush, PushResult
from domain.events import LocationFacts, OrderFacts, ProductFacts, StoreFacts, VariantRef

# Platforms where "keep selling past zero" exists only as the store's own native backorders
# (a per-location backorder limit the connector can raise), not as a per-variant policy.
SELLS_PAST_ZERO_ONLY_WITH_NATIVE_BACKORDERS = frozenset({"bigcommerce"})


def can_backorder_automatically(platform: str, native_backorders: bool) -> bool:
    """Whether the connector can make checkout accept orders past zero for the app.

    Shopify and the sandbox flip each variant's policy; BigCommerce can only raise a native
    backorder limit, which exists where the store has native backorders turned on."""
    return platform not in SELLS_PAST_ZERO_ONLY_WITH_NATIVE_BACKORDERS or native_backorders


class ConnectorError(RuntimeError):
    """A platform call failed in a way a retry may fix; jobs let it raise so RQ retries."""


class ReauthorisationRequired(ConnectorError):
    """The platform refused the shop's token and refreshing it did not help."""


# The longest an adapter waits inside a call for the platform's own rate limit to let the next
# request through; anything longer is handed to the caller as `RateLimited`, so a job never
# sleeps in a worker while other shops' work waits behind it.
MAX_INLINE_WAIT_S = 1.0


class PlatformUnavailable(ConnectorError):
    """The platform could not be reached, timed out or answered 5xx, raised at once (no
    in-process retry): nothing was decided, so the caller leaves its rows as they are and tries
    again later. `retry_after`: the seconds the platform asked for, when it said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(PlatformUnavailable):
    """The platform's rate limit would keep the call waiting longer than `MAX_INLINE_WAIT_S`:
    the request was not sent (or was refused, so nothing was written); try after `retry_after`."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message, retry_after)


class Credentials(Protocol):
    """Where an adapter gets the store's access token; the app keeps and refreshes it."""

    def access_token(self) -> str:
        """The current token (refreshed first by the app if it is about to expire)."""

    def refresh_after_unauthorized(self) -> str:
        """The platform answered 401: a fresh token, or ReauthorisationRequired."""

    def refused(self, reason: str) -> None:
        """The platform refused even a fresh token: the merchant must approve the app again."""


def _cannot_refresh() -> str:
    raise ReauthorisationRequired("this token cannot be refreshed")


@dataclass(frozen=True)
class TokenCallbacks:
    """`Credentials` made of plain callables: how the app hands an adapter its token source."""

    access_token: Callable[[], str]
    refresh_after_unauthorized: Callable[[], str] = _cannot_refresh
    refused: Callable[[str], None] = lambda _reason: None


class KeyValueCache(Protocol):
    """A small cache shared by every worker of the app (Redis in production)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl_s: int) -> None: ...

    def get_map(self, key: str) -> dict[str, str]: ...

    def update_map(self, key: str, values: dict[str, str], ttl_s: int) -> None: ...

    def delete(self, key: str) -> None: ...


class MemoryCache:
    """`KeyValueCache` in one process, for the embedded default (no Redis) and tests."""

    def __init__(self, clock=time.monotonic) -> None:
        self._values: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, key: str):
        entry = self._values.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < self._clock():
            self._values.pop(key, None)
            return None
        return value

    def get(self, key: str) -> str | None:
        with self._lock:
            value = self._live(key)
            return value if isinstance(value, str) else None

    def set(self, key: str, value: str, ttl_s: int) -> None:
        with self._lock:
            self._values[key] = (self._clock() + ttl_s, value)

    def get_map(self, key: str) -> dict[str, str]:
        with self._lock:
            value = self._live(key)
            return dict(value) if isinstance(value, dict) else {}

    def update_map(self, key: str, values: dict[str, str], ttl_s: int) -> None:
        with self._lock:
            current = self._live(key)
            merged = {**(current if isinstance(current, dict) else {}), **values}
            self._values[key] = (self._clock() + ttl_s, merged)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


@dataclass(frozen=True)
class CatalogPage:
    products: Sequence[ProductFacts]
    next_cursor: str | None
    total: int | None = None


class Connector(Protocol):
    platform: str

    def prepare_store(self) -> None:
        """Idempotent setup the store needs before shoppers can see badges; run on install and
        by every reconciliation so anything removed since is put back."""

    def fetch_product(
        self, product_id: str, fresh_after: datetime | None = None
    ) -> ProductFacts | None:
        """The product with all its variants and stock per location, or None if deleted.

        `fresh_after`: a read shared with another job is used only if it began after this."""

    def resolve_variant(
        self, ref: VariantRef, fresh_after: datetime | None = None
    ) -> ProductFacts | None:
        """The product that holds the variant an event names, for variants not yet mirrored."""

    def fetch_level(
        self, ref: VariantRef, location_id: str, fresh_after: datetime | None = None
    ) -> int | None:
        """Current stock at one location, for events that carry no absolute figure."""

    def fetch_order(self, order_id: str) -> OrderFacts | None:
        """The order's lines and customer, for events that carry only the order id."""

    def iter_catalog(self, cursor: str | None = None) -> Iterator[CatalogPage]:
        """Every product, page by page, for reconciliation."""

    def fetch_store(self) -> StoreFacts:
        """The store's time zone, primary language, country, name and contact address."""

    def push_storefront_config(self, config: dict) -> None:
        """Keep where the storefront reads it what the badge shows beyond each variant's state
        and ETA: {labels: {language: {state: label}}, colours: {state: "#hex"},
        default_language}. A no-op where the storefront script asks the badge API instead."""

    def fetch_locations(self) -> list[LocationFacts]:
        """The store's active stock locations with their names, read at each reconciliation so
        the settings page names them; [] where the platform will not say (stock still counts
        by id)."""

    def orders_changed_since(self, since: datetime) -> Iterator[OrderFacts]:
        """Every order the platform changed after `since`, for reconciliation of the ledger."""

    def push_badges(self, pushes: Sequence[BadgePush]) -> PushResult:
        """Write the badges to the store. Raises ConnectorError if any write did not land."""

    def cancel_line(self, order_id: str, line_id: str) -> str:
        """Take one line off the order, its units restocked, for a customer who asked to
        cancel it. Returns what was done, for the line's timeline; raises ConnectorError."""

    def cancel_order(self, order_id: str) -> str:
        """Cancel the whole order for a customer who asked. Returns what was done."""
