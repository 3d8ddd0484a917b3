"""What one stock event costs the worker: database round trips per event in a shop's drain.

Each event stays its own unit of work, but what it reads and writes is not repeated: the inbox
row is read once (locked, by the drain's pick), the shop comes with its settings, and the
attempt row and the inbox row's count and outcome are written once, at the end.
"""

from __future__ import annotations

from sqlalchemy import event, func, select

from plugin import jobs
from plugin.extensions import db
from plugin.models import InboxStatus, WebhookAttempt, WebhookEvent
from tests.test_fairness import sandbox_shop_with_a_variant, stock_events

# Before these changes: 16 (inbox row read twice, shop and settings apart, the attempt row
# inserted then updated, the inbox row updated twice).
MAX_STATEMENTS_PER_EVENT = 12


def test_a_drained_stock_event_costs_at_most_twelve_statements(queued_app):
    shop, variant = sandbox_shop_with_a_variant("cost.sandbox.local")
    stock_events(shop, variant, 1)
    jobs._drain_batch(shop.id)  # mirrors the product: not what is measured
    db.session.query(WebhookEvent).delete()
    db.session.commit()
    stock_events(shop, variant, 20)

    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        more, wait, _note = jobs._drain_batch(shop.id)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert (more, wait) == (False, None)

    statuses = db.session.scalars(select(WebhookEvent.status)).all()
    assert statuses == [InboxStatus.PROCESSED] * 20
    # One picking statement finds the inbox empty at the end.
    per_event = (len(statements) - 1) / 20
    assert per_event <= MAX_STATEMENTS_PER_EVENT, per_event
    # Still one attempt per event, counted on the inbox row, with its outcome.
    attempts = db.session.execute(
        select(WebhookAttempt.number, WebhookAttempt.outcome, func.count()).group_by(
            WebhookAttempt.number, WebhookAttempt.outcome
        )
    ).all()
    assert attempts == [(1, "processed", 20)]
    assert set(db.session.scalars(select(WebhookEvent.attempts))) == {1}
