"""The notify-me waitlist a merchant reads: who waits for which variant, and a CSV of it.

The demand behind "out of stock" is the merchant's best reorder signal, per size and colour, so
every admin shows, per variant, how many wait (and how many confirmed their address) and since
when. Counting is done by the database (GROUP BY), so a variant with 10,000 sign-ups costs one
row. Every query is scoped to one shop.

The CSV goes into spreadsheets, where a cell starting with = + - @ (or a tab or carriage
return) would be read as a formula: such cells get a leading apostrophe (OWASP's advice).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from plugin.models import NotifySubscription, Product, Shop, SubscriptionStatus, Variant
from plugin.models.notify import WAITING
from plugin.services.shop_time import shop_zone

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = (
    "Variant ID",
    "SKU",
    "Product",
    "Variant",
    "Email",
    "Status",
    "Locale",
    "Signed up (UTC)",
    "Confirmed (UTC)",
    "Consent version",
    "Form",
)
EXPORT_BATCH = 1000


@dataclass(frozen=True)
class WaitlistRow:
    variant_id: int  # the app's id
    platform_id: str  # the store's own variant id, as the merchant knows it
    sku: str
    product: str
    variant: str
    waiting: int  # pending + active
    confirmed: int  # active: ready to be alerted
    oldest: datetime  # the oldest waiting sign-up
    # The shop's zone, where people read the times.
    timezone: str = "UTC"

    @property
    def oldest_local(self) -> str:
        """The oldest sign-up as the merchant reads it: in the shop's zone, named."""
        moment = self.oldest.astimezone(shop_zone(self.timezone))
        return moment.strftime("%Y-%m-%d %H:%M %Z")

    @property
    def unconfirmed(self) -> int:
        return self.waiting - self.confirmed

    def as_json(self) -> dict:
        return {
            "variant_id": self.platform_id,
            "sku": self.sku,
            "product": self.product,
            "variant": self.variant,
            "waiting": self.waiting,
            "confirmed": self.confirmed,
            "unconfirmed": self.unconfirmed,
            "oldest_sign_up": self.oldest.isoformat(),
            "oldest_sign_up_local": self.oldest_local,
        }


@dataclass(frozen=True)
class Waitlist:
    rows: list[WaitlistRow]
    variants: int  # variants with anyone waiting (rows may be cut at `limit`)
    waiting: int
    confirmed: int

    def as_json(self) -> dict:
        return {
            "variants": self.variants,
            "waiting": self.waiting,
            "confirmed": self.confirmed,
            "rows": [row.as_json() for row in self.rows],
        }


def _waiting_in(shop: Shop):
    return (
        NotifySubscription.shop_id == shop.id,
        NotifySubscription.status.in_(WAITING),
    )


def waitlist(session: Session, shop: Shop, limit: int | None = None) -> Waitlist:
    """Per variant with anyone waiting: counts and the oldest sign-up, longest list first."""
    waiting = func.count(NotifySubscription.id)
    confirmed = func.sum(case((NotifySubscription.status == SubscriptionStatus.ACTIVE, 1), else_=0))
    oldest = func.min(NotifySubscription.created_at)
    query = (
        select(
            Variant.id,
            Variant.platform_id,
            Variant.sku,
            Product.title,
            Variant.title,
            waiting,
            confirmed,
            oldest,
        )
        .join(Variant, Variant.id == NotifySubscription.variant_id)
        .outerjoin(Product, Product.id == Variant.product_id)
        .where(*_waiting_in(shop), Variant.shop_id == shop.id)
        .group_by(Variant.id, Variant.platform_id, Variant.sku, Variant.title, Product.title)
        .order_by(waiting.desc(), oldest, Variant.id)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = [
        WaitlistRow(
            variant_id=vid,
            platform_id=platform_id,
            sku=sku or "",
            product=product or "",
            variant=title or "",
            waiting=int(count),
            confirmed=int(ready or 0),
            oldest=first,
            timezone=shop.timezone or "UTC",
        )
        for vid, platform_id, sku, product, title, count, ready, first in session.execute(query)
    ]
    totals = session.execute(
        select(
            func.count(func.distinct(NotifySubscription.variant_id)),
            func.count(NotifySubscription.id),
            func.sum(case((NotifySubscription.status == SubscriptionStatus.ACTIVE, 1), else_=0)),
        ).where(*_waiting_in(shop))
    ).one()
    return Waitlist(
        rows=rows, variants=int(totals[0]), waiting=int(totals[1]), confirmed=int(totals[2] or 0)
    )


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _moment(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value is not None else ""


def export_rows(session: Session, shop: Shop, *, everyone: bool = False) -> Iterator[list[str]]:
    """One row per sign-up, by variant then sign-up order; waiting ones only unless
    `everyone` (then alerted and unsubscribed ones too)."""
    query = (
        select(NotifySubscription, Variant.platform_id, Variant.sku, Variant.title, Product.title)
        .join(Variant, Variant.id == NotifySubscription.variant_id)
        .outerjoin(Product, Product.id == Variant.product_id)
        .where(NotifySubscription.shop_id == shop.id, Variant.shop_id == shop.id)
        .order_by(Variant.id, NotifySubscription.created_at, NotifySubscription.id)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    if not everyone:
        query = query.where(NotifySubscription.status.in_(WAITING))
    for sub, platform_id, sku, title, product in session.execute(query):
        yield [
            safe_cell(cell)
            for cell in (
                platform_id,
                sku,
                product,
                title,
                sub.email,
                sub.status.value,
                sub.locale,
                _moment(sub.created_at),
                _moment(sub.confirmed_at),
                sub.consent_version,
                sub.form,
            )
        ]


def export_csv(session: Session, shop: Shop, *, everyone: bool = False) -> str:
    """The whole CSV, built while the request's transaction is open (rows are read a batch
    at a time): a BOM so spreadsheets read it as UTF-8, the header, then the rows."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    writer.writerows(export_rows(session, shop, everyone=everyone))
    return buffer.getvalue()


def export_filename(shop: Shop, now: datetime) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in shop.domain)[:60]
    return f"waitlist-{safe}-{now:%Y-%m-%d}.csv"
