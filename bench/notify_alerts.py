"""Back-in-stock alert benchmark (issue 10): 10,000 shoppers wait for one sold-out variant, a
delivery of 10,000 units comes in at 1 alert per unit, and every one of them must hear exactly
once. The restock goes through the real path: the signed sandbox `inventory_levels/update`
webhook, the inbox, the shop's `drain_shop_inbox` job (the badge turns in stock and opens a
restock row), `alert_restock` on the `emails` queue (one outbox mail per shopper, marked alerted
in the same transaction) and one `send_mail` job per mail, all run by `rq worker` processes as
the Procfile runs them, to a local SMTP server (aiosmtpd) that records every Message-ID and
recipient.

The baseline, in the same run and before it, is what `bench/mail_drain.py` measures: the same
number of plain outbox mails (`outbox.queue_mail`, then `plugin.jobs.queue_mails`) drained by the
same workers to the same server.

Run from the repository root:

    .venv/bin/python bench/notify_alerts.py --subscribers 10000 --workers 2

Production-like settings (APP_ENV=production, a fresh PostgreSQL database migrated with the
app's migrations, Redis db 10, which must be empty). Everything it creates is removed at the
end. Exit status 1 if any shopper is not alerted, or is alerted (or any mail sent) twice.
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from redis import Redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.exceptions import NoSuchJobError  # noqa: E402
from rq.job import Job  # noqa: E402
from rq.registry import StartedJobRegistry  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.webhook_ingest import PG_ADMIN_URL, REDIS_URL, production_env  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.commands import upgrade_database  # noqa: E402
from plugin.extensions import db  # noqa: E402
from plugin.jobs import queue_mails  # noqa: E402
from plugin.models import (  # noqa: E402
    MailStatus,
    NotifySubscription,
    OutboxMail,
    Restock,
    Shop,
    SubscriptionStatus,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.queue import QUEUE_NAMES  # noqa: E402
from plugin.services import outbox, sandbox_store  # noqa: E402
from plugin.services.notify_texts import consent_version, form_texts  # noqa: E402

# A phase that makes no progress for this long has lost something: stop waiting for it (a
# batched restock waits the batch interval on top).
STALL_S = 60
PAGE = "https://bench-store.example/products/linen-shirt"


@dataclass
class Phase:
    """What the SMTP server received during one phase."""

    times: list[float] = field(default_factory=list)
    ids: collections.Counter[str] = field(default_factory=collections.Counter)
    recipients: collections.Counter[str] = field(default_factory=collections.Counter)
    # When each recipient's (first) mail arrived.
    arrivals: dict[str, float] = field(default_factory=dict)


class Recording:
    """An SMTP server's handler that keeps every Message-ID, recipient and arrival time."""

    def __init__(self) -> None:
        self.phase = Phase()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        arrived = time.perf_counter()
        message_id = ""
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
        with self.lock:
            self.phase.times.append(arrived)
            self.phase.ids[message_id] += 1
            for rcpt in envelope.rcpt_tos:
                self.phase.recipients[rcpt.lower()] += 1
                self.phase.arrivals.setdefault(rcpt.lower(), arrived)
        return "250 OK"

    def received(self) -> tuple[int, float | None]:
        with self.lock:
            return len(self.phase.times), (self.phase.times[-1] if self.phase.times else None)

    def take(self) -> Phase:
        with self.lock:
            phase, self.phase = self.phase, Phase()
        return phase


@dataclass
class Outcome:
    name: str
    seconds: float
    first_s: float
    received: Phase
    missing: int  # shoppers not alerted / outbox rows not sent
    notes: list[str]

    def dupes(self) -> int:
        by_id = sum(count - 1 for count in self.received.ids.values())
        by_rcpt = sum(count - 1 for count in self.received.recipients.values())
        return max(by_id, by_rcpt)


def wait_for(
    recording: Recording, expected: int, redis: Redis, started: float, stall_s: float = STALL_S
) -> float:
    """Until `expected` mails arrived (or nothing arrived for STALL_S), then until the queues
    are idle, so a late duplicate is still counted. Returns when the last mail arrived."""
    last_progress, seen = time.perf_counter(), 0
    while True:
        count, _ = recording.received()
        if count != seen:
            last_progress, seen = time.perf_counter(), count
        if count >= expected or time.perf_counter() - last_progress > stall_s:
            break
        time.sleep(0.05)

    def busy() -> int:
        return sum(
            Queue(name, connection=redis).count + StartedJobRegistry(name, connection=redis).count
            for name in QUEUE_NAMES
        )

    quiet_since = None
    deadline = time.perf_counter() + STALL_S
    while time.perf_counter() < deadline:
        if busy():
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter()
        elif time.perf_counter() - quiet_since > 1.0:
            break
        time.sleep(0.05)
    _, last = recording.received()
    return (last or started) - started


def count_rows(session, model, *where) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def setup_store(app, recording: Recording, redis: Redis, subscribers: int, batch_minutes: int):
    """The sandbox shop, a sold-out "deny" variant (its badge decided by the workers from the
    products/update webhook) and `subscribers` confirmed sign-ups for it, oldest first."""
    with app.app_context():
        session = db.session
        shop = sandbox_store.ensure_shop(session)
        shop.name = "Bench store"
        settings = shop.settings
        settings.notify_enabled = True
        settings.email_back_in_stock = True
        settings.notify_rate_per_unit = 1
        settings.notify_batch_minutes = batch_minutes
        product, hooks = sandbox_store.create_product(
            session, shop, "Linen shirt", [("M / Blue", "LIN-M", 0, "deny")]
        )
        sandbox_variant_id = product.variants[0].id
        session.commit()
        if sandbox_store.deliver(shop, hooks) != [200] * len(hooks):
            raise SystemExit("the products/update webhook was refused")
        deadline = time.perf_counter() + STALL_S
        variant = None
        while variant is None or session.get(VariantBadge, variant.id) is None:
            if time.perf_counter() > deadline:
                raise SystemExit("the workers never decided the variant's badge")
            time.sleep(0.05)
            session.rollback()
            variant = session.scalar(
                select(Variant).where(
                    Variant.shop_id == shop.id, Variant.platform_id == str(sandbox_variant_id)
                )
            )
        state = session.get(VariantBadge, variant.id).state
        consent = form_texts(settings, "en", shop.name)["consent"]
        first = utcnow() - timedelta(days=1)
        session.execute(
            insert(NotifySubscription),
            [
                {
                    "shop_id": shop.id,
                    "variant_id": variant.id,
                    "email": f"shopper{n:05d}@example.com",
                    "locale": "en",
                    "status": SubscriptionStatus.ACTIVE,
                    "token": secrets.token_urlsafe(24),
                    "consent_text": consent,
                    "consent_version": consent_version(consent),
                    "form": "sandbox",
                    "page_url": PAGE,
                    "ip_truncated": "203.0.113.0",
                    "double_opt_in": False,
                    "created_at": first + timedelta(milliseconds=n),
                    "confirmed_at": first + timedelta(milliseconds=n),
                }
                for n in range(subscribers)
            ],
        )
        session.commit()
        shop_id, variant_id = shop.id, variant.id
        session.close()
    wait_for(recording, 0, redis, time.perf_counter())  # the first badge push settles
    recording.take()
    return shop_id, sandbox_variant_id, variant_id, state


def baseline(app, recording: Recording, redis: Redis, n: int) -> Outcome:
    """`n` plain outbox mails written in one transaction, then handed to the emails queue."""
    with app.app_context():
        session = db.session
        shop = sandbox_store.ensure_shop(session)
        started = time.perf_counter()
        ids = [
            outbox.queue_mail(
                session,
                shop,
                kind="delay_notice",
                recipient=f"customer{k:05d}@baseline.example",
                key=f"bench:baseline:{k}",
                mail=outbox.Composed(
                    subject="Linen shirt (M / Blue) is back in stock",
                    text="Good news: it is back.\nUnsubscribe: https://app.example/x\n" * 5,
                    html="<html><body><p>Good news: it is back.</p></body></html>",
                ),
            )
            for k in range(n)
        ]
        session.commit()
        written = time.perf_counter() - started
        queue_mails(ids)
        enqueued = time.perf_counter() - started
        seconds = wait_for(recording, n, redis, started)
        session.rollback()
        unsent = count_rows(
            session, OutboxMail, OutboxMail.id.in_(ids), OutboxMail.status != MailStatus.SENT
        )
        session.close()
    phase = recording.take()
    notes = [f"rows written in {written:.1f} s, all send jobs queued after {enqueued:.1f} s"]
    first = (phase.times[0] - started) if phase.times else float("nan")
    return Outcome("plain outbox mails (baseline)", seconds, first, phase, unsent, notes)


def restock(
    app, recording: Recording, redis: Redis, shop_id: int, sandbox_variant_id: int, variant_id: int,
    units: int, n: int, batch_minutes: int,
) -> Outcome:  # fmt: skip
    """The delivery of `units` arrives: from the webhook accepted to the last alert."""
    with app.app_context():
        session = db.session
        shop = session.get(Shop, shop_id)
        hooks = sandbox_store.receive_stock(session, shop, sandbox_variant_id, units)
        session.commit()
        statuses = sandbox_store.deliver(shop, hooks)
        started = time.perf_counter()
        if statuses != [200] * len(hooks):
            raise SystemExit(f"the inventory webhook was refused: {statuses}")
        batches = -(-n // units)
        stall_s = STALL_S + (60 * batch_minutes + 5 if batches > 1 else 0)
        seconds = wait_for(recording, n, redis, started, stall_s)
        session.rollback()
        left = count_rows(
            session,
            NotifySubscription,
            NotifySubscription.variant_id == variant_id,
            NotifySubscription.status != SubscriptionStatus.ALERTED,
        )
        unsent = count_rows(
            session,
            OutboxMail,
            OutboxMail.kind == "back_in_stock",
            OutboxMail.status != MailStatus.SENT,
        )
        notes = []
        for row in session.scalars(select(Restock).where(Restock.variant_id == variant_id)):
            notes.append(
                f"restock {row.id}: {row.status}, {row.batches} batch(es), "
                f"{row.alerted} alerted, {row.units_at_start} units at start"
            )
            for batch in range(row.batches):
                try:
                    job = Job.fetch(f"restock-{row.id}-batch-{batch}", connection=redis)
                except NoSuchJobError:
                    continue
                if job.started_at and job.ended_at:
                    took = (job.ended_at - job.started_at).total_seconds()
                    notes.append(f"alert_restock batch {batch + 1} job ran {took:.1f} s")
        session.close()
    phase = recording.take()
    if batches > 1:  # who heard when: shopper k is in batch k // units (sign-up order)
        for batch in range(min(batches, 10)):
            times = [
                at - started
                for rcpt, at in phase.arrivals.items()
                if rcpt.startswith("shopper") and int(rcpt[7:12]) // units == batch
            ]
            if times:
                notes.append(
                    f"batch {batch + 1} ({len(times)} shoppers): first alert at {min(times):.1f} s,"
                    f" last at {max(times):.1f} s"
                )
    if unsent:
        notes.append(f"{unsent} back-in-stock outbox row(s) not sent")
    first = (phase.times[0] - started) if phase.times else float("nan")
    name = f"restock {units} units, rate 1 (alerts)"
    return Outcome(name, seconds, first, phase, left + unsent, notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--units", type=int, help="received (default: as many as subscribers)")
    parser.add_argument("--batch-minutes", type=int, default=1, help="interval (app's min: 1)")
    parser.add_argument("--workers", type=int, default=2, help="rq worker processes")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args(argv)
    units = args.units or args.subscribers
    if not 1 <= args.subscribers <= 100_000 or not 1 <= args.workers <= 32:
        parser.error("--subscribers must be 1..100000 and --workers 1..32")
    if not 1 <= units <= 1_000_000 or not 1 <= args.batch_minutes <= 15:
        parser.error("--units must be 1..1000000 and --batch-minutes 1..15")
    redis = Redis.from_url(args.redis_url)
    if redis.dbsize():
        print(f"refusing to run: {args.redis_url} is not empty", file=sys.stderr)
        return 2

    recording = Recording()
    with socket.socket() as probe:  # a free port (aiosmtpd cannot bind port 0 itself)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(recording, hostname="127.0.0.1", port=port)
    smtp.start()
    admin_url = make_url(args.pg_admin_url)
    db_name = f"bench_notify_{uuid.uuid4().hex[:10]}"
    database_url = admin_url.set(database=db_name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    env = {
        **production_env(database_url, args.redis_url),
        "SMTP_URL": f"smtp://127.0.0.1:{port}",
        "MAIL_FROM": "backorders@bench.example",
    }
    workers: list[subprocess.Popen] = []
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open for the workers' whole life
        "w", prefix="notify-alerts-workers-", suffix=".log", delete=False
    )
    ok = False
    try:
        app = create_app(env)
        with app.app_context():
            upgrade_database()
        # As the Procfile's `worker` entry runs them (every queue, one of them the scheduler).
        command = [
            str(ROOT / ".venv/bin/rq"), "worker", "--with-scheduler",
            "--worker-class", "plugin.worker.AppWorker", "--url", args.redis_url, *QUEUE_NAMES,
        ]  # fmt: skip
        worker_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        workers += [
            subprocess.Popen(command, cwd=ROOT, env=worker_env, stdout=log, stderr=log)
            for _ in range(args.workers)
        ]
        n = args.subscribers
        shop_id, sandbox_variant_id, variant_id, state = setup_store(
            app, recording, redis, n, args.batch_minutes
        )
        if state != "out_of_stock":
            raise SystemExit(f"the variant's badge is {state!r}, not out_of_stock")
        base = baseline(app, recording, redis, n)
        alerts = restock(
            app, recording, redis, shop_id, sandbox_variant_id, variant_id, units, n,
            args.batch_minutes,
        )  # fmt: skip
        db._engines.pop(database_url).dispose()

        print(
            f"back-in-stock alerts, {n} subscribers on one variant, {units} units at rate 1"
            + (f" (batches {args.batch_minutes} min apart)" if units < n else "")
            + f", {args.workers} rq workers (Procfile's worker), SMTP on 127.0.0.1:{port} "
            f"(aiosmtpd), {os.cpu_count()} CPUs"
        )
        print(
            f"{'':38}{'mails/s':>8}{'seconds':>9}{'first s':>9}{'received':>10}"
            f"{'dupes':>7}{'missing':>9}"
        )
        for row in (base, alerts):
            got = len(row.received.times)
            rate = got / row.seconds if row.seconds else 0.0
            print(
                f"{row.name:38}{rate:8.0f}{row.seconds:9.1f}{row.first_s:9.1f}{got:10d}"
                f"{row.dupes():7d}{row.missing:9d}"
            )
        for row in (base, alerts):
            for note in row.notes:
                print(f"  {row.name.split(' (')[0]}: {note}")
        print(f"ratio time alerts/baseline: {alerts.seconds / base.seconds:.2f}")
        print(
            f"time to alert everyone: {alerts.seconds:.1f} s from the restock webhook accepted "
            f"to the last alert received ({n / alerts.seconds:.0f} alerts/s)"
        )
        print(
            "command: " + shlex.join([".venv/bin/python", "bench/notify_alerts.py", *sys.argv[1:]])
        )
        ok = all(
            len(row.received.times) == n
            and len(row.received.recipients) == n
            and not row.dupes()
            and not row.missing
            for row in (base, alerts)
        )
        print(
            "every shopper alerted exactly once"
            if ok
            else "SHOPPERS NOT ALERTED OR ALERTED TWICE (worker log: " + log.name + ")"
        )
        return 0 if ok else 1
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()
        if ok:
            os.unlink(log.name)
        smtp.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
        redis.flushdb()
        redis.close()


if __name__ == "__main__":
    sys.exit(main())
