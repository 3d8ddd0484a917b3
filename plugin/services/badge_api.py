"""What the storefront badge API says about variants: public badge facts only.

Asked with a locale the store publishes, the labels and the date are in that language (the
storefront script sends the page's language); otherwise they are the store's primary
language's, as pushed to the platform.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from plugin.badge_engine import render_label
from plugin.models import Product, Shop, Variant, VariantBadge
from plugin.services.badge_labels import labels_for, language_of
from plugin.services.shop_time import format_eta

MAX_VARIANTS = 250


def badge_payload(
    badge: VariantBadge | Any | None,
    colours: dict[str, str],
    labels: dict[str, str] | None = None,
    locale: str | None = None,
) -> dict:
    """`badge`: a VariantBadge, or a row with its state, label and eta. `labels` are the
    shopper's language's (None: the label as decided, in the primary language); `locale`
    formats the date."""
    if badge is None:
        return {"state": None, "label": "", "eta": None, "eta_text": "", "color": None}
    eta_text = format_eta(badge.eta, locale)
    template = (labels or {}).get(badge.state.value)
    return {
        "state": badge.state.value,
        "label": render_label(template, eta_text) if template else badge.label,
        "eta": badge.eta.isoformat() if badge.eta else None,
        "eta_text": eta_text,
        "color": colours.get(badge.state.value),
    }


def badges_for(
    session: Session,
    shop: Shop,
    variant_ids: list[str],
    product_id: str | None,
    locale: str | None = None,
) -> dict[str, dict]:
    # Columns, not ORM objects: an answer of up to 250 variants builds no entities.
    query = (
        select(Variant.platform_id, VariantBadge.state, VariantBadge.label, VariantBadge.eta)
        .outerjoin(VariantBadge, VariantBadge.variant_id == Variant.id)
        .where(Variant.shop_id == shop.id)
    )
    if product_id is not None:
        query = query.join(Product, Product.id == Variant.product_id).where(
            Product.shop_id == shop.id, Product.platform_id == product_id
        )
    if variant_ids:
        query = query.where(Variant.platform_id.in_(variant_ids))
    settings = shop.settings
    colours = {
        "in_stock": settings.color_in_stock,
        "backorder": settings.color_backorder,
        "out_of_stock": settings.color_out_of_stock,
    }
    labels = labels_for(shop, language_of(locale)) if locale else None
    # A language the store does not publish gets the primary language's labels and dates.
    locale = locale if labels is not None else shop.locale
    found = {
        row.platform_id: badge_payload(
            row if row.state is not None else None, colours, labels, locale
        )
        for row in session.execute(query.order_by(Variant.id).limit(MAX_VARIANTS))
    }
    # Ids asked for but unknown get an explicit null badge, so a widget can tell "no badge".
    for variant_id in variant_ids:
        found.setdefault(variant_id, badge_payload(None, colours))
    return found


def badge_answer(
    session: Session,
    shop_id: int,
    variant_ids: list[str],
    product_id: str | None,
    locale: str | None = None,
) -> dict[str, Any]:
    """The badge API's answer for a shop. Read-only, so a read that found its pooled connection
    dead (PostgreSQL restarted since it was last used: SQLAlchemy then discards the pool's
    other connections too) is made again once, on a fresh connection, instead of answering a
    shopper's page with a 503."""
    for attempt in (1, 2):
        try:
            shop = session.get(Shop, shop_id)
            if shop is None:
                return {}
            return {
                "shop": shop.domain,
                "enabled": shop.settings.enabled,
                "variants": badges_for(session, shop, variant_ids, product_id, locale),
            }
        except DBAPIError as exc:
            session.rollback()
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
