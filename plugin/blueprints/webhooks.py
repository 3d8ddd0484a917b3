"""The one receiving endpoint per platform: verify, persist, commit, enqueue, then 200
(`plugin.services.ingest`).

Nothing is processed here. If queueing fails after the commit, the answer is 503 so the platform
retries; the retry finds the stored event and queues it again, so an acknowledged webhook is
never lost.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from domain.platforms import Platform
from plugin.extensions import db
from plugin.services import ingest
from webhooks.source import WebhookRefused

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<platform>")
def receive(platform: str):
    if platform == Platform.SANDBOX and not current_app.extensions["settings"].sandbox_enabled:
        return jsonify(error="the sandbox store is switched off here"), 404
    try:
        event = ingest.accept(db.engine, platform, request.get_data(cache=False), request.headers)
    except LookupError:
        return jsonify(error=f"unknown platform {platform!r}"), 404
    except WebhookRefused as refused:
        log.warning("refused %s webhook: %s", platform, refused)
        return jsonify(error=str(refused)), refused.status
    except ingest.NotQueued as failure:
        log.error("%s", failure)
        return jsonify(error="stored; queueing failed, please retry"), 503
    return jsonify(status="accepted", duplicate=not event.is_new, id=event.id), 200
