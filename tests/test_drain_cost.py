"""What one stock event costs the worker: database statements per event in a shop's drain.

The drain takes events 25 to a unit of work. The inbox rows are read once (locked, by the
drain's pick), the shop comes with its settings, everything the stock changes ask for (their
variants and levels, their orders' lines, the units they owe, their badges) is read for the
whole batch up front, and what they write goes out in one flush at the end (one executemany
per kind of row), with one commit and one badge generation bump.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from domain.badges import BadgeKind
from plugin import jobs
from plugin.extensions import db
from plugin.models import InboxStatus, VariantBadge, WebhookAttempt, WebhookEvent
from plugin.services import sandbox_store
from tests.test_fairness import stock_events, store_stock_events

# One event per unit of work: 16 at first (inbox row read twice, shop and settings apart, the
# attempt row inserted then updated, the inbox row updated twice), then 12. Together: under 2.
MAX_STATEMENTS_PER_EVENT = 2


@pytest.mark.parametrize("spread", ["one variant", "a variant each"])
def test_a_drained_stock_event_costs_under_two_statements(queued_app, spread):
    shop = sandbox_store.ensure_shop(db.session, "cost.sandbox.local")
    product, hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [(f"V{n}", f"V{n}", 5, "deny") for n in range(20)]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    jobs._drain_batch(shop.id)  # mirrors the product and decides its badges: not measured
    db.session.query(WebhookEvent).delete()
    db.session.commit()
    if spread == "one variant":
        stock_events(shop, product.variants[0], 20)
    else:
        # Each variant's stock to 0: every event changes a badge (in stock -> out of stock).
        store_stock_events(shop, [(v.id, 0) for v in product.variants], name="sold-out-")
    # As in a worker: nothing of the shop is in the session before the drain starts.
    shop_id = shop.id
    del shop, product
    db.session.close()

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        more, wait, _note = jobs._drain_batch(shop_id)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (more, wait) == (False, None)

    statuses = db.session.scalars(select(WebhookEvent.status)).all()
    assert statuses == [InboxStatus.PROCESSED] * 20
    # One picking statement finds the inbox empty at the end.
    per_event = (len(statements) - 1) / 20
    assert per_event <= MAX_STATEMENTS_PER_EVENT, "\n".join(s[:70] for s in statements)
    # Still one attempt per event, counted on the inbox row, with its outcome.
    attempts = db.session.execute(
        select(WebhookAttempt.number, WebhookAttempt.outcome, func.count()).group_by(
            WebhookAttempt.number, WebhookAttempt.outcome
        )
    ).all()
    assert attempts == [(1, "processed", 20)]
    assert set(db.session.scalars(select(WebhookEvent.attempts))) == {1}
    if spread == "a variant each":  # and every badge shows it
        states = db.session.scalars(
            select(VariantBadge.state).where(VariantBadge.shop_id == shop_id)
        ).all()
        assert states == [BadgeKind.OUT_OF_STOCK] * 20
