"""Sending the storefront's labels per language and colours to the platform.

Where the theme block cannot call the app, what it needs beyond each variant's state
and ETA (the labels in every published language, the colours chosen in the settings and the
notify-me form's configuration per language) is kept in one app-owned shop metafield.
Pushed after a settings save that changed it and at every reconciliation (so a store that
missed one catches up); platforms whose storefront script asks the badge API need nothing
pushed.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from connectors.base import ConnectorError
from plugin.extensions import db
from plugin.jobs import job
from plugin.models import Shop
from plugin.platforms import connector_for
from plugin.queue import enqueue
from plugin.services.badge_labels import storefront_config

log = logging.getLogger(__name__)


def push_storefront(session: Session, shop: Shop, connector=None) -> None:
    """Write the store's storefront configuration (the connector skips an unchanged one)."""
    (connector or connector_for(shop, session)).push_storefront_config(storefront_config(shop))


def schedule_storefront_push(shop_id: int) -> None:
    enqueue(
        "push",
        push_storefront_job,
        shop_id,
        job_id=f"push-storefront-{shop_id}",
        coalesce=True,
    )


@job
def push_storefront_job(shop_id: int) -> str:
    """A platform that refuses or cannot be reached is not retried here: every reconciliation
    compares and pushes again, so the storefront catches up within the hour."""
    with db.unit_of_work() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or not shop.is_active:
            return f"shop {shop_id} not installed; nothing pushed"
        try:
            push_storefront(session, shop)
        except ConnectorError as exc:
            log.warning("storefront labels of shop %s not pushed: %s", shop_id, exc)
            return f"shop {shop_id}: storefront labels not pushed ({exc})"
    return f"shop {shop_id}: storefront labels and colours pushed"
