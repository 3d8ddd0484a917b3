"""Fault drills with real processes: the Procfile's gunicorn, `rq worker` and clock on a
PostgreSQL and a Redis of the drills' own, faults done to them while signed sandbox webhooks
arrive. Each drill counts sent, acknowledged, stored, processed and lost deliveries (lost must
be 0), checks that nothing took effect twice (the ledger owes exactly what the store oversold)
and that every variant's badge is right at the end, in the app, in the store and from the badge
API. Run them with:

    .venv/bin/pytest -q -m drill tests/drills
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry

from plugin.extensions import db
from tests.drills.harness import (
    Platform,
    check_end_state,
    mail_counts,
    settled,
    settled_detail,
    tally,
    wait_for,
)

pytestmark = [pytest.mark.drill, pytest.mark.usefixtures("drill_report")]
SETTLE_SECONDS = 120


def finish(name: str, platform: Platform, stack, resend: bool = True):
    if resend:
        platform.resend_unacked()
    try:
        wait_for(lambda: settled(db, platform), SETTLE_SECONDS, f"{name}: everything processed")
    except AssertionError:
        print(tally(db, platform).line(name), settled_detail(db, platform))
        raise
    result = tally(db, platform)
    print(result.line(name))
    assert result.lost == 0, result.line(name)
    problems = check_end_state(db, platform)
    assert not problems, "\n".join(problems)
    for name_, process in stack.processes.items():
        assert process.poll() is None, f"{name_} exited with {process.returncode}"
    return result


def start(drill_app, stack, name: str, seed: int, mailbox=None) -> Platform:
    platform = Platform(drill_app, stack, f"{name}.drill.local", seed)
    platform.mailbox = mailbox
    platform.deliver(platform.setup())
    return platform


def test_control_no_fault(drill_app, stack):
    platform = start(drill_app, stack, "control", 1)
    platform.deliver(platform.changes(60))
    finish("control, no fault", platform, stack)


def test_redis_stopped_during_ingest(drill_app, stack, redis_server):
    platform = start(drill_app, stack, "redis-stopped", 1)
    changes = platform.changes(60)
    platform.deliver(changes, during={20: redis_server.stop, 40: redis_server.start})
    result = finish("redis stopped during ingest", platform, stack)
    assert sum(result.refused_first_try.values()) >= 10  # the outage was felt: 503s


def test_redis_restarted_without_its_data(drill_app, stack, redis_server):
    """The queue is lost: the sweeper re-queues stored webhooks, and (defect 1) pushes every
    badge the store does not have yet."""
    platform = start(drill_app, stack, "redis-wiped", 2)

    def restart_empty():
        redis_server.stop()
        redis_server.wipe()
        redis_server.start()

    platform.deliver(platform.changes(60), during={30: restart_empty})
    # A stock change decided, its push waiting in Redis (the push waits a second to coalesce),
    # then Redis restarts empty: defect 1 left the store showing the old badge for good.
    last = platform.changes(1, orders=False)
    platform.deliver(last)
    wait_for(lambda: processed(last[0]), 30, "the last change processed")
    restart_empty()
    finish("redis restarted without its data", platform, stack)


def test_redis_stalled_40s(drill_app, stack, redis_server):
    """SIGSTOP for 40 s: requests hang and are resent; the clock and the worker's scheduler
    (defect 2) go on afterwards, and a delayed job runs on time."""
    platform = start(drill_app, stack, "redis-stalled", 3)
    platform.deliver(platform.changes(20))
    clock_before = {n: p.pid for n, p in stack.processes.items()}
    redis_server.pause()
    stalled_at = time.monotonic()
    during = platform.changes(10)
    try:
        for delivery in during:  # each waits up to 10 s for an answer
            if time.monotonic() - stalled_at >= 40:
                break
            platform.post(delivery, timeout=10)
        wait_for(lambda: time.monotonic() - stalled_at >= 40, 45, "40 s of stall", interval=1)
    finally:
        redis_server.resume()
    platform.deliver([d for d in during if not d.statuses])
    platform.deliver(platform.changes(20))
    live = redis_server.client()
    job = Queue("push", connection=live).enqueue_in(
        timedelta(seconds=1), "plugin.jobs.push_unpushed_badges"
    )
    wait_for(
        lambda: job.get_status(refresh=True) == "finished", 30, "a delayed job run after the stall"
    )
    finish("redis stalled 40 s", platform, stack)
    assert {n: p.pid for n, p in stack.processes.items()} == clock_before
    pid = Queue("push", connection=live).scheduler_pid
    assert pid and alive(pid), "the worker's scheduler is gone"


def test_worker_sigkilled_mid_job(drill_app, stack, redis_server):
    platform = start(drill_app, stack, "worker-killed", 4)
    platform.deliver(platform.changes(80))
    live = redis_server.client()
    started = StartedJobRegistry("webhooks", connection=live)
    name = next(n for n in stack.processes if n.startswith("worker"))
    wait_for(lambda: started.get_job_ids(), 30, "a job started", interval=0.01)
    # The whole container dies (worker and its scheduler), as the OOM killer or a host would.
    stack.stop(name, signal.SIGKILL)
    stack.start("worker")  # the process manager starts another
    finish("worker SIGKILLed mid-job", platform, stack)


def test_postgres_restarted(drill_app, stack, pg):
    platform = start(drill_app, stack, "pg-restarted", 5)
    platform.deliver(platform.changes(60), during={20: pg.restart})
    finish("postgresql restarted", platform, stack)


def test_smtp_down(drill_app, stack, smtp_server):
    """Customer mails while the mail server is down: none lost, none sent twice."""
    platform = start(drill_app, stack, "smtp-down", 6, mailbox=smtp_server.mailbox)
    platform.deliver(platform.changes(20))
    smtp_server.stop()
    try:
        platform.deliver(platform.changes(40))
        wait_for(lambda: pending_mails(platform), 60, "mails waiting for the server")
    finally:
        smtp_server.start()
    finish("smtp down", platform, stack)
    sent, taken = mail_counts(db, platform)
    print(f"drill smtp down: mails sent {sent}, taken by the server {taken}")
    assert sent == taken and sent > 0


def processed(delivery) -> bool:
    from sqlalchemy import select

    from plugin.models import InboxStatus, WebhookEvent

    db.session.rollback()
    status = db.session.scalar(
        select(WebhookEvent.status).where(WebhookEvent.event_id == delivery.event_id)
    )
    return status == InboxStatus.PROCESSED


def pending_mails(platform) -> int:
    from sqlalchemy import func, select

    from plugin.models import OutboxMail

    db.session.rollback()
    return db.session.scalar(
        select(func.count())
        .select_from(OutboxMail)
        .where(OutboxMail.shop_id == platform.shop_id, OutboxMail.status == "pending")
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
