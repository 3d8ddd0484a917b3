"""What the wrk benches share: production-like settings, a fresh PostgreSQL database migrated
with the app's migrations, an empty Redis db, gunicorn on an ephemeral loopback port with the
repository's gunicorn.conf.py, and wrk driven by a Lua script whose figures come back as JSON.

Everything is removed at the end (servers stopped, database dropped, Redis db flushed); a run
refuses to start if its Redis db is not empty, so it never counts or flushes anyone's jobs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/10"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
WRK_LUA = Path(__file__).resolve().parent / "wrk_requests.lua"


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


def add_common_arguments(parser) -> None:
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument(
        "--gunicorn-conf",
        default=str(GUNICORN_CONF),
        help="gunicorn config for both servers; 'none' for gunicorn's defaults (sync workers)",
    )
    parser.add_argument(
        "--web-workers", type=int, default=None, help="override the config's worker count"
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="extra gunicorn argument for both servers (repeat), e.g. --server-arg=--threads=8",
    )


@dataclass
class Stack:
    """A fresh database and an empty Redis db, with the app built on them."""

    database_url: str
    redis_url: str
    env: dict[str, str]
    app: object
    redis: Redis


@contextmanager
def stack(prefix: str, pg_admin_url: str, redis_url: str):
    redis = Redis.from_url(redis_url)
    if redis.dbsize():
        redis.close()
        raise SystemExit(f"refusing to run: {redis_url} is not empty")
    admin_url = make_url(pg_admin_url)
    db_name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    database_url = admin_url.set(database=db_name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    try:
        from plugin import create_app
        from plugin.commands import upgrade_database

        env = production_env(database_url, redis_url)
        app = create_app(env)
        with app.app_context():
            upgrade_database()
        yield Stack(database_url, redis_url, env, app, redis)
    finally:
        from plugin.extensions import db

        engine = db._engines.pop(database_url, None)
        if engine is not None:
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
        redis.flushdb()
        redis.close()


class Server:
    """gunicorn on a socket we bind first (127.0.0.1, ephemeral port), handed over as fd://."""

    def __init__(
        self,
        name: str,
        app_spec: str,
        env: dict[str, str],
        conf: str,
        workers: int | None = None,
        extra: list[str] | None = None,
    ):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if conf != "none":
            # The config sets reuse_port: each gunicorn worker listens on a socket of its own
            # and the kernel spreads connections over them. This socket only holds the port
            # (bound, never listening, so it is given no connections).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            fds: tuple[int, ...] = ()
            bind = f"127.0.0.1:{self.port}"
        else:
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(2048)
            self.sock.set_inheritable(True)
            self.port = self.sock.getsockname()[1]
            fds = (self.sock.fileno(),)
            bind = f"fd://{fds[0]}"
        self.command = [sys.executable, "-m", "gunicorn", app_spec, "--bind", bind]
        if conf != "none":
            self.command += ["-c", conf]
        else:
            self.command += ["--workers", "2"]
        if workers:
            self.command += ["--workers", str(workers)]
        self.command += ["--log-level", "warning", *(extra or [])]
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT), "GUNICORN_ACCESS_LOG": "/dev/null"},
            pass_fds=fds,
        )

    def wait_ready(self, path: str = "/healthz", timeout: float = 30, warm: int = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.process.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.name} server not ready after {timeout}s")
        # Warm every worker up on GET /healthz (fresh connections spread over the workers).
        for _ in range(warm):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.sock.close()

    def describe(self) -> str:
        return shlex.join(self.command[2:])


@dataclass
class WrkResult:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    issued: int
    wrapped: int
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def write_requests(directory: Path, name: str, requests: list[bytes], threads: int) -> str:
    """Raw HTTP requests split over `threads` files (one slice each, so no two wrk threads
    send the same one), each request's length on its own line in a `.len` file."""
    prefix = directory / name
    for t in range(threads):
        mine = requests[t::threads]
        (prefix.parent / f"{prefix.name}.{t}").write_bytes(b"".join(mine))
        lengths = "\n".join(str(len(r)) for r in mine)
        (prefix.parent / f"{prefix.name}.{t}.len").write_text(lengths + "\n")
    return str(prefix)


def raw_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_wrk(
    name: str,
    port: int,
    prefix: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    wrap: bool = False,
) -> WrkResult:
    """wrk against 127.0.0.1:port sending the pre-built requests of `prefix` in order, per
    thread; `wrap`: start again from the first when a thread's slice is used up."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as out:
        out_path = out.name
    command = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
        "--timeout", "10s", "-s", str(WRK_LUA), f"http://127.0.0.1:{port}/",
    ]  # fmt: skip
    env = {
        **os.environ,
        "BENCH_REQUESTS": prefix,
        "BENCH_OUT": out_path,
        "BENCH_WRAP": "1" if wrap else "0",
    }
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr or proc.stdout}")
    data = json.loads(Path(out_path).read_text())
    os.unlink(out_path)
    return WrkResult(
        name=name,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        issued=data["issued"],
        wrapped=data["wrapped"],
        errors={k: v for k, v in data["errors"].items() if v},
    )


def median_result(results: list[WrkResult]) -> WrkResult:
    """The run with the median throughput (an odd count gives a real run)."""
    return sorted(results, key=lambda r: r.rps)[len(results) // 2]


def wrk_command(port: int, threads: int, connections: int, seconds: float) -> str:
    return (
        f"wrk -t{threads} -c{connections} -d{seconds:g}s -s {WRK_LUA.relative_to(ROOT)} "
        f"http://127.0.0.1:{port}/"
    )


def print_table(results: list[WrkResult]) -> None:
    print(f"{'':28} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for r in results:
        print(
            f"{r.name:28} {r.rps:8.0f} {r.p50_ms:7.2f} {r.p95_ms:7.2f} {r.p99_ms:7.2f} "
            f"{r.error_count:7d}"
        )


@contextmanager
def scratch_dir():
    path = Path(tempfile.mkdtemp(prefix="bench_wrk_"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")


def reproduce(script: str, argv: list[str]) -> str:
    return f"cd {ROOT} && .venv/bin/python {script} {shlex.join(argv)}".rstrip()


def procfile_command(name: str, redis_url: str) -> list[str]:
    """A Procfile entry as a command line (its $REDIS_URL filled in), run with this venv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            words = shlex.split(line.split(":", 1)[1].replace("$REDIS_URL", redis_url))
            tool = Path(sys.executable).parent / words[0]
            return [str(tool) if tool.exists() else words[0], *words[1:]]
    raise SystemExit(f"no {name!r} entry in the Procfile")


class Workers:
    """`count` processes of the Procfile's worker entry (plus `extra` arguments)."""

    def __init__(self, env: dict[str, str], redis_url: str, count: int, extra=()):
        self.command = procfile_command("worker", redis_url)
        # Options go before the queue names.
        queues_at = next(i for i, w in enumerate(self.command) if w == "webhooks")
        self.command[queues_at:queues_at] = list(extra)
        self.processes = [
            subprocess.Popen(
                self.command,
                cwd=ROOT,
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Its own process group: stopping it stops the scheduler it forks too.
                start_new_session=True,
            )
            for _ in range(count)
        ]

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # Whatever a worker forked (its scheduler) and left behind, in its own group.
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            while time.monotonic() < deadline and _group_alive(process.pid):
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def describe(self) -> str:
        return f"{len(self.processes)} x {shlex.join(self.command)}"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def seed_sandbox_catalogue(app, domain: str, products: int, variants: int, stock: int = 5):
    """Sandbox products (policy "deny", `stock` units each), their products/update webhooks
    delivered to the app in-process (queued, not yet processed): returns the variant ids."""
    from plugin.extensions import db
    from plugin.services import sandbox_store

    ids: list[int] = []
    with app.app_context():
        shop = sandbox_store.ensure_shop(db.session, domain)
        db.session.commit()
        hooks = []
        for p in range(products):
            product, made = sandbox_store.create_product(
                db.session,
                shop,
                f"Bench product {p}",
                [(f"V{v}", f"SKU-{p}-{v}", stock, "deny") for v in range(variants)],
            )
            hooks += made
            ids += [v.id for v in product.variants]
        db.session.commit()
        statuses = sandbox_store.deliver(shop, hooks)
        db.session.close()
    if set(statuses) != {200}:
        raise RuntimeError(f"seeding webhooks refused: {statuses[:5]}")
    return ids


def count_processed(app) -> tuple[int, int]:
    """(finished, total) inbox rows: finished is anything but pending or failed (to retry)."""
    from sqlalchemy import func, select

    from plugin.extensions import db
    from plugin.models import InboxStatus, WebhookEvent

    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(WebhookEvent))
        done = db.session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.status.not_in([InboxStatus.PENDING, InboxStatus.FAILED]))
        )
        db.session.close()
    return done, total


def wait_processed(app, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        done, total = count_processed(app)
        if done >= total or time.monotonic() > deadline:
            return done, total
        time.sleep(0.2)
