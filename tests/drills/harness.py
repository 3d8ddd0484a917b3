"""The machinery of the fault drills: the drills' own Redis and PostgreSQL (so stopping,
restarting or freezing them never touches anyone else's), the Procfile's processes run as in
production (APP_ENV=production, every secret set), and a stand-in platform that makes changes
in the sandbox store, signs each delivery, counts what was acknowledged and resends what was not,
as Shopify does."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from redis import Redis

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)

# The safety nets, in seconds instead of minutes (plugin/settings.py SweepSettings).
DRILL_SWEEP = {
    "SWEEP_EVERY_SECONDS": "2",
    "SWEEP_STALE_PENDING_SECONDS": "6",
    "SWEEP_STALE_FAILED_SECONDS": "6",
    "SWEEP_PUSH_PENDING_SECONDS": "4",
    # Reconciliation would hide what the sweepers miss: it stays hourly in the drills.
    "SWEEP_RECONCILE_EVERY_SECONDS": "3600",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll until `condition()` is truthy (and return it), or fail saying what was awaited. An
    error from the condition (a service coming back up) counts as not yet, and is named if the
    deadline passes."""
    errors: list[Exception] = []

    def attempt():
        try:
            return condition()
        except Exception as exc:
            errors[:] = [exc]
            return None

    try:
        return wait_until(attempt, timeout=timeout, what=what, interval=interval)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out} ({errors[0] if errors else None})") from None


# --- the drills' own services -------------------------------------------------------------------


class RedisServer:
    """A redis-server of the drills' own, with an append-only file (fsync always), so a stop
    and start keeps the queues unless `wipe()` removed them."""

    def __init__(self, base: Path):
        self.port = free_port()
        self.dir = base / "redis"
        self.log = base / "redis.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        # With a socket timeout, as managed Redis services advise: a stalled Redis then raises
        # TimeoutError in every client instead of hanging it (what killed `rq cron`, defect 2).
        return f"redis://127.0.0.1:{self.port}/0?socket_timeout=10&socket_connect_timeout=5"

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.dir), "--appendonly", "yes", "--appendfsync", "always",
                 "--save", ""],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(lambda: self.client().ping(), 20, "redis-server up")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=20)

    def wipe(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)


class Postgres:
    """A PostgreSQL cluster of the drills' own (initdb in a temp dir, on a free port)."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="drill-pg-"))
        self.data = self.dir / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    def _run(self, *argv) -> None:
        # The server's output goes to its log (-l), never to a pipe we would wait on.
        subprocess.run(
            [*self.as_postgres, *map(str, argv)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c max_connections=200"
        )
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-o", options, "-l", self.dir / "pg.log",
                  "-w", "-t", "60", "start")  # fmt: skip

    def restart(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-l", self.dir / "pg.log",
                  "-w", "-t", "60", "restart")  # fmt: skip

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def production_env(database_url: str, redis_url: str) -> dict[str, str]:
    """What a production deploy sets: every secret, APP_ENV=production; the sandbox on, as it
    is the one platform the drills can sign deliveries for."""
    return {
        "APP_ENV": "production",
        "APP_URL": "http://127.0.0.1",
        "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SHOPIFY_CLIENT_ID": "drill-shopify-client-id",
        "SHOPIFY_CLIENT_SECRET": "drill-shopify-client-secret",
        "BIGCOMMERCE_CLIENT_ID": "drill-bc-client-id",
        "BIGCOMMERCE_CLIENT_SECRET": "drill-bc-client-secret",
        "SANDBOX_ENABLED": "1",
        **DRILL_SWEEP,
    }


# --- the Procfile's processes -------------------------------------------------------------------


def procfile() -> dict[str, str]:
    """The Procfile's process lines (DRILL_PROCFILE names another, e.g. to run an older one)."""
    lines = Path(os.environ.get("DRILL_PROCFILE") or ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


class Stack:
    """The Procfile's web, worker and clock processes, each in its own process group."""

    def __init__(self, base: Path, env: dict[str, str]):
        self.base = base
        self.web_port = free_port()
        self.env = {
            **os.environ,
            **env,
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
            "PORT": str(self.web_port),
            "WEB_CONCURRENCY": "2",
            "GUNICORN_ACCESS_LOG": "none",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.counter = Counter()

    def start(self, kind: str) -> str:
        self.counter[kind] += 1
        name = f"{kind}-{self.counter[kind]}"
        log = (self.base / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", "exec " + procfile()[kind]],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        if kind == "web":
            wait_for(self.web_ready, 60, "gunicorn up")
        elif kind == "worker":
            wait_for(lambda: self.workers_listening() >= self.counter_alive("worker"), 60,
                     "worker listening")  # fmt: skip
        return name

    def counter_alive(self, kind: str) -> int:
        return sum(1 for n, p in self.processes.items() if n.startswith(kind) and p.poll() is None)

    def workers_listening(self) -> int:
        from rq import Worker

        return len(Worker.all(connection=Redis.from_url(self.env["REDIS_URL"])))

    def web_ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def alive(self, name: str) -> bool:
        return self.processes[name].poll() is None

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Signal the process group we started for `name` (its children too)."""
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # A SIGKILLed worker leaves its scheduler child behind in the group: end it too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def kill_worker_only(self, name: str) -> None:
        """SIGKILL the worker process itself (not its group), as the OOM killer would."""
        os.kill(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def logs(self, tail: int = 3000) -> str:
        out = []
        for path in sorted(self.base.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(out)


# --- the platform: changes in the sandbox store, delivered as signed webhooks ----------------


@dataclass
class Delivery:
    event_id: str
    topic: str
    body: bytes
    headers: dict[str, str]
    statuses: list[int] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return 200 in self.statuses


@dataclass
class Tally:
    sent: int = 0
    acked_first_try: int = 0
    refused_first_try: Counter = field(default_factory=Counter)
    resends: int = 0
    acked: int = 0
    stored: int = 0
    processed: int = 0
    lost: int = 0

    def line(self, name: str) -> str:
        refused = ", ".join(f"{k}: {v}" for k, v in sorted(self.refused_first_try.items()))
        return (
            f"drill {name}: sent {self.sent}, acknowledged first try {self.acked_first_try} "
            f"(refused {refused or 'none'}), resent {self.resends}, acknowledged {self.acked}, "
            f"stored {self.stored}, processed {self.processed}, lost {self.lost}"
        )


class Platform:
    """The sandbox store of one shop, driven as a platform: each change is a signed webhook,
    delivered once, and resent (same event id) until acknowledged."""

    def __init__(self, app, stack: Stack, domain: str, seed: int):
        self.app = app
        self.stack = stack
        self.domain = domain
        self.random = random.Random(seed)
        self.deliveries: list[Delivery] = []
        self.clock = datetime.now(UTC)
        self.variant_ids: list[int] = []
        self.continue_ids: list[int] = []
        self.mailbox = None  # the SMTP server's, when the drill counts mails

    # changes
    def _signed(self, hooks) -> list[Delivery]:
        from webhooks.sandbox import build_delivery

        secret = self.app.extensions["settings"].secret_key
        made = []
        for hook in hooks:
            # The time of the change, as a platform stamps it (strictly increasing).
            self.clock = max(datetime.now(UTC), self.clock + timedelta(microseconds=1))
            event_id = f"drill-{uuid.uuid4()}"
            body, headers = build_delivery(
                secret, self.domain, hook.topic, hook.payload, event_id=event_id,
                triggered_at=self.clock,
            )  # fmt: skip
            made.append(Delivery(event_id, hook.topic, body, headers))
        self.deliveries.extend(made)
        return made

    def setup(self, products: int = 3, variants: int = 3) -> list[Delivery]:
        from plugin.extensions import db
        from plugin.services import sandbox_store

        shop = sandbox_store.ensure_shop(db.session, self.domain)
        db.session.commit()
        self.shop_id = shop.id
        made = []
        for p in range(products):
            spec = [
                (f"V{v}", f"SKU-{p}-{v}", 3, "continue" if v % 3 != 2 else "deny")
                for v in range(variants)
            ]
            product, hooks = sandbox_store.create_product(db.session, shop, f"Drill {p}", spec)
            db.session.commit()
            for variant in product.variants:
                self.variant_ids.append(variant.id)
                if variant.policy == "continue":
                    self.continue_ids.append(variant.id)
            made += self._signed(hooks)
        return made

    def changes(self, count: int, orders: bool = True) -> list[Delivery]:
        """`count` random store changes: stock set anywhere, orders on selling-past-zero ones."""
        from plugin.extensions import db
        from plugin.services import sandbox_store

        shop = self._shop()
        made: list[Delivery] = []
        while len(made) < count:
            if orders and self.random.random() < 0.35:
                vid = self.random.choice(self.continue_ids)
                email = f"shopper{self.random.randint(1, 5)}@example.com"
                _order, hooks = sandbox_store.place_order(
                    db.session, shop, vid, self.random.randint(1, 3), email
                )
            else:
                vid = self.random.choice(self.variant_ids)
                hooks = sandbox_store.set_inventory(
                    db.session, shop, vid, self.random.randint(-2, 6)
                )
            db.session.commit()
            made += self._signed(hooks)
        return made

    def _shop(self):
        from plugin.extensions import db
        from plugin.models import Shop

        return db.session.get(Shop, self.shop_id)

    # delivery
    def post(self, delivery: Delivery, timeout: float = 10) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.web_port, timeout=timeout)
        try:
            conn.request("POST", "/webhooks/sandbox", body=delivery.body, headers=delivery.headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0  # no answer: reset, refused or timed out
        finally:
            conn.close()
        delivery.statuses.append(status)
        return status

    def deliver(self, deliveries: list[Delivery], during=None) -> None:
        """Each once, in order; `during` maps an index to an action run before that one."""
        during = during or {}
        for index, delivery in enumerate(deliveries):
            if index in during:
                during[index]()
            self.post(delivery)

    def resend_unacked(self, timeout: float = 90) -> int:
        """As a platform retries: every delivery not acknowledged yet, until all are."""
        resent = 0

        def all_acked() -> bool:
            nonlocal resent
            for delivery in self.deliveries:
                if not delivery.acked:
                    resent += 1
                    self.post(delivery)
            return all(d.acked for d in self.deliveries)

        wait_for(all_acked, timeout, "every delivery acknowledged", interval=0.5)
        return resent


# --- what the database says at the end --------------------------------------------------------


def fresh(db) -> None:
    db.session.rollback()
    db.session.expire_all()


def settled(db, platform: Platform) -> bool:
    """Every delivery processed, every badge pushed, every mail out of the outbox."""
    done, unpushed, mails_waiting = settled_detail(db, platform)
    return done == len(platform.deliveries) and unpushed == 0 and mails_waiting == 0


def settled_detail(db, platform: Platform) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from plugin.models import InboxStatus, OutboxMail, VariantBadge, WebhookEvent

    fresh(db)
    ids = [d.event_id for d in platform.deliveries]
    done = db.session.scalar(
        select(func.count())
        .select_from(WebhookEvent)
        .where(
            WebhookEvent.event_id.in_(ids),
            WebhookEvent.status.in_([InboxStatus.PROCESSED, InboxStatus.IGNORED]),
        )
    )
    unpushed = db.session.scalar(
        select(func.count())
        .select_from(VariantBadge)
        .where(
            VariantBadge.shop_id == platform.shop_id,
            VariantBadge.pushed_version < VariantBadge.version,
        )
    )
    mails_waiting = db.session.scalar(
        select(func.count())
        .select_from(OutboxMail)
        .where(OutboxMail.shop_id == platform.shop_id, OutboxMail.status == "pending")
    )
    return done, unpushed, mails_waiting


def tally(db, platform: Platform) -> Tally:
    from sqlalchemy import func, select

    from plugin.models import InboxStatus, WebhookEvent

    fresh(db)
    ids = [d.event_id for d in platform.deliveries]
    t = Tally(sent=len(ids))
    for d in platform.deliveries:
        if d.statuses and d.statuses[0] == 200:
            t.acked_first_try += 1
        elif d.statuses:
            t.refused_first_try[d.statuses[0]] += 1
    t.resends = sum(max(0, len(d.statuses) - 1) for d in platform.deliveries)
    t.acked = sum(d.acked for d in platform.deliveries)
    rows = dict(
        db.session.execute(
            select(WebhookEvent.status, func.count())
            .where(WebhookEvent.event_id.in_(ids))
            .group_by(WebhookEvent.status)
        ).all()
    )
    t.stored = sum(rows.values())
    t.processed = rows.get(InboxStatus.PROCESSED, 0) + rows.get(InboxStatus.IGNORED, 0)
    t.lost = t.sent - t.processed
    return t


def check_end_state(db, platform: Platform) -> list[str]:
    """What must hold once settled: each variant's badge right (in the app, in the store and
    from the badge API), the ledger owing exactly the units the store is short of its orders
    (no order counted twice, none missed), one inbox row per delivery, every mail sent once.
    Returns the problems found."""
    from sqlalchemy import func, select

    from plugin.models import (
        BackorderLine,
        Order,
        OutboxMail,
        SandboxOrder,
        SandboxVariant,
        Variant,
        VariantBadge,
        WebhookEvent,
    )

    fresh(db)
    problems = []
    ids = [d.event_id for d in platform.deliveries]
    stored = db.session.scalar(
        select(func.count()).select_from(WebhookEvent).where(WebhookEvent.event_id.in_(ids))
    )
    if stored != len(set(ids)):
        problems.append(f"inbox holds {stored} rows for {len(set(ids))} deliveries")
    orders_app = db.session.scalar(
        select(func.count()).select_from(Order).where(Order.shop_id == platform.shop_id)
    )
    orders_store = db.session.scalar(
        select(func.count())
        .select_from(SandboxOrder)
        .where(SandboxOrder.shop_id == platform.shop_id)
    )
    if orders_app != orders_store:
        problems.append(f"ledger has {orders_app} orders, the store {orders_store}")
    badges = api_badges(platform)
    for sid in platform.variant_ids:
        store = db.session.get(SandboxVariant, sid)
        expected = (
            "in_stock"
            if store.inventory > 0
            else ("backorder" if store.policy == "continue" else "out_of_stock")
        )
        variant = db.session.scalars(
            select(Variant).where(
                Variant.shop_id == platform.shop_id, Variant.platform_id == str(sid)
            )
        ).one()
        badge = db.session.get(VariantBadge, variant.id)
        shown = badges.get(str(sid), {}).get("state")
        if not (badge.state == store.badge_state == shown == expected):
            problems.append(
                f"variant {sid} (stock {store.inventory}, {store.policy}): expected {expected}, "
                f"app {badge.state}, store shows {store.badge_state}, badge API {shown}"
            )
        owed = db.session.scalar(
            select(func.coalesce(func.sum(BackorderLine.open_quantity), 0)).where(
                BackorderLine.variant_id == variant.id
            )
        )
        ordered_units = db.session.scalar(
            select(func.coalesce(func.sum(SandboxOrder.quantity), 0)).where(
                SandboxOrder.variant_id == sid
            )
        )
        # Units short (stock below zero), as far as orders account for them: stock set below
        # zero by hand owes nobody anything.
        short = min(ordered_units, max(0, -store.inventory))
        if store.policy == "continue" and owed != short:
            lines = db.session.execute(
                select(
                    BackorderLine.quantity,
                    BackorderLine.open_quantity,
                    BackorderLine.allocated_quantity,
                    BackorderLine.status,
                ).where(BackorderLine.variant_id == variant.id)
            ).all()
            ordered = db.session.scalars(
                select(SandboxOrder.quantity).where(SandboxOrder.variant_id == sid)
            ).all()
            problems.append(
                f"variant {sid}: ledger owes {owed} units, the store is {short} short; "
                f"store orders {ordered}, ledger lines "
                f"{[tuple(line) for line in lines]}"
            )
    mails = db.session.execute(
        select(OutboxMail.status, OutboxMail.message_id).where(
            OutboxMail.shop_id == platform.shop_id
        )
    ).all()
    stuck = [status for status, _ in mails if status not in ("sent", "suppressed", "bounced")]
    if stuck:
        problems.append(f"{len(stuck)} mail(s) never sent: {Counter(stuck)}")
    if platform.mailbox is not None:
        received = Counter(m["Message-ID"] for m in platform.mailbox.messages)
        for status, message_id in mails:
            if status == "sent" and received.get(message_id, 0) != 1:
                problems.append(f"mail {message_id} received {received.get(message_id, 0)} times")
    return problems


def mail_counts(db, platform: Platform) -> tuple[int, int]:
    """(mails the app sent for the shop, messages the SMTP server took for them)."""
    from sqlalchemy import select

    from plugin.models import OutboxMail

    fresh(db)
    ids = set(
        db.session.scalars(
            select(OutboxMail.message_id).where(
                OutboxMail.shop_id == platform.shop_id, OutboxMail.status == "sent"
            )
        )
    )
    taken = sum(1 for m in platform.mailbox.messages if m["Message-ID"] in ids)
    return len(ids), taken


def api_badges(platform: Platform) -> dict:
    ids = ",".join(map(str, platform.variant_ids))
    conn = http.client.HTTPConnection("127.0.0.1", platform.stack.web_port, timeout=10)
    try:
        conn.request("GET", f"/storefront/v1/badges?shop={platform.domain}&variants={ids}")
        response = conn.getresponse()
        return json.loads(response.read())["variants"]
    finally:
        conn.close()
