"""The storefront badge API's cache, which can never answer a badge older than the one stored.

Correct by construction:

1. Every shop has a badge generation (`BadgeGeneration`, 0 until its first bump). Any
   session that changes something the badge API answers from (the shop row, its settings, a
   product's or variant's identity, a variant's badge) bumps that shop's generation **in the
   same transaction**, just before it commits
   (`before_commit` below). Nothing else writes those tables: the listener watches every ORM
   flush, and a bulk UPDATE/DELETE/INSERT on one of them bumps every shop.
2. A request reads the shop's generation **first** (one indexed query, in its own autocommit
   statement), then looks for an answer cached in this process under
   (shop, generation, query). Only a miss reads the badges, after the generation, so what it
   caches under generation G was read from a state at least as new as G.
3. A commit that changed a badge also moved the generation, so the first request that starts
   after that commit reads the new generation, misses, and reads the new badges.

The bump is the transaction's last statement, on rows of their own (`badge_generations`, which
nothing else locks), so two workers committing for one shop queue behind each other for the
commit only, and a transaction that updated the shop row early cannot deadlock with it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import bindparam, event, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session, attributes

from plugin.models import (
    BadgeGeneration,
    InstallStatus,
    Product,
    Shop,
    StoreSettings,
    Variant,
    VariantBadge,
)
from plugin.services.driver_pool import DriverPool, execute_prepared

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

PENDING = "badge_cache.pending_shops"
ALL_SHOPS = -1

# What the badge API's answer is made of, per model: None means any column. A change to any of
# these (or a row added or deleted) bumps the shop's generation.
WATCHED: dict[type, frozenset[str] | None] = {
    Shop: None,
    StoreSettings: None,
    Product: frozenset({"shop_id", "platform_id"}),
    Variant: frozenset({"shop_id", "platform_id", "product_id"}),
    VariantBadge: frozenset({"shop_id", "variant_id", "state", "label", "eta"}),
}
WATCHED_TABLES = frozenset(model.__table__.name for model in WATCHED)


def _shop_ids(obj: Any) -> set[int]:
    """The shop (or shops, if it moved) an object's change concerns."""
    key = "id" if isinstance(obj, Shop) else "shop_id"
    history = attributes.get_history(obj, key)
    ids = {value for value in (*history.unchanged, *history.added, *history.deleted)}
    current = getattr(obj, key, None)
    if current is not None:
        ids.add(current)
    return {i for i in ids if i is not None}


def _changed(session: Session, obj: Any, columns: frozenset[str] | None) -> bool:
    if columns is None:
        return session.is_modified(obj, include_collections=False)
    return any(attributes.get_history(obj, name).has_changes() for name in columns)


def _pending(session: Session) -> set[int]:
    return session.info.setdefault(PENDING, set())


def _after_flush(session: Session, _flush_context) -> None:
    pending = None
    for group, check in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for obj in group:
            columns = WATCHED.get(type(obj), ...)
            if columns is ...:
                continue
            if check and not _changed(session, obj, columns):
                continue
            if pending is None:
                pending = _pending(session)
            pending.update(_shop_ids(obj))


def _do_orm_execute(state) -> None:
    """A bulk statement on a watched table can touch any shop's rows: bump them all."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in WATCHED_TABLES:
        _pending(state.session).add(ALL_SHOPS)


def _before_commit(session: Session) -> None:
    if session.info.get(PENDING) is None and not (session.new or session.dirty or session.deleted):
        return
    session.flush()  # so this flush's changes are collected too
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    connection = session.connection()
    shops = select(Shop.id, literal(1)).where(true())  # WHERE: SQLite's upsert-from-select
    if ALL_SHOPS not in pending:
        shops = shops.where(Shop.id.in_(sorted(pending)))
    insert = _INSERTS[connection.dialect.name](BadgeGeneration)
    bump = insert.from_select(["shop_id", "generation"], shops.order_by(Shop.id))
    bump = bump.on_conflict_do_update(
        index_elements=[BadgeGeneration.shop_id],
        set_={"generation": BadgeGeneration.generation + 1},
    )
    # Core statement on the session's connection: the same transaction, no ORM event loop.
    connection.execute(bump)


def _forget(session: Session, *_args) -> None:
    session.info.pop(PENDING, None)


def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(PENDING, None)


_registered = False


def register() -> None:
    """Listen on every ORM session (idempotent): the app's, the workers', the commands'."""
    global _registered
    if _registered:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _do_orm_execute)
    event.listen(Session, "before_commit", _before_commit)
    event.listen(Session, "after_rollback", _forget)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
    _registered = True


register()


GENERATION_QUERY = (
    select(Shop.id, func.coalesce(BadgeGeneration.generation, 0))
    .outerjoin(BadgeGeneration, BadgeGeneration.shop_id == Shop.id)
    .where(Shop.domain == bindparam("domain"), Shop.status == bindparam("status"))
    .order_by(Shop.id)
    .limit(1)
)


def shop_generation(connection, domain: str) -> tuple[int, int] | None:
    """(shop id, badge generation) of the installed shop with this domain, or None."""
    row = connection.execute(
        GENERATION_QUERY, {"domain": domain, "status": InstallStatus.INSTALLED.value}
    ).first()
    return (row[0], row[1]) if row is not None else None


class GenerationReader:
    """The one query a cached answer costs, made cheap: a statement prepared once per
    connection and sent through libpq directly (`execute_prepared`) on a small pool of its own
    (`DriverPool`: autocommit, no ping, a dead connection replaced and the query made again)."""

    NAME = b"badge_generation"

    def __init__(self, url: str, keep: int = 8):
        self.pool = DriverPool(url, keep=keep)
        compiled = GENERATION_QUERY.compile(
            dialect=postgresql_psycopg.dialect(paramstyle="numeric_dollar")
        )
        self.sql = str(compiled).encode()
        constants = compiled.construct_params(
            {"domain": "", "status": InstallStatus.INSTALLED.value}
        )
        self.params = [str(constants[name]).encode() for name in compiled.positiontup]
        self.domain_at = compiled.positiontup.index("domain")
        self.read = CoalescedReads(self.read_now)

    def read_now(self, domain: str) -> tuple[int, int] | None:
        params = list(self.params)
        params[self.domain_at] = domain.encode()

        def read(connection):
            result = execute_prepared(connection, self.NAME, self.sql, params)
            if not result.ntuples:
                return None
            return int(result.get_value(0, 0)), int(result.get_value(0, 1))

        return self.pool.run(read, "badge generation read")


class _Batch:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class CoalescedReads:
    """Concurrent requests of one process share a read, never one that began before they
    arrived: a request joins the batch of its key that has not started yet; its first member
    starts the batch's one read once the key's read in flight (if any) is over. So every
    answer comes from a read that started after the request arrived, which sees every commit
    made before it: as fresh as a read of its own, at one query per batch."""

    def __init__(self, read):
        self._read = read
        self._lock = threading.Lock()
        self._open: dict[Any, _Batch] = {}
        self._running: dict[Any, _Batch] = {}

    def __call__(self, key):
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None
            if leader:
                batch = self._open[key] = _Batch()
        if not leader:
            batch.done.wait()
            if batch.error is not None:
                return self._read(key)  # its own read, after the failed one
            return batch.result
        while True:
            with self._lock:
                running = self._running.get(key)
                if running is None:
                    del self._open[key]  # closed: whoever comes now joins the next batch
                    self._running[key] = batch
                    break
            running.done.wait()
        try:
            batch.result = self._read(key)
        except BaseException as exc:
            batch.error = exc
            raise
        finally:
            with self._lock:
                del self._running[key]
            batch.done.set()
        return batch.result


_readers: dict[tuple[int, str], GenerationReader] = {}
_readers_lock = threading.Lock()


def generation_reader(url: str) -> GenerationReader | None:
    """One reader per database per process (None on SQLite: the app's own engine serves)."""
    if url.startswith("sqlite"):
        return None
    key = (os.getpid(), url)  # a forked process opens connections of its own
    reader = _readers.get(key)
    if reader is None:
        with _readers_lock:
            reader = _readers.get(key)
            if reader is None:
                reader = _readers[key] = GenerationReader(url)
    return reader


class AnswerCache:
    """Answers (body, ETag) of this process, least recently used dropped first."""

    def __init__(self, max_entries: int = 20_000):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[bytes, str] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: tuple[bytes, str]) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
