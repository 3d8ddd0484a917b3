"""Support desk search: one box for an order number, a customer's address (or its start), a SKU
(or its start) or any part of a product title, within one shop.

Each key is one bounded query on its own index (see migration 0008), so the answer stays fast
however many lines the shop has:

- order number: `orders (shop_id, name)`, equality on the name as typed and with/without "#";
- address: `orders (shop_id, customer_email varchar_pattern_ops)`, a LIKE 'start%' (an exact
  address is its own prefix); the distinct addresses are picked first (LIMIT on the index
  order), then their orders and units owed are summed for those few addresses only;
- SKU: `variants (shop_id, sku)`, a LIKE 'start%';
- product title: the trigram GIN index on `products.title`, ILIKE '%part%' (3 characters at
  least, the shortest a trigram index can use; not for an address).

Every result group is capped at LIMIT rows; `more` says a group was cut. Input is checked
first: too long, or with control characters, is refused with a message (`SearchRefused`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import BackorderLine, Order, OrderLine, Product, Shop, Variant, VariantBadge
from plugin.services.admin_text import _
from plugin.services.ledger import OWING

MAX_QUERY = 200
LIMIT = 20
MIN_TITLE = 3


class SearchRefused(ValueError):
    """The query cannot be searched; `message` says why, for the person who typed it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class CustomerHit:
    email: str
    name: str
    orders: int
    owed: int


@dataclass(frozen=True)
class OrderHit:
    id: int
    name: str
    email: str | None
    customer_name: str
    placed_at: object
    cancelled: bool


@dataclass(frozen=True)
class VariantHit:
    id: int
    sku: str
    product: str
    title: str
    badge: str | None
    owed: int


@dataclass
class Results:
    query: str
    customers: list[CustomerHit] = field(default_factory=list)
    orders: list[OrderHit] = field(default_factory=list)
    variants: list[VariantHit] = field(default_factory=list)
    more: set[str] = field(default_factory=set)  # groups cut at LIMIT

    @property
    def empty(self) -> bool:
        return not (self.customers or self.orders or self.variants)


def clean(raw: str | None) -> str:
    """The query as searched, or SearchRefused. Surrounding spaces are dropped."""
    text = (raw or "").strip()
    if len(text) > MAX_QUERY:
        raise SearchRefused(
            _("Search for at most %(count)s characters.", count=MAX_QUERY),
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in text):
        raise SearchRefused(_("The search contains characters that cannot be searched."))
    return text


def _like_prefix(text: str) -> str:
    """A LIKE pattern matching strings that start with `text` (its wildcards taken literally)."""
    return _escape(text) + "%"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(session: Session, shop: Shop, raw: str | None, limit: int = LIMIT) -> Results:
    """Everything in `shop` the query names, grouped; raises SearchRefused for bad input."""
    query = clean(raw)
    results = Results(query=query)
    if not query:
        return results
    _orders(session, shop, query, results, limit)
    _customers(session, shop, query, results, limit)
    _variants(session, shop, query, results, limit)
    return results


def order_names(query: str) -> list[str]:
    """The names an order number may be stored under: as typed, with and without "#"."""
    bare = query.lstrip("#").strip()
    names = {query}
    if bare:
        names |= {bare, f"#{bare}"}
    return sorted(names)


def _orders(session: Session, shop: Shop, query: str, results: Results, limit: int) -> None:
    rows = session.execute(
        select(
            Order.id,
            Order.name,
            Order.customer_email,
            Order.customer_name,
            Order.placed_at,
            Order.cancelled_at,
        )
        .where(Order.shop_id == shop.id, Order.name.in_(order_names(query)))
        .order_by(Order.placed_at.desc(), Order.id.desc())
        .limit(limit + 1)
    ).all()
    if len(rows) > limit:
        results.more.add("orders")
    results.orders = [
        OrderHit(
            id=r.id,
            name=r.name,
            email=r.customer_email,
            customer_name=r.customer_name or "",
            placed_at=r.placed_at,
            cancelled=r.cancelled_at is not None,
        )
        for r in rows[:limit]
    ]


def _customers(session: Session, shop: Shop, query: str, results: Results, limit: int) -> None:
    prefix = query.lower()
    emails = list(
        session.scalars(
            select(Order.customer_email)
            .distinct()
            .where(
                Order.shop_id == shop.id,
                Order.customer_email.like(_like_prefix(prefix), escape="\\"),
            )
            .order_by(Order.customer_email)
            .limit(limit + 1)
        )
    )
    # The addresses of the orders found by number are customers too.
    for hit in results.orders:
        if hit.email and hit.email not in emails:
            emails.append(hit.email)
    if len(emails) > limit:
        results.more.add("customers")
        emails = emails[:limit]
    if not emails:
        return
    orders = dict(
        session.execute(
            select(Order.customer_email, func.count(Order.id))
            .where(Order.shop_id == shop.id, Order.customer_email.in_(emails))
            .group_by(Order.customer_email)
        ).all()
    )
    names = dict(
        session.execute(
            select(Order.customer_email, func.max(Order.customer_name))
            .where(Order.shop_id == shop.id, Order.customer_email.in_(emails))
            .group_by(Order.customer_email)
        ).all()
    )
    owed = dict(
        session.execute(
            select(
                Order.customer_email,
                func.sum(BackorderLine.open_quantity + BackorderLine.allocated_quantity),
            )
            .join(OrderLine, OrderLine.order_id == Order.id)
            .join(BackorderLine, BackorderLine.order_line_id == OrderLine.id)
            .where(
                Order.shop_id == shop.id,
                Order.customer_email.in_(emails),
                BackorderLine.status.in_(OWING),
            )
            .group_by(Order.customer_email)
        ).all()
    )
    results.customers = [
        CustomerHit(
            email=email,
            name=names.get(email) or "",
            orders=int(orders.get(email) or 0),
            owed=int(owed.get(email) or 0),
        )
        for email in emails
    ]


def _variants(session: Session, shop: Shop, query: str, results: Results, limit: int) -> None:
    by_sku = list(
        session.scalars(
            select(Variant.id)
            .where(Variant.shop_id == shop.id, Variant.sku.like(_like_prefix(query), escape="\\"))
            .order_by(Variant.sku, Variant.id)
            .limit(limit + 1)
        )
    )
    by_title: list[int] = []
    if len(query) >= MIN_TITLE and "@" not in query:  # an address is not a product's name
        products = (
            select(Product.id)
            .where(
                Product.shop_id == shop.id,
                Product.title.ilike("%" + _escape(query) + "%", escape="\\"),
            )
            .order_by(Product.title, Product.id)
            .limit(limit + 1)
            .subquery()
        )
        by_title = list(
            session.scalars(
                select(Variant.id)
                .where(Variant.product_id.in_(select(products.c.id)))
                .order_by(Variant.product_id, Variant.id)
                .limit(limit + 1)
            )
        )
    ids = list(dict.fromkeys(by_sku + by_title))
    if len(ids) > limit or len(by_sku) > limit or len(by_title) > limit:
        results.more.add("variants")
    ids = ids[:limit]
    if not ids:
        return
    owed = dict(
        session.execute(
            select(
                BackorderLine.variant_id,
                func.sum(BackorderLine.open_quantity + BackorderLine.allocated_quantity),
            )
            .where(BackorderLine.variant_id.in_(ids), BackorderLine.status.in_(OWING))
            .group_by(BackorderLine.variant_id)
        ).all()
    )
    rows = session.execute(
        select(Variant.id, Variant.sku, Variant.title, Product.title, VariantBadge.state)
        .join(Product, Product.id == Variant.product_id)
        .outerjoin(VariantBadge, VariantBadge.variant_id == Variant.id)
        .where(Variant.id.in_(ids), Variant.shop_id == shop.id)
    ).all()
    found = {r[0]: r for r in rows}
    results.variants = [
        VariantHit(
            id=vid,
            sku=found[vid][1] or "",
            product=found[vid][3] or "",
            title=found[vid][2] or "",
            badge=str(found[vid][4]) if found[vid][4] is not None else None,
            owed=int(owed.get(vid) or 0),
        )
        for vid in ids
        if vid in found
    ]
