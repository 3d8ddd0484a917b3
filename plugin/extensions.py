"""Extensions, created unbound here and bound to an app in `create_app()`.

Each request (or, outside a request, each app context) gets its own SQLAlchemy session, so a
request, a job run by a worker and a webhook the sandbox delivers to the app in-process each
have their own unit of work and their own commit. Flask reuses the outer app context for a
request dispatched inside another, so the session is keyed on the request context first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from flask.globals import _cv_app, _cv_request
from redis import Redis
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from plugin.settings import Settings


class Database:
    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}

    def init_app(self, app: Flask) -> None:
        settings: Settings = app.extensions["settings"]
        url = settings.database_url
        if url not in self._engines:
            self._engines[url] = _make_engine(url)
        engine = self._engines[url]
        app.extensions["db_engine"] = engine
        app.extensions["db_sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
        app.teardown_request(self._close_session)
        app.teardown_appcontext(self._close_session)

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db_engine"]

    @staticmethod
    def _scope():
        return _cv_request.get(None) or _cv_app.get(None)

    @property
    def session(self) -> Session:
        scope = self._scope()
        session = getattr(scope, "_bb_db_session", None)
        if session is None:
            session = current_app.extensions["db_sessionmaker"]()
            scope._bb_db_session = session
        return session

    def _close_session(self, _exc: BaseException | None) -> None:
        scope = self._scope()
        session = getattr(scope, "_bb_db_session", None)
        if session is not None:
            del scope._bb_db_session
            session.close()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """The one commit boundary of a job: commit on success, roll back on any error."""
        session = self.session
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - driver hook
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


class RedisConnection:
    """One Redis client per app; absent on the embedded default, where jobs run inline."""

    def init_app(self, app: Flask) -> None:
        settings: Settings = app.extensions["settings"]
        app.extensions["redis"] = Redis.from_url(settings.redis_url) if settings.redis_url else None

    @property
    def client(self) -> Redis | None:
        return current_app.extensions["redis"]


db = Database()
redis_connection = RedisConnection()
