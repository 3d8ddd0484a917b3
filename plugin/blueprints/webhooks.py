"""The one receiving endpoint per platform: verify, persist, commit, enqueue, then 200
(`plugin.services.ingest`).

Nothing is processed here. If queueing fails after the commit, the answer is 503 so the platform
retries; the retry finds the stored event and queues it again, so an acknowledged webhook is
never lost.

On PostgreSQL a delivery is answered in front of Flask (`webhooks_front`), with the same
`answer()` as the view below.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, current_app, request
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from domain.platforms import Platform
from plugin.blueprints.health import RETRY_LATER, UNAVAILABLE, note_database_unavailable
from plugin.extensions import db
from plugin.services import ingest
from webhooks.source import WebhookRefused

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


@dataclass(frozen=True)
class Answer:
    status: int
    payload: dict
    headers: dict[str, str] = field(default_factory=dict)


def answer(
    engine: Engine,
    sandbox_enabled: bool,
    platform: str,
    body: bytes,
    headers: Mapping[str, str],
) -> Answer:
    """What a delivery is answered: every outcome a platform can be told, the database being
    unavailable included (as the app's error handler answers it: a 503 to retry)."""
    if platform == Platform.SANDBOX and not sandbox_enabled:
        return Answer(404, {"error": "the sandbox store is switched off here"})
    try:
        event = ingest.accept(engine, platform, body, headers)
    except LookupError:
        return Answer(404, {"error": f"unknown platform {platform!r}"})
    except WebhookRefused as refused:
        log.warning("refused %s webhook: %s", platform, refused)
        return Answer(refused.status, {"error": str(refused)})
    except ingest.NotQueued as failure:
        log.error("%s", failure)
        return Answer(503, {"error": "stored; queueing failed, please retry"})
    except OperationalError as exc:
        # As the app's error handler answers it. Nothing was committed, so the platform's
        # retry is stored as new.
        note_database_unavailable(exc)
        return Answer(503, {"error": UNAVAILABLE}, RETRY_LATER)
    return Answer(200, {"status": "accepted", "duplicate": not event.is_new, "id": event.id})


@bp.post("/webhooks/<platform>")
def receive(platform: str):
    settings = current_app.extensions["settings"]
    body = request.get_data(cache=False)
    given = answer(db.engine, settings.sandbox_enabled, platform, body, request.headers)
    response = current_app.json.response(given.payload)
    response.status_code = given.status
    response.headers.update(given.headers)
    return response
