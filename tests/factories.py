"""The one place tests build what they need: shops on every platform, mirrored products and
variants, badges, backorder lines, sandbox orders and stored webhook deliveries. Each builder
commits, so what it returns is what a request or a job would find.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from domain.platforms import Platform
from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BadgeKind,
    InventoryLevel,
    Order,
    OrderLine,
    Product,
    Shop,
    StoreUser,
    Variant,
    VariantBadge,
    WebhookEvent,
    utcnow,
)
from plugin.services import sandbox_store, shops
from plugin.services.catalog import remember_location
from plugin.services.tokens import vault

SANDBOX_SHOP = sandbox_store.DEMO_SHOP
SHOPIFY_SHOP = "backorder-demo.myshopify.com"
SHOPIFY_TOKEN = "shpat_test_offline_token"
BIGCOMMERCE_STORE = "g5cd38"
BIGCOMMERCE_TOKEN = "bc-access-token"
BIGCOMMERCE_HOOK_SECRET = "hook-secret-from-registration"


def shop(
    domain: str = SANDBOX_SHOP,
    platform: Platform = Platform.SANDBOX,
    *,
    token: str | None = None,
    refresh_token: str | None = None,
    expires_in: timedelta | None = None,
    scopes: str = "",
    timezone: str | None = None,
    webhook_secret: str | None = None,
    owner: int | str | None = None,
    users: Iterable[int | str] = (),
) -> Shop:
    """An installed shop. `owner` and `users` are a multi-user store's staff with access."""
    now = utcnow()
    created = shops.install_shop(
        db.session,
        vault(),
        platform,
        domain,
        access_token=token,
        refresh_token=refresh_token,
        access_token_expires_at=now + expires_in if expires_in is not None else None,
        refresh_token_expires_at=now + timedelta(days=90) if refresh_token else None,
        scopes=scopes,
        timezone=timezone,
    )
    if webhook_secret is not None:
        shops.set_webhook_secret(created, webhook_secret)
    for user_id in dict.fromkeys([*([owner] if owner is not None else []), *users]):
        db.session.add(
            StoreUser(
                shop_id=created.id,
                user_id=str(user_id),
                email=f"{user_id}@example.com",
                is_owner=user_id == owner,
                admitted_at=now,
            )
        )
    db.session.commit()
    return created


def shopify_shop(
    domain: str = SHOPIFY_SHOP,
    *,
    token: str = SHOPIFY_TOKEN,
    refresh_token: str | None = None,
    expires_in: timedelta | None = None,
    scopes: str = "",
) -> Shop:
    return shop(
        domain,
        Platform.SHOPIFY,
        token=token,
        refresh_token=refresh_token,
        expires_in=expires_in,
        scopes=scopes,
    )


def bigcommerce_store(
    store_hash: str = BIGCOMMERCE_STORE,
    *,
    token: str = BIGCOMMERCE_TOKEN,
    webhook_secret: str | None = BIGCOMMERCE_HOOK_SECRET,
    owner: int | str | None = None,
    users: Iterable[int | str] = (),
) -> Shop:
    return shop(
        store_hash,
        Platform.BIGCOMMERCE,
        token=token,
        webhook_secret=webhook_secret,
        owner=owner,
        users=users,
    )


def product(
    owner: Shop,
    platform_id: str,
    title: str = "",
    variants: Iterable[dict] = (),
) -> Product:
    """A mirrored product. Each variant is a dict of `Variant` columns, plus optionally
    `levels` ({location: available}) and `badge` ((state, label, eta))."""
    made = Product(shop_id=owner.id, platform_id=platform_id, title=title or platform_id)
    db.session.add(made)
    db.session.flush()
    for spec in variants:
        spec = dict(spec)
        levels = spec.pop("levels", None) or {}
        badge = spec.pop("badge", None)
        variant = Variant(shop_id=owner.id, product=made, **spec)
        db.session.add(variant)
        db.session.flush()
        for location_id, available in levels.items():
            variant.levels.append(
                InventoryLevel(shop_id=owner.id, location_id=location_id, available=available)
            )
            remember_location(db.session, owner.id, location_id)
        if levels and "inventory_total" not in spec:
            variant.inventory_total = sum(levels.values())
        if badge is not None:
            state, label, eta = badge
            db.session.add(
                VariantBadge(
                    variant_id=variant.id,
                    shop_id=owner.id,
                    state=BadgeKind(state),
                    label=label,
                    eta=eta,
                )
            )
    db.session.commit()
    return made


def order(
    owner: Shop,
    order_id: str,
    lines: Iterable[tuple[Variant, int]],
    *,
    email: str | None = None,
    name: str = "",
    placed_at: datetime | None = None,
) -> Order:
    """An order as the ledger keeps it: `lines` are (variant, units ordered)."""
    made = Order(
        shop_id=owner.id,
        platform_id=order_id,
        name=name or f"#{order_id}",
        placed_at=placed_at or utcnow(),
        customer_email=email,
    )
    db.session.add(made)
    db.session.flush()
    for number, (variant, quantity) in enumerate(lines, start=1):
        db.session.add(
            OrderLine(
                shop_id=owner.id,
                order_id=made.id,
                platform_id=f"{order_id}-{number}",
                variant_id=variant.id,
                ordered_quantity=quantity,
                current_quantity=quantity,
            )
        )
    db.session.commit()
    return made


def backorder_line(
    variant: Variant,
    order_id: str,
    *,
    quantity: int = 1,
    email: str | None = None,
    ordered_at: datetime | None = None,
) -> BackorderLine:
    """An order of `quantity` units of `variant`, all of them open on backorder."""
    owner = db.session.get(Shop, variant.shop_id)
    made = order(owner, order_id, [(variant, quantity)], email=email, placed_at=ordered_at)
    line = BackorderLine(
        shop_id=variant.shop_id,
        variant_id=variant.id,
        order_line_id=made.lines[0].id,
        ordered_at=made.placed_at,
        quantity=quantity,
        open_quantity=quantity,
    )
    db.session.add(line)
    db.session.commit()
    return line


def sandbox_order(owner: Shop, variant_id: int, quantity: int = 1, email: str = "a@example.com"):
    """Checkout on the sandbox store; returns the order and the webhooks to deliver."""
    order, hooks = sandbox_store.place_order(db.session, owner, variant_id, quantity, email)
    db.session.commit()
    return order, hooks


def sandbox_product(
    owner: Shop,
    title: str = "Tee",
    variants: Iterable[tuple[str, str, int, str]] = (("Medium", "TEE-M", 0, "continue"),),
    *,
    deliver: bool = True,
):
    """A product in the sandbox store; `variants` are (title, sku, stock, deny|continue).
    Its `products/update` webhook is delivered to the app unless `deliver` is False."""
    made, hooks = sandbox_store.create_product(db.session, owner, title, list(variants))
    db.session.commit()
    if deliver:
        assert sandbox_store.deliver(owner, hooks) == [200] * len(hooks)
    return made


def today_plus(days: int) -> date:
    return utcnow().date() + timedelta(days=days)


def store_locations(owner: Shop, *location_ids: str) -> None:
    """Stock locations the store has already reported (as the mirror learns them from stock)."""
    for location_id in location_ids:
        remember_location(db.session, owner.id, location_id)
    db.session.commit()


def notify_subscription(
    variant: Variant,
    email: str = "shopper@example.com",
    *,
    status: str = "active",
    created_at: datetime | None = None,
    locale: str = "en",
    form: str = "sandbox",
    consent_text: str = "I agree to receive one email when this item is back in stock.",
    consent_version: str = "c0ffee123456",
    page_url: str | None = "https://shop.example/products/tee",
    ip_truncated: str | None = "203.0.113.0/24",
    user_agent: str | None = "Mozilla/5.0 (X11; Linux x86_64)",
):
    """A notify-me sign-up for `variant`, as the sign-up service stores it (status pending,
    active, alerted or unsubscribed); confirmed when active or later, unless pending."""
    from plugin.models import NotifySubscription, SubscriptionStatus

    at = created_at or utcnow()
    state = SubscriptionStatus(status)
    made = NotifySubscription(
        shop_id=variant.shop_id,
        variant_id=variant.id,
        email=email.lower(),
        locale=locale,
        status=state,
        token=secrets.token_urlsafe(32),
        consent_text=consent_text,
        consent_version=consent_version,
        form=form,
        page_url=page_url,
        ip_truncated=ip_truncated,
        user_agent=user_agent,
        double_opt_in=state == SubscriptionStatus.PENDING,
        created_at=at,
        confirmed_at=None if state == SubscriptionStatus.PENDING else at,
        alerted_at=at if state == SubscriptionStatus.ALERTED else None,
        unsubscribed_at=at if state == SubscriptionStatus.UNSUBSCRIBED else None,
    )
    db.session.add(made)
    db.session.commit()
    return made


def stored_webhook(owner: Shop, topic: str, body: bytes, **fields) -> WebhookEvent:
    """A delivery as the inbox stores it for `owner` (pending, received now, an event id of its
    own); `fields` set any other column (status, received_at, headers, order_id, ...)."""
    event = WebhookEvent(
        platform=str(owner.platform),
        shop_id=owner.id,
        shop_domain=owner.domain,
        topic=topic,
        event_id=fields.pop("event_id", f"evt-{uuid.uuid4().hex}"),
        received_at=fields.pop("received_at", utcnow()),
        body=body,
        **fields,
    )
    db.session.add(event)
    db.session.commit()
    return event
