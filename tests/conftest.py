"""Test fixtures on the real services: PostgreSQL for the database, Redis for the queue.

Each test session gets its own PostgreSQL database (created, migrated, dropped), and each test
starts from empty tables. TEST_DATABASE_URL / TEST_REDIS_URL point elsewhere if needed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from plugin import create_app
from plugin.commands import upgrade_database
from plugin.extensions import db
from plugin.models import Base
from tests.smtp_support import MAIL_FROM, SmtpServer

PG_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER", "redis://127.0.0.1:6379")
# Set TEST_REDIS_URL to pin a database; otherwise each test session claims a free one (15
# down to 1), so two runs on one machine (a developer's and CI's) never flush each other's.
REDIS_URL = os.environ.get("TEST_REDIS_URL")
FERNET_KEY = "x3Q0o1l3J0mW6s2vVn0k3Jm4H3t7Yw2Qe1Zr5Uu8Ii0="


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        "APP_ENV": "test",
        "APP_URL": "https://app.test",
        "SECRET_KEY": "test-secret-key",
        "TOKEN_ENCRYPTION_KEYS": FERNET_KEY,
        "SHOPIFY_CLIENT_ID": "shopify-client-id",
        "SHOPIFY_CLIENT_SECRET": "shopify-client-secret",
        "BIGCOMMERCE_CLIENT_ID": "bc-client-id",
        "BIGCOMMERCE_CLIENT_SECRET": "bc-client-secret",
        "SANDBOX_ENABLED": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, migrated to head."""
    admin_url = make_url(PG_ADMIN_URL)
    name = f"bb_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, said plainly
        pytest.exit(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}", returncode=2)
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    app = create_app(base_env(DATABASE_URL=url))
    with app.app_context():
        upgrade_database()
    yield url
    db._engines.pop(url).dispose() if url in db._engines else None
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate(url: str) -> None:
    engine = db._engines.get(url) or create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app(database_url):
    """The app on PostgreSQL with jobs run inline (the queue itself is tested separately)."""
    _truncate(database_url)
    application = create_app(base_env(DATABASE_URL=database_url))
    application.config["RAISE_INLINE_JOB_ERRORS"] = True
    # Without Redis the adapters share one in-process cache: nothing learnt leaks between tests.
    application.extensions["kv_cache"].clear()
    with application.app_context():
        yield application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    from redis import Redis

    if REDIS_URL:
        yield REDIS_URL
        return
    registry = Redis.from_url(f"{REDIS_SERVER}/0")
    try:
        registry.ping()
    except Exception as exc:  # pragma: no cover - environment problem, said plainly
        pytest.exit(f"Redis is not reachable at {REDIS_SERVER}: {exc}", returncode=2)
    claim = f"backorder-badges:test-session:{uuid.uuid4().hex}"
    for number in range(15, 0, -1):
        key = f"backorder-badges:test-db:{number}"
        if registry.set(key, claim, nx=True, ex=3 * 3600):
            break
    else:  # pragma: no cover
        pytest.exit("every Redis test database (1-15) is claimed by another test run", 2)
    yield f"{REDIS_SERVER}/{number}"
    if registry.get(key) == claim.encode():
        registry.delete(key)
    registry.close()


@pytest.fixture
def redis_url(redis_session_url) -> Iterator[str]:
    from redis import Redis

    client = Redis.from_url(redis_session_url)
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover
        pytest.exit(f"Redis is not reachable at {redis_session_url}: {exc}", returncode=2)
    client.flushdb()
    yield redis_session_url
    client.flushdb()
    client.close()


@pytest.fixture
def queued_app(database_url, redis_url):
    """The app on PostgreSQL with jobs going through real Redis queues."""
    _truncate(database_url)
    application = create_app(base_env(DATABASE_URL=database_url, REDIS_URL=redis_url))
    with application.app_context():
        yield application


# --- a real SMTP server, shared by every mail test -----------------------------------------------


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def smtp_env(database_url: str, smtp: SmtpServer, **more: str) -> dict[str, str]:
    return base_env(DATABASE_URL=database_url, SMTP_URL=smtp.url, MAIL_FROM=MAIL_FROM, **more)


@pytest.fixture
def smtp_app(database_url, smtp):
    """The app sending through the test's SMTP server, jobs inline."""
    _truncate(database_url)
    application = create_app(smtp_env(database_url, smtp))
    application.config["RAISE_INLINE_JOB_ERRORS"] = False
    with application.app_context():
        yield application
