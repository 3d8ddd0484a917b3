"""Support's "heal now": one variant reconciled with its platform on demand. Every platform read
comes first; only then is anything settled and decided, so a failure writes nothing.

No Flask here: the view renders and commits (one commit boundary per request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    BackorderStep,
    BadgeTransition,
    Order,
    OrderLine,
    Shop,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.platforms import connector_for
from plugin.services import catalog, customer_mails, ledger
from plugin.services.admin_text import _
from plugin.services.badging import refresh_badge
from plugin.services.variant_timeline import SUPPORT

# A heal re-reads at most this many orders still owed units on the variant (oldest first);
# the hourly reconciliation reads the rest.
HEAL_ORDER_CAP = 50


class HealFailed(Exception):
    """The platform could not be read (or no longer has the variant): nothing was written."""

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class HealResult:
    badge_changed: bool
    lines_changed: int
    mail_ids: list[int]
    badges_to_push: int


def heal_variant(
    session: Session, shop: Shop, variant: Variant, staff_user: str, now: datetime | None = None
) -> HealResult:
    """Re-read this variant's product (stock per location, selling policy) and the orders still
    owed units on it from the platform, then settle its lines and decide its badge again, as
    reconciliation does for the whole shop. Every platform read comes first: a failure raises
    HealFailed before anything is written (and the caller rolls back the unit of work).

    The heal is written in the badge's audit trail with who asked, even when nothing drifted.
    """
    now = now or utcnow()
    product_id = variant.product.platform_id
    try:
        connector = connector_for(shop, session)
        facts = connector.fetch_product(product_id, now)
        owed = session.scalars(
            select(Order.platform_id)
            .join(OrderLine, OrderLine.order_id == Order.id)
            .join(BackorderLine, BackorderLine.order_line_id == OrderLine.id)
            .where(
                BackorderLine.shop_id == shop.id,
                BackorderLine.variant_id == variant.id,
                BackorderLine.status.in_(ledger.OWING),
            )
            .order_by(BackorderLine.ordered_at)
            .limit(HEAL_ORDER_CAP)
        ).all()
        orders = [connector.fetch_order(order_id) for order_id in dict.fromkeys(owed)]
        locations = connector.fetch_locations()
    except Exception as exc:  # a platform failure of any kind: said plainly, nothing written
        raise HealFailed(
            _("The store could not be read, so nothing was changed: %(error)s", error=exc)
        ) from exc
    if facts is None or variant.platform_id not in {v.platform_id for v in facts.variants}:
        raise HealFailed(
            _("The store no longer has this variant; the next reconciliation removes it."), 409
        )

    touched: dict[int, Variant] = {variant.id: variant}
    for changed in catalog.upsert_product(session, shop, facts, now):
        touched[changed.id] = changed
    for order_facts in orders:
        if order_facts is None:
            continue
        changed = ledger.record_order(
            session, shop, order_facts, lambda ref: catalog.find_variant(session, shop.id, ref)
        )
        for other in changed or []:
            touched[other.id] = other
    catalog.name_locations(session, shop.id, locations)
    session.flush()

    cause = ledger.Cause(SUPPORT, note="heal now from the support desk")
    steps: list[BackorderStep] = []
    lines_changed = 0
    for each in touched.values():
        settled = ledger.settle_variant(session, each, cause, now)
        lines_changed += settled.lines_changed
        steps.extend(settled.steps)
    for step in steps:
        step.staff_user = staff_user
    to_push = 0
    badge_changed = False
    for each in touched.values():
        changed = refresh_badge(session, shop, each, cause=SUPPORT, now=now, staff_user=staff_user)
        if changed is not None:
            to_push += 1
            badge_changed = badge_changed or each.id == variant.id
    if not badge_changed:
        _record_unchanged(session, shop, variant, staff_user, now)
    mail_ids = (
        customer_mails.after_settling(session, shop, steps, customer_mails.app_links())
        if steps
        else []
    )
    session.flush()
    return HealResult(badge_changed, lines_changed, mail_ids, to_push)


def _record_unchanged(
    session: Session, shop: Shop, variant: Variant, staff_user: str, now: datetime
) -> None:
    """A heal that found nothing to fix is still written down: who checked, and when."""
    badge = session.get(VariantBadge, variant.id)
    if badge is None:
        return
    session.add(
        BadgeTransition(
            shop_id=shop.id,
            variant_id=variant.id,
            from_state=badge.state,
            to_state=badge.state,
            from_eta=badge.eta,
            to_eta=badge.eta,
            label=badge.label,
            reason=badge.reason,
            cause=SUPPORT,
            staff_user=staff_user,
            created_at=now,
        )
    )
