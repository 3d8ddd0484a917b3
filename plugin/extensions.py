"""Extensions, created unbound here and bound to an app in `create_app()`.

Each request (or, outside a request, each app context) gets its own SQLAlchemy session, so a
request, a job run by a worker and a webhook the sandbox delivers to the app in-process each
have their own unit of work and their own commit. Flask reuses the outer app context for a
request dispatched inside another, so a request's session is kept in its WSGI environ, and only
outside a request on `g`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, has_request_context, request
from flask_limiter import Limiter
from redis import Redis
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import KeyValueCache, MemoryCache
from plugin.settings import Settings

SESSION_KEY = "backorder_badges.db_session"


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
        # Every session bumps a shop's badge generation with what changes its badges (the
        # storefront API's cache is keyed by it).
        from plugin.services import badge_cache

        badge_cache.register()
        app.teardown_request(self._close_session)
        app.teardown_appcontext(self._close_session)

    @property
    def engine(self) -> Engine:
        return current_app.extensions["db_engine"]

    @staticmethod
    def _scope() -> dict:
        return request.environ if has_request_context() else g.__dict__

    @property
    def session(self) -> Session:
        scope = self._scope()
        session = scope.get(SESSION_KEY)
        if session is None:
            session = scope[SESSION_KEY] = current_app.extensions["db_sessionmaker"]()
        return session

    def _close_session(self, _exc: BaseException | None) -> None:
        session = self._scope().pop(SESSION_KEY, None)
        if session is not None:
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
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - driver hook
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # hide_parameters: a failed statement's error (and so the log) never carries its values,
    # such as a stored webhook body naming a customer.
    engine = create_engine(url, pool_size=5, max_overflow=10, hide_parameters=True)
    _ping_when_idle(engine)
    return engine


# A connection idle for longer than this is pinged before use (and replaced if dead). One in
# steady use is not: a ping per request was one more round trip on every hot path, and if the
# server restarts under load, the first error invalidates the whole pool (SQLAlchemy's
# disconnect handling), so only requests already in flight then fail.
PING_AFTER_IDLE_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_connection, record):  # pragma: no cover - driver hook
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):  # pragma: no cover - driver hook
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("connection found dead before use") from exc
        if not alive:
            raise DisconnectionError("connection found dead before use")


class RedisConnection:
    """One Redis client per app; absent on the embedded default, where jobs run inline."""

    def init_app(self, app: Flask) -> None:
        settings: Settings = app.extensions["settings"]
        app.extensions["redis"] = Redis.from_url(settings.redis_url) if settings.redis_url else None

    @property
    def client(self) -> Redis | None:
        return current_app.extensions["redis"]


class RedisCache:
    """`connectors.base.KeyValueCache` on Redis: shared by every worker process."""

    def __init__(self, client: Redis):
        self.client = client

    def get(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode() if value is not None else None

    def set(self, key: str, value: str, ttl_s: int) -> None:
        self.client.set(key, value, ex=ttl_s)

    def get_map(self, key: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(key).items()}

    def update_map(self, key: str, values: dict[str, str], ttl_s: int) -> None:
        if not values:
            return
        pipe = self.client.pipeline()
        pipe.hset(key, mapping=values)
        pipe.expire(key, ttl_s)
        pipe.execute()

    def delete(self, key: str) -> None:
        self.client.delete(key)


# Without Redis, one process holds the whole app: one in-memory cache serves it.
_process_cache = MemoryCache()


class SharedCache:
    """The small cache platform adapters are handed: Redis when configured, else in memory."""

    def init_app(self, app: Flask) -> None:
        redis = app.extensions.get("redis")
        app.extensions["kv_cache"] = RedisCache(redis) if redis is not None else _process_cache

    @property
    def cache(self) -> KeyValueCache:
        return current_app.extensions["kv_cache"]


def client_address() -> str:
    """The caller's address as the app sees it (after the trusted proxy hops, see
    TRUSTED_PROXY_HOPS); the public endpoints use their own, better key where they have one."""
    return request.remote_addr or "unknown"


class RateLimits:
    """flask-limiter for the public endpoints: on Redis when configured (every web process
    shares the counts), else in this process's memory (the embedded default)."""

    def __init__(self) -> None:
        self.limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=True)

    def init_app(self, app: Flask) -> None:
        settings: Settings = app.extensions["settings"]
        app.config["RATELIMIT_STORAGE_URI"] = settings.redis_url or "memory://"
        app.config.setdefault("RATELIMIT_KEY_PREFIX", "bb-limits")
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 2})
        if not settings.redis_url:
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {}
        self.limiter.init_app(app)

    def limit(self, *args, **kwargs):
        return self.limiter.limit(*args, **kwargs)


db = Database()
rate_limits = RateLimits()
redis_connection = RedisConnection()
shared_cache = SharedCache()
