"""Fixtures of the fault drills: one PostgreSQL cluster and one redis-server of their own for
the session, one database migrated once, and the Procfile's processes on them. Each drill uses
its own sandbox shop, so the counts of one never mix with another's."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.drills.harness import PG_BIN, Postgres, RedisServer, Stack, production_env
from tests.smtp_support import MAIL_FROM, SmtpServer


@pytest.fixture(scope="session")
def drill_dir():
    path = Path(tempfile.mkdtemp(prefix="drills-"))
    yield path  # the processes' logs; a failing drill prints them
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg():
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    cluster = Postgres()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session")
def redis_server(drill_dir):
    server = RedisServer(drill_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def drill_env(pg, redis_server, smtp_server):
    admin = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "drills"'))
    admin.dispose()
    env = production_env(pg.url("drills"), redis_server.url)
    env.update(SMTP_URL=smtp_server.url, MAIL_FROM=MAIL_FROM)
    from plugin import create_app
    from plugin.commands import upgrade_database

    app = create_app(env)
    with app.app_context():
        upgrade_database()
    return env


@pytest.fixture(scope="session")
def stack(drill_dir, drill_env):
    processes = Stack(drill_dir, drill_env)
    try:
        processes.start("web")
        processes.start("worker")
        processes.start("clock")
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def drill_app(drill_env):
    from plugin import create_app

    app = create_app(drill_env)
    with app.app_context():
        yield app


@pytest.fixture
def drill_report(request, stack):
    """Per drill: on failure, the processes' logs."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(stack.logs())


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
