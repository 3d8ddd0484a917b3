"""Reconciliation: page through a shop's whole catalogue and heal drift from missed webhooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from plugin.models import Shop, utcnow
from plugin.platforms import connector_for
from plugin.services import catalog
from plugin.services.badging import refresh_badge


@dataclass
class ReconcileReport:
    products: int = 0
    variants: int = 0
    badges_fixed: int = 0


def reconcile_shop(
    session: Session, shop: Shop, progress: Callable[[int, int | None], None] | None = None
) -> ReconcileReport:
    report = ReconcileReport()
    now = utcnow()
    connector = connector_for(shop, session)
    connector.prepare_store()
    for page in connector.iter_catalog():
        for facts in page.products:
            report.products += 1
            for variant in catalog.upsert_product(session, shop, facts, now):
                report.variants += 1
                session.flush()
                if refresh_badge(session, shop, variant, cause="reconcile", now=now):
                    report.badges_fixed += 1
        if progress:
            progress(report.products, page.total)
    return report
