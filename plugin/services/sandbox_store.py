"""The sandbox store acting as a platform: catalogue edits, checkout, and the signed webhooks
each one sends to the app.

Webhooks are delivered through the app's own WSGI stack (not a socket back to itself), so they
take the real route, signature check, inbox and queue, and work under any server, one worker
process included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, object_session
from werkzeug.test import Client

from plugin.models import (
    Platform,
    SandboxOrder,
    SandboxProduct,
    SandboxVariant,
    Shop,
    utcnow,
)
from plugin.services import shops
from plugin.services.tokens import vault
from webhooks import sandbox as sandbox_webhooks

DEMO_SHOP = "demo.sandbox.local"
LOCATION = sandbox_webhooks.LOCATION
POLICIES = ("deny", "continue")


class SandboxError(ValueError):
    """A sandbox action the store itself would refuse (sold out, unknown variant, bad input)."""


@dataclass(frozen=True)
class Webhook:
    topic: str
    payload: dict


def ensure_shop(session: Session, domain: str = DEMO_SHOP) -> Shop:
    shop = shops.find_shop(session, Platform.SANDBOX, domain)
    if shop is None or not shop.is_active:
        shop = shops.install_shop(
            session,
            vault(),
            Platform.SANDBOX,
            domain,
            access_token=None,
            name="Sandbox demo store",
            timezone="UTC",
        )
    return shop


DEMO_PRODUCT = "Organic cotton tee"
# One variant of each badge: in stock, sold out but selling past zero, sold out and stopping.
DEMO_VARIANTS = [
    ("Small", "TEE-S", 3, "continue"),
    ("Medium", "TEE-M", 0, "continue"),
    ("Large", "TEE-L", 0, "deny"),
]


def seed_demo(session: Session, shop: Shop) -> tuple[SandboxProduct, list[Webhook]]:
    """The demo product the README's first command shows; the caller commits, then delivers."""
    return create_product(session, shop, DEMO_PRODUCT, list(DEMO_VARIANTS))


def product_payload(product: SandboxProduct) -> dict:
    return {
        "id": product.id,
        "title": product.title,
        "updated_at": product.updated_at.isoformat(),
        "variants": [
            {
                "id": v.id,
                "title": v.title,
                "sku": v.sku,
                "inventory_policy": v.policy,
                "inventory_quantity": v.inventory,
            }
            for v in product.variants
        ],
    }


def order_name(order: SandboxOrder) -> str:
    return f"#{1000 + order.id}"


def line_item_id(order: SandboxOrder) -> int:
    """A sandbox order has one line; its id is derived from the order's."""
    return order.id * 10


def live_quantity(order: SandboxOrder) -> int:
    """Units still on the order, after edits, refunds and cancellation."""
    return order.quantity if order.current_quantity is None else order.current_quantity


def unshipped(order: SandboxOrder) -> int:
    """Units the store still has to ship (none once the order is cancelled)."""
    if order.cancelled_at is not None:
        return 0
    return max(0, live_quantity(order) - order.shipped_quantity)


def fulfillment_status(order: SandboxOrder) -> str | None:
    """The order-level spelling of the store's webhooks: null, "partial" or "fulfilled"."""
    if not order.shipped_quantity:
        return None
    return "partial" if unshipped(order) else "fulfilled"


def _line_item(order: SandboxOrder, variant: SandboxVariant) -> dict:
    return {
        "id": line_item_id(order),
        "variant_id": order.variant_id,
        "product_id": variant.product_id,
        "title": variant.product.title,
        "variant_title": variant.title,
        "sku": variant.sku,
        "quantity": order.quantity,
        "current_quantity": live_quantity(order),
        "fulfillable_quantity": unshipped(order),
        "fulfillment_status": fulfillment_status(order),
    }


def order_payload(order: SandboxOrder) -> dict:
    """The order as the store's order webhooks carry it: the shape of the leading platform's
    REST order resource (see `webhooks/sandbox.py`), with the fields the app reads.

    The store keeps each line's totals, not each shipment and refund, so shipped units are one
    fulfilment and refunded units one refund.
    """
    session = object_session(order)
    variant = session.get(SandboxVariant, order.variant_id)
    line = _line_item(order, variant)
    payload = {
        "id": order.id,
        "name": order_name(order),
        "email": order.email,
        "contact_email": order.email,
        "customer_locale": "en",
        "created_at": order.created_at.isoformat(),
        "updated_at": (order.updated_at or order.created_at).isoformat(),
        "cancelled_at": order.cancelled_at.isoformat() if order.cancelled_at else None,
        "cancel_reason": "customer" if order.cancelled_at else None,
        "fulfillment_status": fulfillment_status(order),
        "line_items": [line],
        "fulfillments": [],
        "refunds": [],
    }
    if order.shipped_quantity:
        payload["fulfillments"].append(
            {
                "id": order.id * 10 + 1,
                "order_id": order.id,
                "name": f"{order_name(order)}.1",
                "status": "success",
                "location_id": LOCATION,
                "line_items": [{**line, "quantity": order.shipped_quantity}],
            }
        )
    if order.refunded_quantity:
        payload["refunds"].append(
            {
                "id": order.id * 10 + 2,
                "order_id": order.id,
                "restock": True,
                "refund_line_items": [
                    _refund_line(order, line, order.refunded_quantity, order.id * 10 + 3)
                ],
            }
        )
    return payload


def _refund_line(order: SandboxOrder, line: dict, units: int, refund_line_id: int) -> dict:
    return {
        "id": refund_line_id,
        "line_item_id": line_item_id(order),
        "quantity": units,
        "restock_type": "cancel",  # refunded before shipping: back to stock
        "location_id": LOCATION,
        "line_item": line,
    }


def refund_payload(order: SandboxOrder, units: int, at: datetime) -> dict:
    """A refund, as `refunds/create` sends it: it names the order, not the order after it."""
    variant = object_session(order).get(SandboxVariant, order.variant_id)
    line = _line_item(order, variant)
    refund_id = order.id * 1000 + order.refunded_quantity
    return {
        "id": refund_id,
        "order_id": order.id,
        "created_at": at.isoformat(),
        "processed_at": at.isoformat(),
        "note": None,
        "restock": True,
        "user_id": None,
        "refund_line_items": [_refund_line(order, line, units, refund_id * 10 + 1)],
        "transactions": [],
        "order_adjustments": [],
    }


def order_edit_payload(order: SandboxOrder, removed: int, at: datetime) -> dict:
    """An order edit, as `orders/edited` sends it: what changed, not the order."""
    return {
        "order_edit": {
            "id": int(at.timestamp() * 1_000_000),
            "app_id": None,
            "created_at": at.isoformat(),
            "committed_at": at.isoformat(),
            "notify_customer": False,
            "order_id": order.id,
            "staff_note": "",
            "user_id": None,
            "line_items": {
                "additions": [],
                "removals": [{"id": line_item_id(order), "delta": removed}],
            },
            "discounts": {"line_item": {"additions": [], "removals": []}},
            "shipping_lines": {"additions": [], "removals": []},
        }
    }


def inventory_payload(variant: SandboxVariant) -> dict:
    return {
        "variant_id": variant.id,
        "location_id": LOCATION,
        "available": variant.inventory,
        "updated_at": variant.updated_at.isoformat(),
    }


def create_product(
    session: Session, shop: Shop, title: str, variants: list[tuple[str, str, int, str]]
) -> tuple[SandboxProduct, list[Webhook]]:
    """`variants` are (title, sku, inventory, policy)."""
    title = title.strip()
    if not title:
        raise SandboxError("A product needs a title.")
    if not variants:
        raise SandboxError("A product needs at least one variant.")
    product = SandboxProduct(shop_id=shop.id, title=title, updated_at=utcnow())
    for v_title, sku, inventory, policy in variants:
        if policy not in POLICIES:
            raise SandboxError(f"Policy must be one of {', '.join(POLICIES)}.")
        product.variants.append(
            SandboxVariant(
                shop_id=shop.id,
                title=v_title.strip() or "Default",
                sku=sku.strip(),
                inventory=inventory,
                policy=policy,
                updated_at=utcnow(),
            )
        )
    session.add(product)
    session.flush()
    return product, [Webhook("products/update", product_payload(product))]


def add_variant(
    session: Session, shop: Shop, product_id: int, title: str, sku: str, inventory: int, policy: str
) -> list[Webhook]:
    product = session.get(SandboxProduct, product_id)
    if product is None or product.shop_id != shop.id:
        raise SandboxError("No such product in this store.")
    if policy not in POLICIES:
        raise SandboxError(f"Policy must be one of {', '.join(POLICIES)}.")
    if not title.strip():
        raise SandboxError("A variant needs a title.")
    now = utcnow()
    product.variants.append(
        SandboxVariant(
            shop_id=shop.id,
            title=title.strip(),
            sku=sku.strip(),
            inventory=inventory,
            policy=policy,
            updated_at=now,
        )
    )
    product.updated_at = now
    session.flush()
    return [Webhook("products/update", product_payload(product))]


def get_variant(session: Session, shop: Shop, variant_id: int) -> SandboxVariant:
    variant = session.get(SandboxVariant, variant_id)
    if variant is None or variant.shop_id != shop.id:
        raise SandboxError("No such variant in this store.")
    return variant


def set_inventory(
    session: Session, shop: Shop, variant_id: int, inventory: int, policy: str | None = None
) -> list[Webhook]:
    variant = get_variant(session, shop, variant_id)
    hooks: list[Webhook] = []
    now = utcnow()
    if policy is not None and policy != variant.policy:
        if policy not in POLICIES:
            raise SandboxError(f"Policy must be one of {', '.join(POLICIES)}.")
        variant.policy = policy
        variant.product.updated_at = now
        hooks.append(Webhook("products/update", product_payload(variant.product)))
    if inventory != variant.inventory:
        variant.inventory = inventory
        variant.updated_at = now
        hooks.append(Webhook("inventory_levels/update", inventory_payload(variant)))
    return hooks


def receive_stock(session: Session, shop: Shop, variant_id: int, units: int) -> list[Webhook]:
    """A delivery from the supplier: `units` more on the shelf and on sale."""
    variant = get_variant(session, shop, variant_id)
    if units < 1:
        raise SandboxError("Receive at least 1 unit.")
    variant.inventory += units
    variant.updated_at = utcnow()
    return [Webhook("inventory_levels/update", inventory_payload(variant))]


def place_order(
    session: Session, shop: Shop, variant_id: int, quantity: int, email: str
) -> tuple[SandboxOrder, list[Webhook]]:
    """Checkout as a platform does it: refuse past zero unless the variant keeps selling."""
    variant = get_variant(session, shop, variant_id)
    if quantity < 1:
        raise SandboxError("Quantity must be at least 1.")
    if "@" not in email:
        raise SandboxError("A valid customer email is needed.")
    if variant.inventory < quantity and variant.effective_policy != "continue":
        raise SandboxError(f"Only {max(variant.inventory, 0)} of {variant.title} left.")
    now = utcnow()
    variant.inventory -= quantity
    variant.updated_at = now
    order = SandboxOrder(
        shop_id=shop.id,
        variant_id=variant.id,
        quantity=quantity,
        current_quantity=quantity,
        email=email,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    return order, [
        Webhook("orders/create", order_payload(order)),
        Webhook("inventory_levels/update", inventory_payload(variant)),
    ]


def get_order(session: Session, shop: Shop, order_id: int) -> SandboxOrder:
    order = session.get(SandboxOrder, order_id)
    if order is None or order.shop_id != shop.id:
        raise SandboxError("No such order in this store.")
    return order


def committed(session: Session, shop: Shop) -> dict[int, int]:
    """Per variant, units sold and not yet shipped: on hand, but no longer available."""
    rows = session.execute(
        select(
            SandboxOrder.variant_id,
            func.sum(
                func.coalesce(SandboxOrder.current_quantity, SandboxOrder.quantity)
                - SandboxOrder.shipped_quantity
            ),
        )
        .where(SandboxOrder.shop_id == shop.id, SandboxOrder.cancelled_at.is_(None))
        .group_by(SandboxOrder.variant_id)
    )
    return {variant_id: int(units or 0) for variant_id, units in rows}


def on_hand(session: Session, shop: Shop, variant: SandboxVariant) -> int:
    """Units on the shelf: available plus those sold but not shipped."""
    return variant.inventory + committed(session, shop).get(variant.id, 0)


def _open_for_change(order: SandboxOrder, verb: str) -> None:
    if order.cancelled_at is not None:
        raise SandboxError(f"Order {order_name(order)} is cancelled; it cannot be {verb}.")
    if not unshipped(order):
        raise SandboxError(
            f"Every unit on order {order_name(order)} has shipped; it cannot be {verb}."
        )


def _touch(order: SandboxOrder) -> datetime:
    now = utcnow()
    order.updated_at = now
    return now


def _restock(session: Session, order: SandboxOrder, units: int, now: datetime) -> list[Webhook]:
    """Units taken off an order before shipping go back on sale."""
    variant = session.get(SandboxVariant, order.variant_id)
    variant.inventory += units
    variant.updated_at = now
    return [Webhook("inventory_levels/update", inventory_payload(variant))]


def cancel_order(session: Session, shop: Shop, order_id: int) -> tuple[int, list[Webhook]]:
    """Cancel the order: its unshipped units go back to stock; what shipped stays shipped.

    Returns the units restocked and the webhooks.
    """
    order = get_order(session, shop, order_id)
    _open_for_change(order, "cancelled")
    units = unshipped(order)
    now = _touch(order)
    order.cancelled_at = now
    order.current_quantity = order.shipped_quantity
    session.flush()
    return units, [
        Webhook("orders/cancelled", order_payload(order)),
        *_restock(session, order, units, now),
    ]


def edit_quantity(
    session: Session, shop: Shop, order_id: int, quantity: int
) -> tuple[int, list[Webhook]]:
    """An order edit that takes units off the line (0 removes it); they go back to stock.

    Returns the units removed and the webhooks: `orders/edited` (the edit) and
    `orders/updated` (the order after it), as a real store sends them.
    """
    order = get_order(session, shop, order_id)
    _open_for_change(order, "edited")
    current = live_quantity(order)
    if quantity < 0:
        raise SandboxError("The new quantity cannot be negative.")
    if quantity < order.shipped_quantity:
        raise SandboxError(
            f"{order.shipped_quantity} unit(s) of order {order_name(order)} have shipped; "
            f"the quantity cannot go below {order.shipped_quantity}."
        )
    if quantity >= current:
        raise SandboxError(
            f"Order {order_name(order)} has {current} unit(s); an edit here can only take "
            "units off."
        )
    removed = current - quantity
    now = _touch(order)
    order.current_quantity = quantity
    session.flush()
    return removed, [
        Webhook("orders/edited", order_edit_payload(order, removed, now)),
        Webhook("orders/updated", order_payload(order)),
        *_restock(session, order, removed, now),
    ]


def refund_units(session: Session, shop: Shop, order_id: int, units: int) -> list[Webhook]:
    """Refund unshipped units of the line: they come off the order and go back to stock."""
    order = get_order(session, shop, order_id)
    _open_for_change(order, "refunded")
    if units < 1:
        raise SandboxError("Refund at least 1 unit.")
    if units > unshipped(order):
        raise SandboxError(
            f"Only {unshipped(order)} unit(s) of order {order_name(order)} are unshipped; "
            "shipped units are returned, not refunded here."
        )
    now = _touch(order)
    order.current_quantity = live_quantity(order) - units
    order.refunded_quantity += units
    session.flush()
    return [
        Webhook("refunds/create", refund_payload(order, units, now)),
        *_restock(session, order, units, now),
    ]


def ship_order(
    session: Session, shop: Shop, order_id: int, units: int | None = None
) -> tuple[int, list[Webhook]]:
    """Ship `units` (default: all unshipped) from stock on hand.

    Shipping takes units off the shelf, not off sale: they were subtracted from available
    when ordered, so available stock does not change.
    """
    order = get_order(session, shop, order_id)
    _open_for_change(order, "shipped")
    units = unshipped(order) if units is None else units
    if units < 1:
        raise SandboxError("Ship at least 1 unit.")
    if units > unshipped(order):
        raise SandboxError(
            f"Only {unshipped(order)} unit(s) of order {order_name(order)} are left to ship."
        )
    variant = session.get(SandboxVariant, order.variant_id)
    shelf = on_hand(session, shop, variant)
    if units > shelf:
        raise SandboxError(
            f"Only {max(shelf, 0)} unit(s) of {variant.title} on hand; "
            "receive stock before shipping."
        )
    _touch(order)
    order.shipped_quantity += units
    session.flush()
    topic = "orders/partially_fulfilled" if unshipped(order) else "orders/fulfilled"
    return units, [Webhook(topic, order_payload(order))]


def list_orders(session: Session, shop: Shop) -> list[SandboxOrder]:
    """The store's orders, newest first."""
    return list(
        session.scalars(
            select(SandboxOrder)
            .where(SandboxOrder.shop_id == shop.id)
            .order_by(SandboxOrder.created_at.desc(), SandboxOrder.id.desc())
        )
    )


def deliver(shop: Shop, hooks: list[Webhook], triggered_at: datetime | None = None) -> list[int]:
    """POST each webhook, signed, to the app's sandbox endpoint. Call after committing.

    Returns the HTTP statuses; anything but 200 means the app refused it.
    """
    settings = current_app.extensions["settings"]
    client = Client(current_app)
    statuses = []
    for hook in hooks:
        body, headers = sandbox_webhooks.build_delivery(
            settings.secret_key, shop.domain, hook.topic, hook.payload, triggered_at=triggered_at
        )
        response = client.post("/webhooks/sandbox", data=body, headers=headers)
        statuses.append(response.status_code)
    return statuses


def list_products(session: Session, shop: Shop) -> list[SandboxProduct]:
    return list(
        session.scalars(
            select(SandboxProduct)
            .where(SandboxProduct.shop_id == shop.id)
            .order_by(SandboxProduct.id)
        )
    )


class SandboxStoreApi:
    """The sandbox store's API for one store, as `connectors.sandbox.SandboxApi` describes it:
    the same JSON the store's webhooks carry, and another store's records do not exist."""

    def __init__(self, session: Session, shop: Shop):
        self.session = session
        self.shop = shop

    def _own(self, model, raw_id: str | None):
        if not raw_id or not str(raw_id).isdigit():
            return None
        row = self.session.get(model, int(raw_id))
        return row if row is not None and row.shop_id == self.shop.id else None

    def product(self, product_id: str) -> dict | None:
        product = self._own(SandboxProduct, product_id)
        return product_payload(product) if product else None

    def product_of_variant(self, variant_id: str) -> dict | None:
        variant = self._own(SandboxVariant, variant_id)
        return product_payload(variant.product) if variant else None

    def products_after(self, after: int, limit: int) -> tuple[list[dict], int]:
        mine = SandboxProduct.shop_id == self.shop.id
        total = self.session.scalar(select(func.count()).select_from(SandboxProduct).where(mine))
        products = self.session.scalars(
            select(SandboxProduct)
            .where(mine, SandboxProduct.id > after)
            .order_by(SandboxProduct.id)
            .limit(limit)
        )
        return [product_payload(p) for p in products], int(total or 0)

    def order(self, order_id: str) -> dict | None:
        order = self._own(SandboxOrder, order_id)
        return order_payload(order) if order else None

    def orders_updated_after(self, since: datetime) -> list[dict]:
        changed = func.coalesce(SandboxOrder.updated_at, SandboxOrder.created_at)
        orders = self.session.scalars(
            select(SandboxOrder)
            .where(SandboxOrder.shop_id == self.shop.id, changed > since)
            .order_by(changed, SandboxOrder.id)
        )
        return [order_payload(order) for order in orders]

    def store(self) -> dict:
        """The store's own settings: its zone is the shop's; the sandbox has no address."""
        return {
            "id": self.shop.id,
            "name": self.shop.name or self.shop.domain,
            "domain": self.shop.domain,
            "iana_timezone": self.shop.timezone,
            "primary_locale": "en",
            "country_code": None,
            "customer_email": self.shop.contact_email,
        }

    def remove_line(self, order_id: str, line_id: str) -> None:
        """An order edit to the units already shipped (0 removes the line); the store's
        webhooks go to the app once the caller's unit of work commits, like a real store's."""
        order = self._own(SandboxOrder, order_id)
        if order is None or str(line_item_id(order)) != str(line_id):
            raise SandboxError(f"Order {order_id} has no line {line_id}.")
        _removed, hooks = edit_quantity(self.session, self.shop, order.id, order.shipped_quantity)
        self._deliver_after_commit(hooks)

    def cancel_order(self, order_id: str) -> None:
        order = self._own(SandboxOrder, order_id)
        if order is None:
            raise SandboxError(f"Order {order_id} does not exist.")
        _restocked, hooks = cancel_order(self.session, self.shop, order.id)
        self._deliver_after_commit(hooks)

    def _deliver_after_commit(self, hooks: list[Webhook]) -> None:
        shop = self.shop

        def send(_session) -> None:
            # Within the committing job's own app context: the webhooks are new requests.
            deliver(shop, hooks)

        event.listen(self.session, "after_commit", send, once=True)

    def show_badges(self, badges) -> None:
        now = utcnow()
        ids = [str(b["variant_id"] or "") for b in badges]
        found = {
            str(v.id): v
            for v in self.session.scalars(
                select(SandboxVariant).where(
                    SandboxVariant.shop_id == self.shop.id,
                    SandboxVariant.id.in_([int(i) for i in ids if i.isdigit()]),
                )
            )
        }  # one statement for the batch, as a platform takes a batch in one call
        for badge, variant_id in zip(badges, ids, strict=True):
            variant = found.get(variant_id)
            if variant is None:
                continue  # deleted in the store since; nothing to show it on
            variant.badge_state = badge["state"]
            variant.badge_label = badge["label"]
            variant.badge_eta = badge["eta"]
            variant.badge_pushed_at = now
            variant.app_policy = badge["policy"]
