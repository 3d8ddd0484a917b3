"""The app's own events. Platform payloads stop at the translators in `webhooks/`: past them
nothing knows Shopify, BigCommerce or the sandbox, only these shapes.

A translator turns one stored webhook into zero or more of these. A payload too thin to act on
says so explicitly with a `Fetch` request; the app then asks the shop's connector for the facts
before deciding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Fetch:
    """Read the facts from the store first: the payload does not carry them (or not reliably).

    `fresh_after`: any read used must have begun after this moment (the delivery's arrival), so
    what is applied reflects every change the event stands for; a read another job began later
    may be shared.
    """

    fresh_after: datetime | None = None


@dataclass(frozen=True)
class VariantRef:
    """Names a variant the way the platform's event does: by variant id or inventory item id."""

    variant_id: str | None = None
    inventory_item_id: str | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class VariantFacts:
    platform_id: str
    sku: str = ""
    title: str = ""
    inventory_item_id: str | None = None
    # None: the payload does not say; the mirror keeps what it knows.
    tracked: bool | None = True
    # The selling policy the store holds now (which may be one the app wrote over the
    # merchant's; the app resolves that from what it remembers).
    sells_past_zero: bool = False
    # Stock per location id; None when the payload does not carry it.
    levels: dict[str, int] | None = None
    native_backorder_limit: int | None = None
    native_backordered: int | None = None

    @property
    def partial(self) -> bool:
        """Facts a new variant could not be mirrored from (stock or tracking unknown)."""
        return self.tracked is None or self.levels is None


@dataclass(frozen=True)
class ProductFacts:
    platform_id: str
    title: str
    variants: tuple[VariantFacts, ...]

    @property
    def partial(self) -> bool:
        return any(v.partial for v in self.variants)


@dataclass(frozen=True)
class InventoryChanged:
    variant: VariantRef
    location_id: str
    # None: the payload is thin (or relative) and the connector must be asked for the level.
    available: int | None
    occurred_at: datetime
    fetch: Fetch | None = None


@dataclass(frozen=True)
class ProductChanged:
    product_id: str
    occurred_at: datetime
    # None: a thin payload; `fetch` says so and the app reads the product through the
    # connector. Partial facts (see ProductFacts.partial) apply only to mirrored variants.
    facts: ProductFacts | None = None
    fetch: Fetch | None = None


@dataclass(frozen=True)
class Customer:
    """Who placed an order, as far as the platform shares it (redacted fields stay None)."""

    email: str | None = None
    name: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    variant: VariantRef
    # As ordered.
    quantity: int
    # After edits and removals, where the platform says (Shopify `current_quantity`).
    current_quantity: int | None = None
    fulfilled_quantity: int = 0
    refunded_quantity: int = 0


@dataclass(frozen=True)
class OrderFacts:
    """An order as the platform describes it now: the facts the backorder ledger is kept from."""

    order_id: str
    placed_at: datetime
    name: str = ""
    customer: Customer = field(default_factory=Customer)
    lines: tuple[OrderLine, ...] = ()
    cancelled_at: datetime | None = None
    # Where the merchant opens the order in the platform's admin.
    admin_url: str | None = None
    # The platform's time of this snapshot: an older one never replaces a newer.
    updated_at: datetime | None = None


@dataclass(frozen=True)
class StoreFacts:
    """What the platform says about the store itself, read at install and reconciliation."""

    # IANA zone name ("America/Los_Angeles"): every ETA is computed in it.
    timezone: str | None = None
    # The store's primary language, as the platform spells it ("en", "de-DE").
    locale: str | None = None
    # ISO 3166-1 alpha-2 country of the store's address: its public holidays close it.
    country: str | None = None
    name: str | None = None
    # The address customers write to.
    contact_email: str | None = None
    # Where the store's pages are served from ("https://shop.example"), for CORS.
    storefront_origins: tuple[str, ...] = ()
    # Every language the storefront is published in, primary first ("en", "fr-CA"): badge
    # labels are offered in each.
    published_locales: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocationFacts:
    """A stock location as the platform names it, so the merchant picks "Main warehouse" rather
    than an id."""

    id: str
    # The merchant's name for it; None where the platform gives none.
    name: str | None = None


@dataclass(frozen=True)
class OrderChanged:
    """An order was placed, edited, paid, fulfilled, refunded or cancelled: its snapshot."""

    order_id: str
    occurred_at: datetime
    # None with `fetch` set: the payload does not carry the order whole (BigCommerce's ids,
    # Shopify's refunds and edits); the app reads it from the store.
    order: OrderFacts | None = None
    fetch: Fetch | None = None


@dataclass(frozen=True)
class AppUninstalled:
    occurred_at: datetime


@dataclass(frozen=True)
class CustomerDataRequest:
    """Compliance: report what the app holds about a customer."""

    customer_email: str | None
    order_ids: tuple[str, ...]
    occurred_at: datetime


@dataclass(frozen=True)
class CustomerRedact:
    customer_email: str | None
    order_ids: tuple[str, ...]
    occurred_at: datetime


@dataclass(frozen=True)
class ShopRedact:
    occurred_at: datetime


AppEvent = (
    InventoryChanged
    | ProductChanged
    | OrderChanged
    | AppUninstalled
    | CustomerDataRequest
    | CustomerRedact
    | ShopRedact
)
COMPLIANCE_EVENTS = (CustomerDataRequest, CustomerRedact, ShopRedact)
