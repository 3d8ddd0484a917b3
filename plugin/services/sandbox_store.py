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
from sqlalchemy import func, select
from sqlalchemy.orm import Session
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


def order_payload(order: SandboxOrder) -> dict:
    return {
        "id": order.id,
        "name": f"#{1000 + order.id}",
        "email": order.email,
        "created_at": order.created_at.isoformat(),
        "line_items": [
            {"id": order.id * 10, "variant_id": order.variant_id, "quantity": order.quantity}
        ],
    }


def inventory_payload(variant: SandboxVariant) -> dict:
    return {
        "variant_id": variant.id,
        "location_id": "default",
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

    def show_badges(self, badges) -> None:
        now = utcnow()
        for badge in badges:
            variant = self._own(SandboxVariant, badge["variant_id"])
            if variant is None:
                continue  # deleted in the store since; nothing to show it on
            variant.badge_state = badge["state"]
            variant.badge_label = badge["label"]
            variant.badge_eta = badge["eta"]
            variant.badge_pushed_at = now
            variant.app_policy = badge["policy"]
