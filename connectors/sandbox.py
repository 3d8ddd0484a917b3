"""The sandbox "platform" API: reads the local sandbox store and hands it the badges to show.

It stands where Shopify's GraphQL API or BigCommerce's V3 API stand for real shops, so the
worker's code path is the same; only the transport differs. The store itself lives in the app
(`plugin.services.sandbox_store`), which hands this adapter a `SandboxApi` that answers in the
same JSON shapes the sandbox's webhooks carry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Protocol

from connectors.base import CatalogPage
from domain.badges import BadgePush, PushResult
from domain.events import LocationFacts, OrderFacts, ProductFacts, StoreFacts, VariantRef
from webhooks.sandbox import LOCATION, order_facts, product_facts

PAGE_SIZE = 50
SANDBOX_LOCALES = ("en", "fr")
# The sandbox store keeps all its stock in one place.
LOCATION_NAME = "Default location"


class SandboxApi(Protocol):
    """The sandbox store's API, for one store; another store's records simply do not exist."""

    def product(self, product_id: str) -> dict | None:
        """A product as `products/update` sends it."""

    def product_of_variant(self, variant_id: str) -> dict | None: ...

    def products_after(self, after: int, limit: int) -> tuple[list[dict], int]:
        """Products with ids above `after`, oldest first, and the store's total."""

    def order(self, order_id: str) -> dict | None:
        """An order as `orders/create` sends it (lines included)."""

    def orders_updated_after(self, since: datetime) -> list[dict]:
        """Every order changed after `since`, oldest change first, as `orders/updated` sends it."""

    def store(self) -> dict:
        """The store itself, shaped like Shopify's REST shop resource."""

    def show_badges(self, badges: Sequence[dict]) -> None:
        """Store what each variant's page shows: {variant_id, state, label, eta, policy}."""

    def remove_line(self, order_id: str, line_id: str) -> None:
        """Take the line off the order (its unshipped units back in stock), as an order edit."""

    def cancel_order(self, order_id: str) -> None:
        """Cancel the order; its unshipped units go back in stock."""


class SandboxConnector:
    platform = "sandbox"

    def __init__(self, api: SandboxApi):
        self.api = api

    def prepare_store(self) -> None:
        """The sandbox store shows whatever is pushed; it needs no setup."""

    def fetch_product(
        self, product_id: str, fresh_after: datetime | None = None
    ) -> ProductFacts | None:
        payload = self.api.product(product_id)
        return product_facts(payload) if payload else None

    def resolve_variant(
        self, ref: VariantRef, fresh_after: datetime | None = None
    ) -> ProductFacts | None:
        if not ref.variant_id:
            return None
        payload = self.api.product_of_variant(ref.variant_id)
        return product_facts(payload) if payload else None

    def fetch_level(
        self, ref: VariantRef, location_id: str, fresh_after: datetime | None = None
    ) -> int | None:
        payload = self.api.product_of_variant(ref.variant_id) if ref.variant_id else None
        if payload is None or location_id != LOCATION:
            return None
        for variant in payload["variants"]:
            if str(variant["id"]) == ref.variant_id:
                return int(variant["inventory_quantity"])
        return None

    def fetch_order(self, order_id: str) -> OrderFacts | None:
        payload = self.api.order(order_id)
        return order_facts(payload) if payload is not None else None

    def fetch_store(self) -> StoreFacts:
        shop = self.api.store()
        return StoreFacts(
            timezone=shop.get("iana_timezone") or None,
            locale=shop.get("primary_locale") or None,
            country=shop.get("country_code") or None,
            name=shop.get("name") or None,
            contact_email=shop.get("customer_email") or None,
            # The demo store publishes English and French, to show labels per language.
            published_locales=SANDBOX_LOCALES,
        )

    def push_storefront_config(self, config: dict) -> None:
        """The sandbox product page asks the badge API: nothing to push."""

    def fetch_locations(self) -> list[LocationFacts]:
        return [LocationFacts(id=LOCATION, name=LOCATION_NAME)]

    def orders_changed_since(self, since: datetime) -> Iterator[OrderFacts]:
        for payload in self.api.orders_updated_after(since):
            yield order_facts(payload)

    def iter_catalog(self, cursor: str | None = None) -> Iterator[CatalogPage]:
        after = int(cursor or 0)
        while True:
            products, total = self.api.products_after(after, PAGE_SIZE)
            if not products:
                return
            after = int(products[-1]["id"])
            more = len(products) == PAGE_SIZE
            yield CatalogPage(
                [product_facts(p) for p in products], str(after) if more else None, total
            )
            if not more:
                return

    def push_badges(self, pushes: Sequence[BadgePush]) -> PushResult:
        self.api.show_badges(
            [
                {
                    "variant_id": push.variant_platform_id,
                    "state": push.state,
                    "label": push.label,
                    "eta": push.eta,
                    "policy": push.enforced_policy,
                }
                for push in pushes
            ]
        )
        return PushResult()

    def cancel_line(self, order_id: str, line_id: str) -> str:
        self.api.remove_line(order_id, line_id)
        return "line removed from the sandbox order; its units back in stock"

    def cancel_order(self, order_id: str) -> str:
        self.api.cancel_order(order_id)
        return "sandbox order cancelled; its units back in stock"
