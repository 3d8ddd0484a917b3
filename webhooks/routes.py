"""The one receiving endpoint per platform: verify, persist, commit, enqueue, then 200.

Nothing is processed here. If queueing fails after the commit, the answer is 503 so the platform
retries; the retry finds the stored event and queues it again, so an acknowledged webhook is
never lost.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from plugin.extensions import db
from plugin.models import InboxStatus
from plugin.queue import enqueue
from plugin.services.shops import find_shop
from webhooks import inbox
from webhooks.registry import source_for
from webhooks.source import WebhookRefused

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<platform>")
def receive(platform: str):
    settings = current_app.extensions["settings"]
    try:
        source = source_for(platform)
    except LookupError:
        return jsonify(error=f"unknown platform {platform!r}"), 404
    if platform == "sandbox" and not settings.sandbox_enabled:
        return jsonify(error="the sandbox store is switched off here"), 404
    body = request.get_data(cache=False)
    session = db.session
    shops: dict[str, object] = {}

    def shop_named(domain: str):
        if domain not in shops:
            shops[domain] = find_shop(session, platform, domain)
        return shops[domain]

    try:
        delivery = source.verify(body, request.headers, settings, shop_named)
    except WebhookRefused as refused:
        log.warning("refused %s webhook: %s", platform, refused)
        return jsonify(error=str(refused)), refused.status

    shop = shop_named(delivery.shop_domain)
    event = inbox.record(
        session, platform, delivery, body, dict(request.headers), shop.id if shop else None
    )
    session.commit()

    if event.status in (InboxStatus.PENDING, InboxStatus.FAILED):
        from plugin.jobs import process_webhook

        try:
            # A new event has no job yet; only a redelivery needs the "already queued?" check.
            enqueue(
                "webhooks",
                process_webhook,
                event.id,
                job_id=f"webhook-{event.id}",
                coalesce=not event.is_new,
            )
        except Exception:
            log.exception("stored webhook %s but could not queue it", event.id)
            return jsonify(error="stored; queueing failed, please retry"), 503
    return jsonify(status="accepted", duplicate=not event.is_new, id=event.id), 200
