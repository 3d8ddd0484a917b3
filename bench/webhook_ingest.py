"""Webhook ingest benchmark: the real `POST /webhooks/sandbox` (verify the signature, store the
event in the inbox, commit, enqueue to Redis, 200) against a bare Flask endpoint that only
answers 200, both under gunicorn with the same workers, driven by the same load in one run.

Production-like: APP_ENV=production, a fresh PostgreSQL database migrated with the app's own
migrations, Redis for the queue, gunicorn sync workers as in the Procfile. No RQ worker runs, so
every accepted webhook must still be waiting afterwards: the run checks that the inbox holds
exactly one row per request and the `webhooks` queue exactly one job per request.

Run from the repository root:

    .venv/bin/python bench/webhook_ingest.py --requests 2000 --concurrency 8 --workers 2

Everything it creates (servers, database, the Redis db's keys) is removed at the end. It refuses
to start if the Redis db is not empty, so it never counts or flushes anyone else's jobs.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/10"


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: list[str]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


def production_env(database_url: str, redis_url: str) -> dict[str, str]:
    """What a production deploy sets (all secrets present, so APP_ENV=production starts)."""
    return {
        "APP_ENV": "production",
        "APP_URL": "http://127.0.0.1",
        "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SHOPIFY_CLIENT_ID": "bench-shopify-client-id",
        "SHOPIFY_CLIENT_SECRET": "bench-shopify-client-secret",
        "BIGCOMMERCE_CLIENT_ID": "bench-bc-client-id",
        "BIGCOMMERCE_CLIENT_SECRET": "bench-bc-client-secret",
        # The sandbox is the one platform whose webhooks the bench can sign itself.
        "SANDBOX_ENABLED": "1",
    }


class Server:
    """gunicorn on a socket we bind first (127.0.0.1, ephemeral port), handed over as fd://."""

    def __init__(self, name: str, app_spec: str, env: dict[str, str], workers: int, wclass: str):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.set_inheritable(True)
        self.port = self.sock.getsockname()[1]
        fd = self.sock.fileno()
        self.command = [
            sys.executable, "-m", "gunicorn", app_spec,
            "--bind", f"fd://{fd}",
            "--workers", str(workers),
            "--worker-class", wclass,
            "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            pass_fds=(fd,),
        )

    def wait_ready(self, path: str = "/healthz", timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server not ready after {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sock.close()


def drive(
    name: str, port: int, requests_: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> Result:
    """Send every request once, `concurrency` at a time, each thread on its own connection
    (re-opened when the server closes it, as gunicorn's sync workers do after each response)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(len(requests_)))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            body, headers = requests_[index]
            started = time.perf_counter()
            try:
                conn.request("POST", "/webhooks/sandbox", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
                continue
            mine.append(time.perf_counter() - started)
            if status != 200:
                with lock:
                    errors.append(f"HTTP {status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Result(name, len(requests_), time.perf_counter() - started, latencies, errors)


def build_requests(app, shop_domain: str, count: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed sandbox inventory webhooks, each with its own event id (built before timing)."""
    from plugin.models import utcnow
    from webhooks.sandbox import build_delivery

    settings = app.extensions["settings"]
    return [
        build_delivery(
            settings.secret_key,
            shop_domain,
            "inventory_levels/update",
            {
                "variant_id": 1 + i % 50,
                "location_id": "default",
                "available": i % 7 - 2,
                "updated_at": utcnow().isoformat(),
            },
            event_id=f"bench-{uuid.uuid4()}",
        )
        for i in range(count)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per server")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("--requests must be 1..100000 and --concurrency 1..256")

    redis = Redis.from_url(args.redis_url)
    if redis.dbsize():
        print(f"refusing to run: {args.redis_url} is not empty", file=sys.stderr)
        return 2

    admin_url = make_url(args.pg_admin_url)
    db_name = f"bench_ingest_{uuid.uuid4().hex[:10]}"
    database_url = admin_url.set(database=db_name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    env = production_env(database_url, args.redis_url)
    servers: list[Server] = []
    try:
        from plugin import create_app
        from plugin.commands import upgrade_database
        from plugin.extensions import db
        from plugin.models import InboxStatus, WebhookEvent
        from plugin.queue import get_queue
        from plugin.services import sandbox_store

        app = create_app(env)
        with app.app_context():
            upgrade_database()
            shop = sandbox_store.ensure_shop(db.session)
            db.session.commit()
            shop_domain = shop.domain
        n = args.requests
        app_requests = build_requests(app, shop_domain, n)
        bare_requests = build_requests(app, shop_domain, n)

        bare = Server("bare", "bench.bare_app:app", env, args.workers, args.worker_class)
        servers.append(bare)
        real = Server("app", "plugin:create_app()", env, args.workers, args.worker_class)
        servers.append(real)
        for server in servers:
            server.wait_ready()
            # Warm-up on GET /healthz only, so the inbox and queue hold the measured requests alone.
            warm = http.client.HTTPConnection("127.0.0.1", server.port)
            for _ in range(20 * args.workers):
                warm.request("GET", "/healthz")
                warm.getresponse().read()
            warm.close()

        results = [
            drive("bare Flask 200", bare.port, bare_requests, args.concurrency),
            drive("app ingest", real.port, app_requests, args.concurrency),
        ]
        for server in servers:
            server.stop()

        with app.app_context():
            inbox_rows = db.session.scalar(select(func.count()).select_from(WebhookEvent))
            pending = db.session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.status == InboxStatus.PENDING)
            )
            queued = get_queue("webhooks").count
            db.session.close()
        db._engines.pop(database_url).dispose()
        report(args, results, inbox_rows, pending, queued, servers)
        lost = inbox_rows != n or queued != n or any(r.errors for r in results)
        return 1 if lost else 0
    finally:
        for server in servers:
            server.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
        redis.flushdb()
        redis.close()


def report(args, results: list[Result], inbox_rows, pending, queued, servers) -> None:
    bare, real = results
    n = args.requests
    print(
        f"webhook ingest, {n} requests per server, concurrency {args.concurrency}, gunicorn "
        f"--workers {args.workers} --worker-class {args.worker_class}, {os.cpu_count()} CPUs"
    )
    print(f"{'':16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        p50, p99 = r.percentile(50), r.percentile(99)
        print(f"{r.name:16} {r.rps:9.0f} {p50:8.2f} {p99:8.2f} {len(r.errors):7d}")
    print(f"ratio throughput app/bare: {real.rps / bare.rps:.2f}")
    print(f"ratio p99 app/bare:        {real.percentile(99) / bare.percentile(99):.2f}")
    verdict = "nothing lost" if inbox_rows == queued == n else "MISMATCH"
    print(
        f"inbox rows: {inbox_rows} (pending {pending}); jobs in 'webhooks' queue: {queued}; "
        f"expected {n} each -> {verdict}"
    )
    for r in results:
        if r.errors:
            print(f"{r.name} errors (first 3): {r.errors[:3]}")
    print("servers:", *(shlex.join(s.command[2:]) for s in servers), sep="\n  ")
    command = [sys.executable, "bench/webhook_ingest.py", "--requests", str(n)]
    command += ["--concurrency", str(args.concurrency), "--workers", str(args.workers)]
    command += ["--worker-class", args.worker_class]
    print("reproduce: cd", ROOT, "&&", shlex.join(command))


if __name__ == "__main__":
    sys.exit(main())
