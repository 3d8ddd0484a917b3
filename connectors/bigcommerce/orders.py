"""BigCommerce orders as the ledger's snapshots: the V2 order and order-products reads
(V3 has no equivalent for an order's products), and the V2 order updates that cancel.

An order is two calls (the order, its products; one more per further 250 lines). A
reconciliation reads one call per 250 orders changed since the last run plus one per such
order (its products).
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from connectors.bigcommerce.client import BigCommerceClient, NotFound
from domain import events as ev
from webhooks.bigcommerce import product_item_id

ORDER_PRODUCTS_LIMIT = 250
ORDERS_LIMIT = 250
MAX_PAGES = 10_000
# V2 order status ids (`GET /v2/order_statuses`; merchants may relabel them, never renumber).
STATUS_INCOMPLETE = 0
STATUS_REFUNDED = 4
STATUS_CANCELLED = 5
STATUS_DECLINED = 6
# Nothing more of the order ships under these: checkout never finished (Incomplete, which
# `store/order/created` also fires for), the whole order refunded, cancelled, or declined.
NOTHING_MORE_SHIPS = frozenset(
    {STATUS_INCOMPLETE, STATUS_REFUNDED, STATUS_CANCELLED, STATUS_DECLINED}
)
# `min_date_modified` is read one second back (dates are whole seconds, and it is not said
# whether the bound is inclusive), so an order modified in the same second as the last one
# of a page is never skipped; orders read twice that way are yielded once.
MODIFIED_OVERLAP = timedelta(seconds=1)
# The store's control panel, as `GET /v2/store` gives it (`control_panel_base_url`).
CONTROL_PANEL = "https://store-{store_hash}.mybigcommerce.com"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def fetch_order(client: BigCommerceClient, store_hash: str, order_id: str) -> ev.OrderFacts | None:
    """The order as it is now: `GET /v2/orders/{id}` and `GET /v2/orders/{id}/products`."""
    try:
        order = client.request("GET", f"/v2/orders/{order_id}")
    except NotFound:
        return None
    rows = order_products(client, str(order.get("id") or order_id))
    return order_facts(order, rows, store_hash)


def orders_changed_since(
    client: BigCommerceClient, store_hash: str, since: datetime
) -> Iterator[ev.OrderFacts]:
    """Orders modified at or after `since`, oldest change first, each with its products.

    `GET /v2/orders?min_date_modified=…&sort=date_modified:asc&limit=250` (one call per 250
    orders) and one products call per order. Paged by moving `min_date_modified` up to the
    last order read rather than by page number alone: an order modified while this runs
    moves to the end of the list, which with plain pages would shift an unread order onto
    a page already read. Page numbers only step through a full page of orders modified in
    the same second.
    """
    cursor = since.astimezone(UTC).replace(microsecond=0) - MODIFIED_OVERLAP
    page = 1
    yielded: dict[str, datetime | None] = {}
    for _ in range(MAX_PAGES):
        body = client.request(
            "GET",
            "/v2/orders",
            params={
                "min_date_modified": email.utils.format_datetime(cursor),
                "sort": "date_modified:asc",
                "limit": ORDERS_LIMIT,
                "page": page,
            },
        )
        rows = [row for row in body.get("data") or [] if isinstance(row, dict)]
        for row in rows:
            order_id = str(row["id"])
            modified = _rfc2822(row.get("date_modified"))
            if order_id in yielded and yielded[order_id] == modified:
                continue  # read again at a page boundary, unchanged
            yielded[order_id] = modified
            yield order_facts(row, order_products(client, order_id), store_hash)
        if len(rows) < ORDERS_LIMIT:
            return
        last = _rfc2822(rows[-1].get("date_modified"))
        if last is not None and last - MODIFIED_OVERLAP > cursor:
            cursor, page = last - MODIFIED_OVERLAP, 1
        else:
            page += 1


def order_products(client: BigCommerceClient, order_id: str) -> list[dict]:
    rows: list[dict] = []
    for page in range(1, MAX_PAGES + 1):
        body = client.request(
            "GET",
            f"/v2/orders/{order_id}/products",
            params={"limit": ORDER_PRODUCTS_LIMIT, "page": page},
        )
        batch = body.get("data") or []
        rows.extend(batch)
        if len(batch) < ORDER_PRODUCTS_LIMIT:
            break
    return rows


def order_facts(order: dict, rows: list[dict], store_hash: str) -> ev.OrderFacts:
    """The V2 order and its products as the ledger's snapshot.

    Each line: `quantity` as ordered, `quantity_shipped` fulfilled, `quantity_refunded`
    refunded, and what is still on the order. BigCommerce does not say whether a refunded
    unit had shipped; refunds are taken from the unshipped units first, so refunding an
    unshipped backorder frees it, and a refund after shipping (a return) never un-ships a
    unit. A partial refund by amount (status Partially Refunded, no line refunded) takes
    nothing off. Under a status where nothing more ships (Incomplete, Refunded, Cancelled,
    Declined) or once the order is archived, only the shipped units stay on it; a refund
    by amount that moves the order to Refunded therefore frees its backorders too.
    Cancelled also sets `cancelled_at` (the order's `date_modified`).
    """
    order_id = str(order["id"])
    status = _int(order.get("status_id"))
    closed = status in NOTHING_MORE_SHIPS or order.get("is_deleted") is True
    updated_at = _rfc2822(order.get("date_modified"))
    lines = []
    for row in rows:
        if not row.get("product_id"):
            continue  # a custom product or gift certificate: nothing to mirror
        quantity = max(0, _int(row.get("quantity")) or 0)
        shipped = min(quantity, max(0, _int(row.get("quantity_shipped")) or 0))
        refunded = min(quantity, max(0, _int(row.get("quantity_refunded")) or 0))
        current = shipped if closed else max(quantity - refunded, shipped)
        lines.append(
            ev.OrderLine(
                line_id=str(row["id"]),
                variant=_line_ref(row),
                quantity=quantity,
                current_quantity=current,
                fulfilled_quantity=shipped,
                refunded_quantity=refunded,
            )
        )
    billing = order.get("billing_address") or {}
    name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
    placed_at = _rfc2822(order.get("date_created")) or updated_at or _utcnow()
    return ev.OrderFacts(
        order_id=order_id,
        placed_at=placed_at,
        name=f"#{order_id}",
        customer=ev.Customer(
            email=billing.get("email") or None,
            name=name or None,
            locale=order.get("customer_locale") or None,
        ),
        lines=tuple(lines),
        cancelled_at=(updated_at or _utcnow()) if status == STATUS_CANCELLED else None,
        admin_url=f"{CONTROL_PANEL.format(store_hash=store_hash)}/manage/orders/{order_id}",
        updated_at=updated_at,
    )


def cancel_line(client: BigCommerceClient, order_id: str, line_id: str) -> str:
    """Take one product off the order for a customer who asked: the V2 order update
    (`PUT /v2/orders/{id}`) with that order product's quantity set to 0. BigCommerce
    refunds nothing by itself: the merchant refunds the line."""
    body = {"products": [{"id": int(line_id), "quantity": 0}]}
    client.request("PUT", f"/v2/orders/{order_id}", json=body)
    return "product removed from the order on BigCommerce; refund it to the customer"


def cancel_order(client: BigCommerceClient, order_id: str) -> str:
    """Cancel the whole order: `PUT /v2/orders/{id}` with `status_id` 5 (Cancelled)."""
    client.request("PUT", f"/v2/orders/{order_id}", json={"status_id": STATUS_CANCELLED})
    return "order set to Cancelled on BigCommerce; refund the customer's payment"


def _line_ref(row: dict) -> ev.VariantRef:
    """The ordered variant, and the product's stock item in case the product is tracked at
    product level (then the mirror holds it under that key, not under the variant ordered)."""
    product_id = str(row["product_id"])
    variant_id = row.get("variant_id")
    return ev.VariantRef(
        variant_id=str(variant_id) if variant_id else None,
        inventory_item_id=product_item_id(product_id),
        product_id=product_id,
    )


def _int(value) -> int | None:
    """V2 documents some counts as `number` (`quantity_shipped`, `quantity_refunded`)."""
    try:
        return int(float(value)) if value is not None and value != "" else None
    except (TypeError, ValueError, OverflowError):
        return None


def _rfc2822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # "-0000" parses naive; BigCommerce's dates are UTC either way.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
