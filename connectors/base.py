"""The one small interface every platform adapter implements.

Platform HTTP, auth headers and rate limits live behind it; callers see app-level facts
(`ProductFacts`) and hand it app-level badges (`BadgePush`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from webhooks.events import OrderCreated, ProductFacts, VariantRef


class ConnectorError(RuntimeError):
    """A platform call failed in a way a retry may fix; jobs let it raise so RQ retries."""


class ReauthorisationRequired(ConnectorError):
    """The platform refused the shop's token and refreshing it did not help."""


@dataclass(frozen=True)
class BadgePush:
    """One variant's badge as the storefront should show it."""

    variant_platform_id: str
    product_platform_id: str
    state: str  # in_stock | backorder | out_of_stock | hidden
    label: str
    eta: date | None
    eta_text: str
    # "continue" / "deny" to enforce selling past zero, None to restore the merchant's policy.
    enforced_policy: str | None
    merchant_sells_past_zero: bool
    # Product-level tracking (BigCommerce) puts the badge on the product, not the variant.
    product_level: bool = False


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

    def fetch_product(self, product_id: str) -> ProductFacts | None:
        """The product with all its variants and stock per location, or None if deleted."""

    def resolve_variant(self, ref: VariantRef) -> ProductFacts | None:
        """The product that holds the variant an event names, for variants not yet mirrored."""

    def fetch_level(self, ref: VariantRef, location_id: str) -> int | None:
        """Current stock at one location, for events that carry no absolute figure."""

    def fetch_order(self, order_id: str) -> OrderCreated | None:
        """The order's lines and customer, for events that carry only the order id."""

    def iter_catalog(self, cursor: str | None = None) -> Iterator[CatalogPage]:
        """Every product, page by page, for reconciliation."""

    def push_badges(self, pushes: Sequence[BadgePush]) -> None:
        """Write the badges to the store. Raises ConnectorError if any write did not land."""
