"""What the webhook endpoint does: verify, store, queue, and only then say 200.

On PostgreSQL the deliveries a web process receives at the same time are stored together
(group commit): while one batch is being written, the deliveries that arrive wait, and the next
of them to be free writes them all, in one INSERT (one commit, one WAL flush) and one drain
request per shop. Why: written one by one, each delivery paid a statement, a commit and a Redis
round trip of its own, and those were most of the endpoint's cost at a platform's peak. Nothing
waits on a timer: a lone delivery is written at once, as before, and a batch only forms while
the previous one is in flight.

The promise is unchanged: a delivery is answered only after its batch committed and its shop's
drain was asked for; a batch the database refuses is written again one delivery at a time, so
one bad delivery cannot fail the others. Once a web process has found a shop's drain already
queued, it does not ask again for the next ASKED_RECENTLY_S (50 ms): that drain looks for
events committed until then before it stops (`plugin.jobs.queue_received`). Under a burst this
takes a Redis round trip off nearly every batch (measured: about a tenth of the endpoint's
throughput).

SQLite (the embedded default, one writer at a time) stores each delivery on its own.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from sqlalchemy import Engine

from plugin.services import inbox
from plugin.services.driver_pool import DriverPool
from plugin.services.inbox import Arrival, Recorded

log = logging.getLogger(__name__)

# At most this many deliveries in one statement (each holds its body in memory meanwhile).
MAX_TOGETHER = 200


class NotQueued(Exception):
    """Stored and committed, but its processing could not be queued (Redis unreachable): the
    answer is a 503, and the platform's retry finds the stored event and queues it again."""

    def __init__(self, event: Recorded, cause: BaseException):
        super().__init__(f"stored webhook {event.id} but could not queue it: {cause}")
        self.event = event
        self.cause = cause


def accept(engine: Engine, platform: str, body: bytes, headers: Mapping[str, str]) -> Recorded:
    """Verify, store (committed) and queue one delivery. Raises `WebhookRefused` or
    LookupError as `inbox.verify` does (nothing stored), the database's error if it could not
    be stored, and NotQueued if it was stored but not queued."""
    arrival = inbox.verify(engine, platform, body, headers)
    if engine.dialect.name == "postgresql":
        return _writer(engine).write(arrival)
    with inbox.autocommit(engine).connect() as conn:
        event = inbox.record(
            conn, arrival.platform, arrival.delivery, arrival.body, arrival.headers
        )
    _queue([event], raise_for=event)
    return event


def _queue(
    events: list[Recorded],
    raise_for: Recorded | None = None,
    rely_on_recent: bool = False,
) -> dict[int, Exception]:
    from plugin.jobs import queue_received

    failed = queue_received(events, rely_on_recent=rely_on_recent)
    if raise_for is not None and raise_for.id in failed:
        raise NotQueued(raise_for, failed[raise_for.id])
    return failed


class StoreRefused(Exception):
    """The database refused to store a delivery for what it holds (a value it cannot take).
    Its message names the error and the table, never the values: PostgreSQL's own message
    quotes the failing row, which holds the body (a customer's details)."""

    @classmethod
    def of(cls, exc: Exception) -> StoreRefused:
        primary = getattr(getattr(exc, "diag", None), "message_primary", None) or ""
        kinds = [k.__name__ for k in type(exc).__mro__[:2]]
        return cls(
            f"{' / '.join(dict.fromkeys(kinds))} storing into webhook_events: {primary} "
            "(the values are not logged)"
        )


class _Waiting:
    """One delivery in the writer's line, and what became of it. Its thread sleeps on its own
    lock until its batch is written, or until it is asked to write the next batch."""

    __slots__ = ("_wake", "arrival", "error", "event", "leads")

    def __init__(self, arrival: Arrival) -> None:
        self.arrival = arrival
        self.event: Recorded | None = None
        self.error: BaseException | None = None
        self.leads = False
        self._wake = threading.Lock()
        self._wake.acquire()

    def sleep(self) -> None:
        self._wake.acquire()

    def wake(self) -> None:
        self._wake.release()

    def outcome(self) -> Recorded:
        if self.error is not None:
            raise self.error
        if self.event is None:  # its writer was interrupted (the process is stopping)
            raise RuntimeError("the delivery's batch was not written")
        return self.event


class InboxWriter:
    """One per database and process: a line of deliveries, whoever writes the next batch, and
    a `DriverPool` of its own (one batch is in flight at a time). A batch written again on a
    fresh connection after a dead one is safe: ON CONFLICT counts it as a redelivery.

    The line's first delivery writes the batch; while it does, the others sleep. When the
    batch is done its writer wakes them and hands the next batch to the new first of the
    line, so exactly one batch is in flight per process and no thread wakes for nothing."""

    def __init__(self, url: str) -> None:
        self.pool = DriverPool(url, keep=1)
        self._lock = threading.Lock()
        self._line: list[_Waiting] = []  # not empty only while a batch is being written
        self._writing = False

    def write(self, arrival: Arrival) -> Recorded:
        mine = _Waiting(arrival)
        with self._lock:
            self._line.append(mine)
            mine.leads = not self._writing
            self._writing = True
        if not mine.leads:
            mine.sleep()  # until written, or asked to write the next batch
            if not mine.leads:
                return mine.outcome()
        # This one is first in line (a writer only hands over to the first).
        with self._lock:
            batch = self._line[:MAX_TOGETHER]
            del self._line[:MAX_TOGETHER]
        successor = None
        try:
            self._write(batch)
        finally:
            with self._lock:
                if self._line:
                    successor = self._line[0]
                    successor.leads = True
                else:
                    self._writing = False
            for waiting in batch:
                if waiting is not mine:
                    waiting.wake()
            if successor is not None:
                successor.wake()
        return mine.outcome()

    def _write(self, batch: list[_Waiting]) -> None:
        """Store and queue `batch`, leaving each one's event or error on it; never raises."""
        try:
            events = self._store(batch)
        except Exception as exc:  # every waiting request hears of it
            for waiting in batch:
                waiting.error = exc
            return
        stored = []
        for waiting, event in zip(batch, events, strict=True):
            if event is not None:
                waiting.event = event
                stored.append(waiting)
        try:
            failed = _queue([w.event for w in stored], rely_on_recent=True)
        except Exception as exc:
            failed = {w.event.id: exc for w in stored}
        for waiting in stored:
            cause = failed.get(waiting.event.id)
            if cause is not None:
                waiting.error = NotQueued(waiting.event, cause)

    def _store(self, batch: list[_Waiting]) -> list[Recorded | None]:
        """Each delivery's stored event, in one statement; if the database refuses the batch
        for what one of them holds, one at a time (None, and the error, for the ones refused)."""
        try:
            return self._run([w.arrival for w in batch])
        except self.pool.refused as exc:  # a connection lost twice is raised as a 503 instead
            if len(batch) == 1:
                raise StoreRefused.of(exc) from None
            log.warning("a batch of %d deliveries was refused; one at a time", len(batch))
        events: list[Recorded | None] = []
        for waiting in batch:
            try:
                events.extend(self._run([waiting.arrival]))
            except self.pool.refused as exc:
                waiting.error = StoreRefused.of(exc)
                events.append(None)
        return events

    def _run(self, arrivals: list[Arrival]) -> list[Recorded]:
        return self.pool.run(
            lambda connection: inbox.record_many(connection, arrivals), inbox.INSERT_MANY
        )


_WRITERS: dict[tuple[int, Engine], InboxWriter] = {}
_WRITERS_LOCK = threading.Lock()


def _writer(engine: Engine) -> InboxWriter:
    """This process's writer for `engine`'s database (a forked worker builds its own)."""
    key = (os.getpid(), engine)
    writer = _WRITERS.get(key)
    if writer is None:
        with _WRITERS_LOCK:
            writer = _WRITERS.get(key)
            if writer is None:
                url = engine.url.render_as_string(hide_password=False)
                writer = _WRITERS[key] = InboxWriter(url)
    return writer
