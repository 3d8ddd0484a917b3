"""A small pool of autocommit psycopg connections, kept by the pool itself, for the two
statements on the hottest paths: the badge API's generation read (`badge_cache`) and the
webhook inbox's batch insert (`ingest`).

Why not the app's engine: no BEGIN/ROLLBACK around a single statement, no ORM, no compile or
result set-up per call, and no ping before each use. Why not SQLAlchemy's pool either: its
check-out and check-in (a connection record, events, reset) cost about 50 µs of CPU per use,
half of what the whole generation read costs through it (measured in-process: 105 µs through
that pool and a cursor, 51 µs through this pool and `execute_prepared`). Here a
connection is taken from and given back to a list under a lock.

A connection found dead (PostgreSQL restarted since it was last used) is thrown away and the
work done once more on a fresh one, so the work given must be safe to repeat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import psycopg
from psycopg import pq
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 10


class DriverPool:
    # A connection that is gone, as opposed to a statement the database refused.
    lost: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
    refused: type[Exception] = psycopg.DatabaseError

    def __init__(self, url: str, keep: int):
        """`url`: the app's SQLAlchemy URL (postgresql+psycopg://...); `keep`: how many idle
        connections are kept (more are opened when more threads need one at once, and closed
        when given back)."""
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        self.keep = keep
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    def run(self, work: Callable[[psycopg.Connection], T], statement: str) -> T:
        """`work(connection)` on a pooled connection, once more on a fresh one if the first was
        dead. The database unreachable raises SQLAlchemy's OperationalError (naming
        `statement`), as the app's engine would, so the app answers 503; any other driver error
        is raised as it is."""
        for attempt in (1, 2):
            try:
                connection = self._take()
            except self.lost as exc:
                if attempt == 1:
                    continue
                raise OperationalError(statement, None, exc) from exc
            try:
                result = work(connection)
            except self.lost as exc:
                connection.close()
                if attempt == 2:
                    raise OperationalError(statement, None, exc) from exc
                continue
            except BaseException:
                self._give(connection)
                raise
            self._give(connection)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def idle_backends(self) -> list[int]:
        """The server process ids of the idle connections (what a drill or a test kills)."""
        with self._lock:
            return [c.info.backend_pid for c in self._idle]

    def _take(self) -> psycopg.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )

    def _give(self, connection: psycopg.Connection) -> None:
        usable = (
            not connection.closed
            and connection.pgconn.status == pq.ConnStatus.OK
            and connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
        )
        if usable:
            with self._lock:
                if len(self._idle) < self.keep:
                    self._idle.append(connection)
                    return
        connection.close()


def execute_prepared(
    connection: psycopg.Connection, name: bytes, sql: bytes, params: Sequence[bytes | None]
) -> pq.abc.PGresult:
    """One statement through libpq directly (text parameters, text results), prepared on this
    connection the first time: no cursor, no adaptation, the GIL released while it waits.
    A dead connection raises the driver's OperationalError; a refused statement its error."""
    pgconn = connection.pgconn
    prepared = connection.__dict__.setdefault("_prepared_names", set())
    if name not in prepared:
        _check(connection, pgconn.prepare(name, sql), pq.ExecStatus.COMMAND_OK)
        prepared.add(name)
    result = pgconn.exec_prepared(name, params)
    return _check(connection, result, pq.ExecStatus.TUPLES_OK)


def _check(connection, result, expected) -> pq.abc.PGresult:
    if result.status == expected:
        return result
    if connection.pgconn.status != pq.ConnStatus.OK:
        message = (result.error_message or b"connection lost").decode("utf-8", "replace")
        raise psycopg.OperationalError(message.strip())
    raise psycopg.errors.error_from_result(result, encoding="utf-8")
