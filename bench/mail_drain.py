"""Mail drain benchmark: 10,000 outbox mails sent to a local SMTP server (aiosmtpd) through the
real path, `plugin.jobs.send_mail` on the Redis `emails` queue run by `rq worker` processes as
the Procfile runs them, against a baseline in the same run: the same `mailer.send` called
in-process, one mail after another.

It counts what the SMTP server received (every Message-ID) and the outbox rows left unsent:
each mail must arrive exactly once (exit status 1 otherwise).

Run from the repository root:

    .venv/bin/python bench/mail_drain.py --mails 10000 --workers 4

Everything it creates (database, the Redis db's keys, worker processes, the SMTP server) is
removed at the end. It refuses to start if the Redis db is not empty.
"""

from __future__ import annotations

import argparse
import collections
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.webhook_ingest import PG_ADMIN_URL, REDIS_URL, production_env  # noqa: E402


class Counting:
    """An SMTP server's handler that keeps every Message-ID it accepts."""

    def __init__(self) -> None:
        self.ids: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message_id = ""
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode()
        with self.lock:
            self.ids[message_id] += 1
        return "250 OK"

    def reset(self) -> tuple[int, int]:
        with self.lock:
            received, unique = sum(self.ids.values()), len(self.ids)
            self.ids.clear()
        return received, unique


def queue_rows(app, count: int, tag: str) -> list[int]:
    from plugin.extensions import db
    from plugin.services import outbox, sandbox_store

    with app.app_context():
        shop = sandbox_store.ensure_shop(db.session)
        ids = []
        for n in range(count):
            ids.append(
                outbox.queue_mail(
                    db.session,
                    shop,
                    kind="delay_notice",
                    recipient=f"customer{n}@example.com",
                    key=f"bench:{tag}:{n}",
                    mail=outbox.Composed(
                        subject=f"Your order #{n} is delayed",
                        text="Your backorder is delayed.\nCancel: https://app.example/x\n" * 5,
                        html="<html><body><p>Your backorder is delayed.</p></body></html>",
                    ),
                )
            )
        db.session.commit()
    return ids


def unsent(app, ids: list[int]) -> int:
    from plugin.extensions import db
    from plugin.models import MailStatus, OutboxMail

    with app.app_context():
        left = db.session.scalar(
            select(func.count())
            .select_from(OutboxMail)
            .where(OutboxMail.id.in_(ids), OutboxMail.status != MailStatus.SENT)
        )
        db.session.close()
    return int(left or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4, help="rq worker processes")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args(argv)
    if not 1 <= args.mails <= 100_000 or not 1 <= args.workers <= 32:
        parser.error("--mails must be 1..100000 and --workers 1..32")
    redis = Redis.from_url(args.redis_url)
    if redis.dbsize():
        print(f"refusing to run: {args.redis_url} is not empty", file=sys.stderr)
        return 2

    handler = Counting()
    with socket.socket() as probe:  # a free port (aiosmtpd cannot bind port 0 itself)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    admin_url = make_url(args.pg_admin_url)
    db_name = f"bench_mail_{uuid.uuid4().hex[:10]}"
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
    try:
        from plugin import create_app
        from plugin.commands import upgrade_database
        from plugin.extensions import db
        from plugin.jobs import queue_mails, send_mail

        app = create_app(env)
        with app.app_context():
            upgrade_database()
        n = args.mails

        # Baseline: the send function in-process, one mail after another.
        base_ids = queue_rows(app, n, "baseline")
        started = time.perf_counter()
        with app.app_context():
            for mail_id in base_ids:
                send_mail(mail_id)
            db.session.close()
        base_s = time.perf_counter() - started
        base_received, base_unique = handler.reset()
        base_left = unsent(app, base_ids)

        # The real path: queued on Redis, drained by `rq worker` processes.
        ids = queue_rows(app, n, "queued")
        with app.app_context():
            queue_mails(ids)
        command = [
            str(ROOT / ".venv/bin/rq"),
            "worker",
            "--burst",
            "--worker-class",
            "plugin.worker.AppWorker",
            "--url",
            args.redis_url,
            "emails",
        ]
        started = time.perf_counter()
        for _ in range(args.workers):
            workers.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for worker in workers:
            worker.wait(timeout=3600)
        drain_s = time.perf_counter() - started
        received, unique = handler.reset()
        left = unsent(app, ids)
        db._engines.pop(database_url).dispose()

        print(
            f"mail drain, {n} mails each, SMTP on 127.0.0.1:{port} (aiosmtpd), "
            f"{os.cpu_count()} CPUs"
        )
        print(f"{'':34}{'mails/s':>9}{'seconds':>9}{'received':>10}{'dupes':>7}{'unsent':>8}")
        rows = [
            ("send_mail in-process (baseline)", n / base_s, base_s, base_received, base_unique,
             base_left),
            (f"emails queue, {args.workers} rq workers", n / drain_s, drain_s, received, unique,
             left),
        ]  # fmt: skip
        for name, rate, seconds, got, distinct, missing in rows:
            print(f"{name:34}{rate:9.0f}{seconds:9.1f}{got:10d}{got - distinct:7d}{missing:8d}")
        print(f"ratio throughput queue/baseline: {(n / drain_s) / (n / base_s):.2f}")
        print(f"time to drain {n} queued mails: {drain_s:.1f} s (workers started to last exit)")
        print("command: " + shlex.join([".venv/bin/python", "bench/mail_drain.py", *sys.argv[1:]]))
        ok = all(
            got == n and distinct == n and not missing for _, _, _, got, distinct, missing in rows
        )
        print("every mail arrived exactly once" if ok else "MAILS LOST OR DUPLICATED")
        return 0 if ok else 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        smtp.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
        redis.flushdb()
        redis.close()


if __name__ == "__main__":
    sys.exit(main())
