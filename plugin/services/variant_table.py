"""The Variants page: every variant of a shop, searched, filtered and paged in SQL.

A shop may have 50,000 variants, so the page never loads them all: one query answers a page
(product and variant titles, SKU, stock, the badge shoppers see, and the units owed against the
limit from one aggregate over the shop's open backorder lines), and one more counts the matches.
Every query is scoped to one shop, so another shop's ids never match. Editing lives in
`variant_edits` (saving only what changed, bulk edits); the names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from datetime import date

from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from domain.badges import BadgeKind
from plugin.models import (
    BackorderLine,
    NotifySubscription,
    Product,
    Shop,
    Variant,
    VariantBadge,
)
from plugin.models.notify import WAITING
from plugin.services.admin_text import _
from plugin.services.ledger import OWING
from plugin.services.shop_time import shop_today

PER_PAGE = 50
# Big enough for a merchant's long screen, small enough that a page's form stays far below
# Werkzeug's 1,000 form parts (three inputs a row).
MAX_PER_PAGE = 200
MAX_QUERY = 100
# What the state filter offers, in the merchant's words.
STATES = {
    "in_stock": "In stock",
    "backorder": "Backorder",
    "out_of_stock": "Out of stock",
}
FLAGS = {
    "has_eta": "Has an ETA",
    "limit_reached": "Limit reached",
    "waiting": "Customers waiting",
}


@dataclass(frozen=True)
class Filters:
    query: str = ""
    state: str = ""
    has_eta: bool = False
    limit_reached: bool = False
    waiting: bool = False

    @property
    def active(self) -> bool:
        return bool(self.query or self.state or self.has_eta or self.limit_reached or self.waiting)

    def as_args(self) -> dict[str, str]:
        """The filter as query-string arguments (links to other pages keep it)."""
        args = {"q": self.query, "state": self.state}
        args.update({name: "1" for name in FLAGS if getattr(self, name)})
        return {k: v for k, v in args.items() if v}


def filters_from(args: Mapping[str, str]) -> tuple[Filters, str | None]:
    """The filter a request asks for, or why it cannot be used (an unknown state, say)."""
    # Control characters (a NUL cannot even reach PostgreSQL) are dropped from the words.
    typed = "".join(c for c in str(args.get("q") or "") if c.isprintable() or c.isspace())
    query = " ".join(typed.split())[:MAX_QUERY]
    state = str(args.get("state") or "").strip()
    problem = None
    if state and state not in STATES:
        problem = _(
            "Unknown state %(state)r; use one of: %(states)s.",
            state=state[:30],
            states=", ".join(STATES),
        )
        state = ""
    flags = {name: str(args.get(name) or "") in ("1", "on", "true", "yes") for name in FLAGS}
    return Filters(query=query, state=state, **flags), problem


@dataclass(frozen=True)
class Row:
    id: int
    platform_id: str
    product: str
    title: str
    sku: str
    stock: int
    tracked: bool
    state: str | None  # the badge shoppers see; None before the first decision
    label: str
    owed: int  # units promised to customers and not yet shipped
    limit: int | None  # the limit in force (the platform's own where it has one)
    limit_is_native: bool
    waiting: int  # notify-me sign-ups waiting for it
    eta: date | None
    lead_days: int | None
    backorder_limit: int | None  # the merchant's own limit, as edited here
    eta_passed: bool

    @property
    def name(self) -> str:
        return f"{self.product} · {self.title}" if self.product else self.title

    @property
    def owed_text(self) -> str:
        """'3 of 5': units owed against the limit ('3 owed' when there is none)."""
        if self.limit is None:
            return _("%(owed)s owed", owed=self.owed) if self.owed else _("none owed")
        return _("%(owed)s of %(limit)s", owed=self.owed, limit=self.limit)

    @property
    def limit_reached(self) -> bool:
        return self.limit is not None and self.owed >= self.limit

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "platform_id": self.platform_id,
            "product": self.product,
            "title": self.title,
            "sku": self.sku,
            "stock": self.stock,
            "tracked": self.tracked,
            "state": self.state,
            "label": self.label,
            "owed": self.owed,
            "limit": self.limit,
            "limit_is_native": self.limit_is_native,
            "owed_text": self.owed_text,
            "limit_reached": self.limit_reached,
            "waiting": self.waiting,
            "eta": self.eta.isoformat() if self.eta else None,
            "lead": self.lead_days,
            "backorder_limit": self.backorder_limit,
            "eta_passed": self.eta_passed,
        }


@dataclass
class Listing:
    rows: list[Row]
    total: int
    page: int
    per_page: int
    filters: Filters
    problem: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0

    def as_json(self) -> dict:
        return {
            "rows": [row.as_json() for row in self.rows],
            "total": self.total,
            "page": self.page,
            "pages": self.pages,
            "per_page": self.per_page,
            "filters": self.filters.as_args(),
        }


def _owed(shop_id: int):
    """Units owed per variant of the shop: one GROUP BY over its open backorder lines."""
    return (
        select(
            BackorderLine.variant_id.label("variant_id"),
            func.sum(BackorderLine.open_quantity + BackorderLine.allocated_quantity).label("owed"),
        )
        .where(BackorderLine.shop_id == shop_id, BackorderLine.status.in_(OWING))
        .group_by(BackorderLine.variant_id)
        .subquery("owed")
    )


def _waiting(shop_id: int):
    return (
        select(
            NotifySubscription.variant_id.label("variant_id"),
            func.count().label("waiting"),
        )
        .where(NotifySubscription.shop_id == shop_id, NotifySubscription.status.in_(WAITING))
        .group_by(NotifySubscription.variant_id)
        .subquery("waiting")
    )


def _limit_and_owed(owed):
    """The limit in force and the units counted against it, as SQL: a platform's own backorder
    count and limit replace the app's, as when the badge is decided."""
    native = Variant.native_backorder_limit.is_not(None)
    limit = case((native, Variant.native_backorder_limit), else_=Variant.backorder_limit)
    counted = case(
        (native, func.coalesce(Variant.native_backordered, 0)),
        else_=func.coalesce(owed.c.owed, 0),
    )
    return limit, counted


def _search(words: list[str]):
    text = func.concat_ws(" ", Product.title, Variant.title, Variant.sku)
    return and_(*(text.icontains(word, autoescape=True) for word in words))


def _filtered(
    shop: Shop, filters: Filters, columns: list, today: date, *, with_owed: bool = False
) -> tuple[Select, object, object]:
    """The shop's variants matching `filters`, with only the joins they (or the page's columns,
    `with_owed`) need; also the limit in force and the units counted against it, as SQL."""
    owed = _owed(shop.id)
    limit, counted = _limit_and_owed(owed)
    query = (
        select(*columns)
        .select_from(Variant)
        .join(Product, Product.id == Variant.product_id)
        .outerjoin(VariantBadge, VariantBadge.variant_id == Variant.id)
        .where(Variant.shop_id == shop.id)
    )
    if with_owed or filters.limit_reached or filters.waiting:
        query = query.outerjoin(owed, owed.c.variant_id == Variant.id)
    if filters.query:
        query = query.where(_search(filters.query.split()))
    if filters.state:
        query = query.where(VariantBadge.state == BadgeKind(filters.state))
    if filters.has_eta:
        query = query.where(Variant.eta_override.is_not(None), Variant.eta_override >= today)
    if filters.limit_reached:
        query = query.where(limit.is_not(None), counted >= limit)
    if filters.waiting:
        signed_up = exists().where(
            NotifySubscription.shop_id == shop.id,
            NotifySubscription.variant_id == Variant.id,
            NotifySubscription.status.in_(WAITING),
        )
        query = query.where(or_(counted > 0, signed_up))
    return query, limit, counted


def matching_ids(session: Session, shop: Shop, filters: Filters) -> list[int]:
    """Every variant a filter matches, all pages: what a bulk edit over a filter changes."""
    query, *_ = _filtered(shop, filters, [Variant.id], shop_today(shop.timezone))
    return list(session.scalars(query.order_by(Variant.id)))


def page(
    session: Session,
    shop: Shop,
    query: str = "",
    filters: Mapping[str, str] | Filters | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> Listing:
    """One page of the shop's variants, by product title then variant; `query` searches titles
    (product and variant: the option values) and SKUs, every word having to match."""
    if isinstance(filters, Filters):
        chosen, problem = filters, None
        if query:
            chosen = Filters(" ".join(str(query).split())[:MAX_QUERY], *astuple(filters)[1:])
    else:
        given = filters or {}
        args = {name: given.get(name) for name in ("q", "state", *FLAGS)}
        if query:
            args["q"] = query
        chosen, problem = filters_from(args)
    per_page = max(1, min(int(per_page), MAX_PER_PAGE))
    today = shop_today(shop.timezone)
    count_query, *_ = _filtered(shop, chosen, [func.count(Variant.id)], today)
    total = session.scalar(count_query) or 0
    last_page = max(1, -(-total // per_page))
    page = max(1, min(int(page), last_page))

    waiting = _waiting(shop.id)
    rows_query, limit, counted = _filtered(
        shop,
        chosen,
        [
            Variant.id,
            Variant.platform_id,
            Product.title,
            Variant.title,
            Variant.sku,
            Variant.inventory_total,
            Variant.tracked,
            VariantBadge.state,
            VariantBadge.label,
            Variant.native_backorder_limit,
            Variant.eta_override,
            Variant.lead_days_override,
            Variant.backorder_limit,
        ],
        today,
        with_owed=True,
    )
    rows_query = (
        rows_query.add_columns(counted.label("counted"), limit.label("limit_in_force"))
        .add_columns(func.coalesce(waiting.c.waiting, 0))
        .outerjoin(waiting, waiting.c.variant_id == Variant.id)
        .order_by(Product.title, Variant.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = []
    for r in session.execute(rows_query):
        (vid, pid, product, title, sku, stock, tracked, state, label) = r[:9]
        native, eta, lead, own_limit, counted_units, in_force, signed_up = r[9:]
        rows.append(
            Row(
                id=vid,
                platform_id=pid,
                product=product or "",
                title=title,
                sku=sku or "",
                stock=stock,
                tracked=tracked,
                state=state.value if state is not None else None,
                label=label or "",
                owed=int(counted_units or 0),
                limit=in_force,
                limit_is_native=native is not None,
                waiting=int(signed_up or 0),
                eta=eta,
                lead_days=lead,
                backorder_limit=own_limit,
                eta_passed=eta is not None and eta < today,
            )
        )
    return Listing(rows, total, page, per_page, chosen, problem)


def page_number(raw) -> int:
    """A page number from a query string: anything odd is the first page."""
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and len(text) < 7 else 1


from plugin.services.variant_edits import (  # noqa: E402  (re-exported: one module to call)
    BulkResult,
    SaveResult,
    bulk,
    bulk_edit,
    bulk_request,
    changes_from_form,
    changes_from_json,
    save,
    save_rows,
)

__all__ = [
    "BulkResult",
    "Filters",
    "Listing",
    "Row",
    "SaveResult",
    "bulk",
    "bulk_edit",
    "bulk_request",
    "changes_from_form",
    "changes_from_json",
    "filters_from",
    "matching_ids",
    "page",
    "page_number",
    "save",
    "save_rows",
]
