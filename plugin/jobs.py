"""RQ jobs, and the helpers that queue them. Each job takes ids, opens one unit of work, is
idempotent, and raises on failure so RQ retries it with backoff.

The Procfile's workers are `plugin.worker.AppWorker`, which builds the app once per process;
a job enters an app context itself when it runs outside one (any other `rq worker` works too).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from flask import Flask, current_app, has_app_context
from rq import get_current_job

from plugin.extensions import db
from plugin.models import Shop
from plugin.queue import enqueue, enqueue_many

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., object])
_worker_app: Flask | None = None
# A short wait lets a burst of events for one shop coalesce into one push of the latest state.
PUSH_COALESCE_DELAY = timedelta(seconds=1)


class JobIdFilter(logging.Filter):
    """Stamps every log record with the current RQ job id, so one job's lines can be grepped."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        record.job_id = job.id if job else "-"
        return True


def worker_app() -> Flask:
    global _worker_app
    if _worker_app is None:
        from plugin import create_app

        _worker_app = create_app()
        handler = logging.StreamHandler()
        handler.addFilter(JobIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [job %(job_id)s] %(name)s: %(message)s")
        )
        logging.getLogger("plugin").addHandler(handler)
        logging.getLogger("plugin").setLevel(logging.INFO)
    return _worker_app


def job(func: F) -> F:
    @functools.wraps(func)
    def run(*args):
        if has_app_context():
            return func(*args)
        with worker_app().app_context():
            return func(*args)

    return run  # type: ignore[return-value]


def queue_webhook(event_id: int, *, coalesce: bool = True) -> None:
    """Queue a stored webhook for processing; with `coalesce`, not while it already waits."""
    enqueue("webhooks", process_webhook, event_id, job_id=f"webhook-{event_id}", coalesce=coalesce)


def start_sync(shop_id: int) -> None:
    """After an install or re-authorisation, on any platform: read the whole catalogue (which
    decides every badge and pushes what changed) and send any badge that waited for the token."""
    enqueue("sync", reconcile_shop, shop_id, job_id=f"reconcile-shop-{shop_id}", coalesce=True)
    schedule_push(shop_id)


@job
def process_webhook(event_id: int) -> str:
    from plugin.services.pipeline import process_inbox_event, record_failure

    try:
        with db.unit_of_work() as session:
            outcome = process_inbox_event(session, event_id)
    except Exception as exc:
        with db.unit_of_work() as session:
            record_failure(session, event_id, f"{type(exc).__name__}: {exc}")
        raise
    if outcome.badges_changed and outcome.shop_id:
        schedule_push(outcome.shop_id)
        queue_due_restocks(outcome.shop_id)
    queue_mails(outcome.mail_ids)
    return f"event {event_id}: {outcome.badges_changed} badge(s) changed"


def schedule_push(shop_id: int) -> None:
    enqueue(
        "push",
        push_badges,
        shop_id,
        job_id=f"push-shop-{shop_id}",
        delay=PUSH_COALESCE_DELAY,
        coalesce=True,
    )


@job
def push_badges(shop_id: int) -> str:
    from plugin.services.push import PushAttempt, push_pending, record_failed_push

    attempted: list[PushAttempt] = []
    try:
        with db.unit_of_work() as session:
            shop = session.get(Shop, shop_id)
            if shop is None or not shop.is_active:
                return f"shop {shop_id} not installed; nothing pushed"
            pushed, more = push_pending(session, shop, attempted)
    except Exception as exc:
        if attempted:  # the try is in each variant's timeline; the badges stay pending
            with db.unit_of_work() as session:
                record_failed_push(session, shop_id, attempted, f"{type(exc).__name__}: {exc}")
        raise
    if more:
        schedule_push(shop_id)
    return f"shop {shop_id}: {pushed} badge(s) pushed"


@job
def reconcile_shop(shop_id: int) -> str:
    from plugin.services.reconcile import reconcile_shop as reconcile

    with db.unit_of_work() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or not shop.is_active:
            return f"shop {shop_id} not installed"
        report = reconcile(session, shop)
    if report.badges_fixed:
        schedule_push(shop_id)
        queue_due_restocks(shop_id)
    queue_mails(report.mail_ids)
    return f"shop {shop_id}: {report.badges_fixed} badge(s) fixed of {report.variants}"


@job
def reconcile_all_shops() -> str:
    """The periodic safety net: a missed webhook heals within one schedule period."""
    from sqlalchemy import select

    from plugin.models import InstallStatus

    ids = list(db.session.scalars(select(Shop.id).where(Shop.status == InstallStatus.INSTALLED)))
    for shop_id in ids:
        enqueue("sync", reconcile_shop, shop_id, job_id=f"reconcile-shop-{shop_id}", coalesce=True)
    return f"queued reconciliation of {len(ids)} shop(s)"


STALE_PENDING = timedelta(minutes=5)
STALE_FAILED = timedelta(minutes=30)
MAX_SWEEP_ATTEMPTS = 12


@job
def requeue_stuck_webhooks() -> str:
    """Queue again stored events whose job vanished (Redis restarted) or ran out of retries."""
    from sqlalchemy import and_, or_, select

    from plugin.models import InboxStatus, WebhookEvent, utcnow

    now = utcnow()
    ids = list(
        db.session.scalars(
            select(WebhookEvent.id).where(
                or_(
                    and_(
                        WebhookEvent.status == InboxStatus.PENDING,
                        WebhookEvent.received_at < now - STALE_PENDING,
                    ),
                    and_(
                        WebhookEvent.status == InboxStatus.FAILED,
                        WebhookEvent.received_at < now - STALE_FAILED,
                        WebhookEvent.attempts < MAX_SWEEP_ATTEMPTS,
                    ),
                )
            )
        )
    )
    for event_id in ids:
        queue_webhook(event_id)
    return f"re-queued {len(ids)} webhook(s)"


@job
def refresh_expiring_tokens() -> str:
    """Background jobs must never meet an expired token: refresh them ahead of time."""
    from plugin.platforms import refresh_expiring_tokens as refresh

    return f"refreshed {refresh()} token(s)"


@job
def purge_order_payloads() -> str:
    """Stored order webhook bodies name customers: empty them once past the retention period."""
    from plugin.services.compliance import purge_expired_bodies

    days = current_app.extensions["settings"].order_payload_retention_days
    with db.unit_of_work() as session:
        purged = purge_expired_bodies(session, timedelta(days=days))
    return f"emptied {purged} stored order webhook(s) older than {days} days"


def queue_mails(mail_ids, *, new: bool = False) -> None:
    """Hand committed outbox rows to the `emails` queue (a mail in its quiet period waits).

    `new`: the caller just created these rows, so no job of theirs can exist yet; the due ones
    go to the queue in one round trip (a batch of alerts), not one check and push each."""
    from sqlalchemy import select

    from plugin.models import OutboxMail, utcnow

    ids = [mail_id for mail_id in mail_ids if mail_id is not None]
    if new and ids:
        now = utcnow()
        rows = db.session.execute(
            select(OutboxMail.id, OutboxMail.send_after).where(OutboxMail.id.in_(ids))
        ).all()
        due = [row.id for row in rows if row.send_after <= now]
        enqueue_many("emails", send_mail, due, "mail-")
        ids = [row.id for row in rows if row.send_after > now]
    for mail_id in ids:
        mail = db.session.get(OutboxMail, mail_id)
        delay = mail.send_after - utcnow() if mail is not None else None
        if delay and delay.total_seconds() > 0:
            # RQ keeps a scheduled time in whole seconds (truncated): a second more, so the
            # job never runs before the quiet period ends and finds nothing to do.
            delay += timedelta(seconds=1)
        enqueue(
            "emails",
            send_mail,
            mail_id,
            job_id=f"mail-{mail_id}",
            delay=delay if delay and delay.total_seconds() > 0 else None,
            coalesce=True,
        )


@job
def send_mail(mail_id: int) -> str:
    """Send one outbox mail; raises while the mail server cannot take it, so RQ retries."""
    from urllib.parse import urlsplit

    from plugin.services.mailer import Transport, send

    settings = current_app.extensions["settings"]
    transport = Transport(
        smtp_url=settings.smtp_url,
        mail_from=settings.mail_from,
        domain=urlsplit(settings.app_url).hostname or "localhost",
    )
    try:
        return send(db.session, mail_id, transport)
    except Exception:
        db.session.rollback()
        raise


@job
def send_due_mails() -> str:
    """The clock's safety net: queue every pending mail that is due (a job lost with Redis, a
    quiet period just over). Coalesced, so a mail already queued is not queued twice."""
    from plugin.services.outbox import due_mail_ids

    ids = due_mail_ids(db.session)
    queue_mails(ids)
    return f"queued {len(ids)} due mail(s)"


@job
def send_delay_notices() -> str:
    """The Mail Order Rule, daily: a delay notice for each open line past its promised date,
    and a flag on each line whose customer did not consent to a long delay in time."""
    from plugin.services.delay_notices import due_shops, run_shop

    settings = current_app.extensions["settings"]
    notices = flagged = 0
    for shop_id in due_shops(db.session):
        with db.unit_of_work() as session:
            shop = session.get(Shop, shop_id)
            run = run_shop(session, shop, app_url=settings.app_url, secret_key=settings.secret_key)
        queue_mails(run.mail_ids)
        notices, flagged = notices + run.notices, flagged + run.flagged
    return f"{notices} delay notice(s) queued, {flagged} line(s) flagged"


def queue_platform_cancel(line_id: int) -> None:
    """After a customer's cancel request committed, where the shop allows it."""
    enqueue("sync", cancel_on_platform, line_id, job_id=f"cancel-line-{line_id}", coalesce=True)


@job
def cancel_on_platform(line_id: int) -> str:
    from plugin.models import BackorderLine
    from plugin.platforms import connector_for
    from plugin.services.customer_links import cancel_on_platform as cancel

    with db.unit_of_work() as session:
        line = session.get(BackorderLine, line_id)
        if line is None:
            return f"line {line_id} is gone"
        shop = session.get(Shop, line.shop_id)
        if shop is None or not shop.is_active:
            return f"shop of line {line_id} not installed"
        result = cancel(session, line_id, connector_for(shop, session))
    schedule_push(shop.id)
    return result


def queue_due_restocks(shop_id: int | None = None) -> int:
    """Queue the next batch of every open restock that is due (of one shop, or all)."""
    from plugin.services.restock_alerts import due_restocks

    due = due_restocks(db.session, shop_id=shop_id)
    for restock_id, step in due:
        queue_restock_batch(restock_id, step)
    return len(due)


def queue_restock_batch(restock_id: int, step: int, delay: timedelta | None = None) -> None:
    # One job id per step of the restock: the clock and the job's own follow-up coalesce.
    enqueue(
        "emails",
        alert_restock,
        restock_id,
        job_id=f"restock-{restock_id}-step-{step}",
        delay=delay,
        coalesce=True,
    )


@job
def alert_restock(restock_id: int) -> str:
    """Alert the next chunk of a restock's due batch, then queue what follows: the rest of the
    batch at once, or the next batch after the interval."""
    from plugin.models import utcnow
    from plugin.services.restock_alerts import run_batch

    app_url = current_app.extensions["settings"].app_url
    with db.unit_of_work() as session:
        result = run_batch(session, restock_id, app_url=app_url)
    queue_mails(result.mail_ids, new=True)
    if result.next_at is None:
        return f"restock {restock_id}: {result.note}"
    wait = result.next_at - utcnow()
    if wait <= timedelta(0):
        queue_restock_batch(restock_id, result.step)
    elif current_app.extensions.get("redis") is not None:
        # A second more: RQ keeps scheduled times in whole seconds (see queue_mails). Inline,
        # the clock (or the sandbox's button) runs it when due.
        queue_restock_batch(restock_id, result.step, delay=wait + timedelta(seconds=1))
    return f"restock {restock_id}: {result.note}"


@job
def send_due_restock_alerts() -> str:
    """The clock's safety net: every restock whose next batch is due, its job lost or not."""
    return f"queued {queue_due_restocks()} due restock batch(es)"
