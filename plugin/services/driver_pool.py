"""A small pool of autocommit connections used through the driver directly, for the two
statements on the hottest paths: the badge API's generation read (`badge_cache`) and the
webhook inbox's batch insert (`ingest`).

Why not the app's engine: no BEGIN/ROLLBACK around a single statement, no ORM, no compile or
result set-up per call, and no ping before each use. A connection found dead (PostgreSQL
restarted since it was last used) is thrown away and the work done once more on a fresh one,
so the work given must be safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

T = TypeVar("T")


class DriverPool:
    def __init__(self, url: str, pool_size: int, max_overflow: int):
        self.engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
            pool_reset_on_return=None,
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,
        )
        dbapi = self.engine.dialect.loaded_dbapi
        # A connection that is gone, as opposed to a statement the database refused.
        self.lost: tuple[type[Exception], ...] = (dbapi.OperationalError, dbapi.InterfaceError)
        self.refused: type[Exception] = dbapi.DatabaseError

    def run(self, work: Callable[[Any], T], statement: str) -> T:
        """`work(cursor)` on a pooled connection, once more on a fresh one if the first was
        dead. The database unreachable raises SQLAlchemy's OperationalError (naming
        `statement`), as the app's engine would, so the app answers 503; any other driver error
        is raised as it is."""
        for attempt in (1, 2):
            try:
                raw = self.engine.raw_connection()  # raises the driver's own errors
            except (OperationalError, *self.lost) as exc:
                if attempt == 1:
                    continue
                if isinstance(exc, OperationalError):
                    raise
                raise OperationalError(statement, None, exc) from exc
            try:
                cursor = raw.cursor()
                try:
                    return work(cursor)
                finally:
                    cursor.close()
            except self.lost as exc:
                raw.invalidate()
                if attempt == 2:
                    raise OperationalError(statement, None, exc) from exc
            finally:
                raw.close()
        raise AssertionError("unreachable")  # pragma: no cover
