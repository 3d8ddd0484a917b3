"""The app's own events. Platform payloads stop here: past this module nothing knows Shopify,
BigCommerce or the sandbox, only these shapes.

A translator turns one stored webhook into zero or more of these. Facts a thin payload lacks
(BigCommerce sends only ids) are left as None and the worker fetches them through the shop's
connector before deciding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
    tracked: bool = True
    sells_past_zero: bool = False
    # Stock per location id; None when the payload does not carry it.
    levels: dict[str, int] | None = None
    native_backorder_limit: int | None = None
    native_backordered: int | None = None


@dataclass(frozen=True)
class ProductFacts:
    platform_id: str
    title: str
    variants: tuple[VariantFacts, ...]


@dataclass(frozen=True)
class InventoryChanged:
    variant: VariantRef
    location_id: str
    # None: the payload is thin (or relative) and the connector must be asked for the level.
    available: int | None
    occurred_at: datetime


@dataclass(frozen=True)
class ProductChanged:
    product_id: str
    occurred_at: datetime
    # None: a thin payload; the worker fetches the product through the connector.
    facts: ProductFacts | None = None


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    variant: VariantRef
    quantity: int


@dataclass(frozen=True)
class OrderCreated:
    order_id: str
    occurred_at: datetime
    order_name: str = ""
    customer_email: str | None = None
    lines: tuple[OrderLine, ...] = field(default_factory=tuple)
    # A thin payload (BigCommerce sends only the order id): the worker asks the connector.
    needs_fetch: bool = False


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
    | OrderCreated
    | AppUninstalled
    | CustomerDataRequest
    | CustomerRedact
    | ShopRedact
)
