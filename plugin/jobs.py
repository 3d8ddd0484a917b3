"""RQ jobs, and the helpers that queue them. Each job takes ids, opens one unit of work, is
idempotent, and raises on failure so RQ retries it with backoff.

The Procfile's workers are `plugin.worker.AppWorker`, which builds the app once per process;
a job enters an app context itself when it runs outside one (any other `rq worker` works too).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from flask import Flask, current_app, has_app_context
from rq import get_current_job

from connectors.base import PlatformUnavailable
from plugin.extensions import db, redis_connection
from plugin.models import Shop
from plugin.queue import (
    ask_flag,
    claim_flag,
    clear_flag,
    enqueue,
    enqueue_many,
    mark_platform_down,
    platform_down_for,
    take_flag,
)

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
    """Queue one stored webhook as a job of its own (with RQ's retries and backoff); with
    `coalesce`, not while it already waits. For an event of no known shop and a failed event's
    retries: a shop's pending events go through its drain (`request_drain`). Inline without
    Redis."""
    enqueue("webhooks", process_webhook, event_id, job_id=f"webhook-{event_id}", coalesce=coalesce)


def queue_received(events, *, rely_on_recent: bool = False) -> dict[int, Exception]:
    """After the inbox committed deliveries (`plugin.services.inbox.Recorded`, from
    `plugin.services.ingest`): one Redis round trip per shop in the usual case. A shop's pending
    events ask for that shop's drain (one request for all of them); anything else (no shop, a
    failed event delivered again) gets a job of its own. Without Redis each is processed
    inline, as before. Returns the events that could not be queued (by id, with why), which
    the endpoint answers with a 503.

    `rely_on_recent` (the webhook endpoint's): within ASKED_RECENTLY_S of finding a shop's
    drain already queued, this process does not ask for it again; that drain looks for events
    committed until then before it stops (`drain_shop_inbox`). Called after the commit."""
    from plugin.models import InboxStatus

    # Shop id -> when this process last found its drain queued (`time.monotonic()`); one per
    # app, so per Redis client: what was found in one Redis says nothing of another.
    asked = current_app.extensions.setdefault("drains_found_queued", {}) if rely_on_recent else None

    failed: dict[int, Exception] = {}
    by_shop: dict[int, list[int]] = {}
    for event in events:
        if not event.needs_processing:
            continue
        if (
            redis_connection.client is not None
            and event.shop_id is not None
            and event.status == InboxStatus.PENDING
        ):
            by_shop.setdefault(event.shop_id, []).append(event.id)
            continue
        try:
            # A new event has no job yet; only a redelivery needs the "already queued?" check.
            queue_webhook(event.id, coalesce=not event.is_new)
        except Exception as exc:
            failed[event.id] = exc
    committed = time.monotonic()
    for shop_id, ids in by_shop.items():
        if asked is not None and committed - asked.get(shop_id, -math.inf) < ASKED_RECENTLY_S:
            continue
        sent = time.monotonic()
        try:
            queued = request_drain(shop_id, note_seen=asked is not None)
        except Exception as exc:
            failed.update(dict.fromkeys(ids, exc))
            continue
        if asked is not None and not queued:
            asked[shop_id] = sent
    return failed


def queue_shop_events(rows) -> int:
    """Queue stored events again ((id, shop_id, status) rows), as `queue_received` queues new
    ones; the first failure is raised once every event was tried. Returns how many."""
    from plugin.models import InboxStatus
    from plugin.services.inbox import Recorded

    failed = queue_received(
        [Recorded(id_, InboxStatus(status), False, shop_id) for id_, shop_id, status in rows]
    )
    if failed:
        raise next(iter(failed.values()))
    return len(rows)


# -- per-shop fairness: each shop's inbox is drained by its own short jobs ------------------------
#
# A shop's pending events are not one job each (10,000 of them would make every other shop's
# event wait behind them all) but a drain job per shop, requested with one SET NX at ingest.
# A drain takes that shop's events oldest first, DRAIN_TOGETHER per unit of work, for a small batch;
# if any are left it asks for another drain, which joins the BACK of the queue: the worker turns
# round-robin between shops. A backlog runs on up to DRAIN_LANES drains at once (SKIP LOCKED: no
# two take the same event), so more worker processes drain one big shop faster.

DRAIN_BATCH = 50
# Events per unit of work within a batch (see `_drain_batch`).
DRAIN_TOGETHER = 25
DRAIN_BUDGET_S = 5.0
DRAIN_LANES = 2
# The "a drain of this shop and lane is queued" flag outlives a lost job by this much at most;
# the sweeper asks again for stale pending events anyway.
DRAIN_FLAG_TTL_S = 300
# A web process that found a shop's drain queued does not ask again for this long; a drain
# whose flag was found so looks for pending events once more this long after it took the flag
# (`queue_received`, `drain_shop_inbox`). Under a platform's burst this spares the web process
# a Redis round trip per batch; a lone delivery still asks (and finds no flag set).
ASKED_RECENTLY_S = 0.05


def drain_flag(shop_id: int, lane: int) -> str:
    return f"webhooks:drain:{shop_id}:{lane}"


def request_drain(
    shop_id: int, lane: int = 0, delay: float | None = None, *, note_seen: bool = False
) -> bool:
    """Have the shop's pending events processed: queue a drain of `lane` unless one is queued
    already (one SET NX). `delay`: not before then (the platform asked us to wait). True if a
    drain was queued. `note_seen`: the caller will rely on a drain already queued for a while
    (`queue_received`'s memo), so mark its flag as seen. Without Redis the shop's inbox is
    drained inline, batch after batch."""
    if redis_connection.client is None:
        while _drain_batch(shop_id)[0]:
            pass
        return True
    flag = drain_flag(shop_id, lane)
    wait = timedelta(seconds=math.ceil(delay)) if delay and delay > 0 else None
    job_id = f"drain-{shop_id}-{lane}-{uuid.uuid4().hex[:16]}"
    ttl = DRAIN_FLAG_TTL_S + (math.ceil(delay) if wait else 0)
    if not (ask_flag(flag, ttl, job_id) if note_seen else claim_flag(flag, ttl, job_id)):
        return False
    try:
        enqueue("webhooks", drain_shop_inbox, shop_id, lane, job_id=job_id, delay=wait)
    except Exception:
        try:  # so the platform's retry of this delivery asks again
            clear_flag(flag, job_id)
        except Exception:
            log.warning("could not clear %s after a failed enqueue", flag)
        raise
    return True


@job
def drain_shop_inbox(shop_id: int, lane: int = 0) -> str:
    """Process a batch of one shop's pending webhooks, oldest first, then make way for others:
    if any are left, the next batch is queued behind every other shop's."""
    # From here a new event asks for a new drain. The flag names the drain it stands for: one
    # queued twice (its flag expired while it waited) leaves the other's alone.
    this = get_current_job()
    relied_on = take_flag(drain_flag(shop_id, lane), this.id if this else "")
    taken = time.monotonic()
    try:
        return _drain(shop_id, lane)
    finally:
        if relied_on:
            _look_again(shop_id, lane, taken)


def _drain(shop_id: int, lane: int) -> str:
    waiting = platform_down_for(shop_id)
    if waiting > 0:  # again once it may answer, unless another drain of the lane is queued
        request_drain(shop_id, lane, delay=waiting)
        return f"shop {shop_id}: its platform is unavailable; drain again in {waiting:.0f}s"
    more, wait, note = _drain_batch(shop_id)
    if wait is not None:
        request_drain(shop_id, lane, delay=wait)
    elif more:
        for other in range(DRAIN_LANES):  # to the back of the queue, on every lane
            request_drain(shop_id, other)
    return note


def _look_again(shop_id: int, lane: int, taken: float) -> None:
    """This drain's flag was found set by a web process, which then stored deliveries without
    asking for a drain, for up to ASKED_RECENTLY_S (`queue_received`). All of those were
    committed before `taken` + ASKED_RECENTLY_S: from then, one look for pending events, and a
    drain asked for if there are any. Only a drain of a busy shop gets here, so the wait is
    rarely more than what the batch took anyway."""
    from sqlalchemy import exists, select

    from plugin.models import InboxStatus, WebhookEvent

    rest = taken + ASKED_RECENTLY_S - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    try:
        with db.unit_of_work() as session:
            pending = session.scalar(
                select(
                    exists().where(
                        WebhookEvent.shop_id == shop_id,
                        WebhookEvent.status == InboxStatus.PENDING,
                    )
                )
            )
        if pending:
            request_drain(shop_id, lane)
    except Exception:  # the sweeper asks again for stale pending events
        log.exception("shop %s: could not look again for pending webhooks", shop_id)


def _drain_batch(shop_id: int) -> tuple[bool, float | None, str]:
    """Up to DRAIN_BATCH events (or DRAIN_BUDGET_S) of the shop: (more may be left, seconds to
    wait for the platform or None, what was done).

    Events go DRAIN_TOGETHER at a time through one unit of work: one pick, one commit and one
    badge generation bump for all of them, which is what lets a worker keep up with a busy
    store. If one of them raises, that transaction is rolled back whole and the events are
    taken again one at a time, each in its own unit of work, so only the one that fails is
    recorded as failed. If the platform was down, only the events before the one that found
    it down are taken again, and the drain waits for the platform."""
    deadline = time.monotonic() + DRAIN_BUDGET_S
    tally = _Tally(shop_id)
    try:
        while tally.count < DRAIN_BATCH and time.monotonic() < deadline:
            size = min(DRAIN_TOGETHER, DRAIN_BATCH - tally.count)
            try:
                outcomes = _process_together(shop_id, size)
            except _BatchFailed as failure:
                log.info("shop %s: batch rolled back (%s); one at a time", shop_id, failure.cause)
                down = isinstance(failure.cause, PlatformUnavailable)
                finished = _one_at_a_time(shop_id, failure.before if down else size, tally)
                if finished is not None:
                    return finished
                if down:
                    wait = _platform_unavailable(shop_id, failure.cause)
                    return False, wait, tally.note(f"platform unavailable: {failure.cause}")
                continue
            for outcome in outcomes:
                tally.add(outcome)
            if len(outcomes) < size:
                return False, None, tally.note("done")
    finally:
        tally.effects.flush(shop_id)
    return True, None, tally.note("more queued")


class _Tally:
    """What a drain batch did, and what its events ask for afterwards."""

    def __init__(self, shop_id: int) -> None:
        self.shop_id = shop_id
        self.done = self.failed = 0
        self.effects = _Effects()

    @property
    def count(self) -> int:
        return self.done + self.failed

    def add(self, outcome) -> None:
        self.effects.add(outcome)
        self.done += 1

    def note(self, end: str) -> str:
        return f"shop {self.shop_id}: {self.done} processed, {self.failed} failed; {end}"


def _one_at_a_time(shop_id: int, count: int, tally: _Tally) -> tuple | None:
    """Up to `count` events, each in its own unit of work; the drain's result if it must stop
    (the inbox is empty, or the platform is down), else None."""
    for _ in range(count):
        try:
            event_id, outcome = _process_next(shop_id)
        except _EventFailed:
            tally.failed += 1
            continue
        except PlatformUnavailable as exc:
            wait = _platform_unavailable(shop_id, exc)
            return False, wait, tally.note(f"platform unavailable: {exc}")
        if event_id is None:
            return False, None, tally.note("done")
        tally.add(outcome)
    return None


def _pick(session, shop_id: int, size: int):
    """The shop's oldest pending events that no other drain holds, locked, whole: processing
    takes each from the session instead of reading it again."""
    from sqlalchemy import select

    from plugin.models import InboxStatus, WebhookEvent

    return session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.shop_id == shop_id, WebhookEvent.status == InboxStatus.PENDING)
        .order_by(WebhookEvent.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    ).all()


class _BatchFailed(Exception):
    """An event of a batch raised `cause`; the batch was rolled back. `before`: how many of its
    events had been processed before that one."""

    def __init__(self, before: int, cause: Exception):
        super().__init__(f"after {before} event(s): {cause}")
        self.before = before
        self.cause = cause


def _process_together(shop_id: int, size: int) -> list:
    """Up to `size` pending events of the shop in one unit of work: their outcomes, fewer than
    `size` when the inbox ran out. Raises `_BatchFailed` when any raised: nothing was kept."""
    from plugin.services.pipeline import process_inbox_event, read_ahead

    outcomes: list = []
    try:
        with db.unit_of_work() as session:
            events = _pick(session, shop_id, size)
            if events:
                read_ahead(session, shop_id, events)
            for event in events:
                outcomes.append(process_inbox_event(session, event.id, locked=True))
    except Exception as exc:
        raise _BatchFailed(len(outcomes), exc) from exc
    return outcomes


class _EventFailed(Exception):
    """One event raised: recorded as failed and queued to retry on its own."""


def _process_next(shop_id: int):
    """Take the shop's oldest pending event no other drain holds and process it in one unit of
    work: (event id, outcome), or (None, None) when none is left."""
    from plugin.services.pipeline import process_inbox_event

    event_id = None
    try:
        with db.unit_of_work() as session:
            picked = _pick(session, shop_id, 1)
            if not picked:
                return None, None
            event = picked[0]
            event_id = event.id
            return event_id, process_inbox_event(session, event_id, locked=True)
    except PlatformUnavailable:
        raise  # the event stays pending, untouched
    except Exception as exc:
        if event_id is None:
            raise  # the database itself: RQ retries the drain
        dead = _record_failure(event_id, exc)
        if not dead and redis_connection.client is not None:
            queue_webhook(event_id)  # retried on its own, with RQ's backoff
        raise _EventFailed from exc


class _Effects:
    """What processed events ask for afterwards, sent once per drain batch."""

    def __init__(self) -> None:
        self.push = False
        self.mail_ids: list[int] = []

    def add(self, outcome) -> None:
        self.push = self.push or bool(outcome.badges_changed and outcome.shop_id)
        self.mail_ids.extend(outcome.mail_ids)

    def flush(self, shop_id: int) -> None:
        if self.push:
            schedule_push(shop_id)
            queue_due_restocks(shop_id)
        queue_mails(self.mail_ids)
        self.push, self.mail_ids = False, []


def _record_failure(event_id: int, exc: Exception) -> bool:
    """Note the failed attempt; True if the event can never succeed and is now a dead letter
    (not to be retried)."""
    from plugin.services.pipeline import cannot_succeed, record_failure

    dead = cannot_succeed(exc)
    with db.unit_of_work() as session:
        record_failure(session, event_id, f"{type(exc).__name__}: {_first_line(exc)}", dead=dead)
    return dead


def _first_line(exc: Exception) -> str:
    """A database error's own message, without the SQL and parameters SQLAlchemy appends
    (they can quote a customer's details)."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().split("\n", 1)[0]


def _platform_unavailable(shop_id: int, exc: PlatformUnavailable) -> float:
    """Note the outage for the shop's other jobs; the seconds to wait before trying again."""
    wait = mark_platform_down(shop_id, exc.retry_after)
    log.warning("shop %s: platform unavailable (%s); trying again in %.0fs", shop_id, exc, wait)
    return wait


def start_sync(shop_id: int) -> None:
    """After an install or re-authorisation, on any platform: read the whole catalogue (which
    decides every badge and pushes what changed) and send any badge that waited for the token."""
    enqueue("sync", reconcile_shop, shop_id, job_id=f"reconcile-shop-{shop_id}", coalesce=True)
    schedule_push(shop_id)


@job
def process_webhook(event_id: int) -> str:
    """One stored webhook on its own (see `queue_webhook`); raises so RQ retries it. A platform
    that is down leaves the event as it was (pending or failed) for the retry."""
    from plugin.services.pipeline import process_inbox_event

    try:
        with db.unit_of_work() as session:
            outcome = process_inbox_event(session, event_id)
    except PlatformUnavailable as exc:
        shop_id = _shop_of_event(event_id)
        if shop_id is not None:
            _platform_unavailable(shop_id, exc)
        raise
    except Exception as exc:
        if _record_failure(event_id, exc):
            return f"event {event_id}: a dead letter ({type(exc).__name__})"
        raise
    if outcome.badges_changed and outcome.shop_id:
        schedule_push(outcome.shop_id)
        queue_due_restocks(outcome.shop_id)
    queue_mails(outcome.mail_ids)
    return f"event {event_id}: {outcome.badges_changed} badge(s) changed"


def _shop_of_event(event_id: int) -> int | None:
    from plugin.models import WebhookEvent

    event = db.session.get(WebhookEvent, event_id)
    shop_id = event.shop_id if event is not None else None
    db.session.rollback()
    return shop_id


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

    waiting = platform_down_for(shop_id)
    if waiting > 0:
        # Another job of the shop just met the platform down: no call, RQ retries with backoff.
        raise PlatformUnavailable(f"shop {shop_id}: platform unavailable for {waiting:.0f}s")
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
        if isinstance(exc, PlatformUnavailable):
            _platform_unavailable(shop_id, exc)
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
        queue_due_restocks(shop_id)
    if report.badges_fixed or report.badges_unpushed:
        # Any badge the store does not have yet, changed now or earlier (a push lost with
        # Redis, or one that failed for good), goes out again.
        schedule_push(shop_id)
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


MAX_SWEEP_ATTEMPTS = 12


@job
def requeue_stuck_webhooks() -> str:
    """Queue again stored events whose job vanished (Redis restarted) or ran out of retries.
    How old "stuck" is comes from the settings (SWEEP_STALE_PENDING_SECONDS and
    SWEEP_STALE_FAILED_SECONDS)."""
    from sqlalchemy import and_, or_, select

    from plugin.models import InboxStatus, WebhookEvent, utcnow

    sweep = current_app.extensions["settings"].sweep
    stale_pending = timedelta(seconds=sweep.stale_pending_seconds)
    stale_failed = timedelta(seconds=sweep.stale_failed_seconds)
    now = utcnow()
    rows = list(
        db.session.execute(
            select(WebhookEvent.id, WebhookEvent.shop_id, WebhookEvent.status).where(
                or_(
                    and_(
                        WebhookEvent.status == InboxStatus.PENDING,
                        WebhookEvent.received_at < now - stale_pending,
                    ),
                    and_(
                        WebhookEvent.status == InboxStatus.FAILED,
                        WebhookEvent.received_at < now - stale_failed,
                        WebhookEvent.attempts < MAX_SWEEP_ATTEMPTS,
                    ),
                )
            )
        )
    )
    # Pending events of a shop: a drain of the shop; failed and shopless ones: a job each.
    return f"re-queued {queue_shop_events(rows)} webhook(s)"


@job
def push_unpushed_badges() -> str:
    """The clock's safety net for pushes, which live only as delayed RQ jobs: every installed
    shop with a badge decided more than SWEEP_PUSH_PENDING_SECONDS ago and not yet in the store
    (its push lost with Redis, or out of retries) gets a push. Coalesced per shop."""
    from plugin.services.reconcile import shops_with_unpushed_badges

    sweep = current_app.extensions["settings"].sweep
    ids = shops_with_unpushed_badges(db.session, timedelta(seconds=sweep.push_pending_seconds))
    for shop_id in ids:
        _push_soon(shop_id, timedelta(seconds=sweep.every_seconds))
    return f"queued a push for {len(ids)} shop(s)"


def _push_soon(shop_id: int, horizon: timedelta) -> None:
    """Schedule the shop's push; one waiting out a retry (it failed while the platform was
    down) beyond the next sweep goes now, if nothing says the platform is still down: the
    store should not keep an old badge for RQ's next retry slot (minutes) once it is back."""
    from rq.job import Job, JobStatus
    from rq.registry import ScheduledJobRegistry

    from plugin.extensions import redis_connection
    from plugin.queue import get_queue, platform_down_for

    client = redis_connection.client
    job_id = f"push-shop-{shop_id}"
    if client is None or not client.exists(Job.key_for(job_id)):
        schedule_push(shop_id)
        return
    job = Job.fetch(job_id, connection=client)
    if job.get_status() != JobStatus.SCHEDULED or platform_down_for(shop_id) > 0:
        schedule_push(shop_id)
        return
    registry = ScheduledJobRegistry(queue=get_queue("push"))
    try:
        due = registry.get_scheduled_time(job)
    except Exception:  # not in the registry (any more): queue it the ordinary way
        schedule_push(shop_id)
        return
    if due > datetime.now(UTC) + horizon:
        registry.remove(job)
        get_queue("push").enqueue_job(job)


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
