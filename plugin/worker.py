"""The RQ worker class the Procfile runs.

RQ's default worker forks a work horse per job, and each horse had to build the Flask app and
open new database and Redis connections: the Shopify restock-storm bench measured about 0.2 s
a job that way, against about 9 ms here. This worker builds the app once and runs jobs in its
own process, keeping its connection pool. RQ's job timeouts still apply (SIGALRM); run more
worker processes for more concurrency.

It also keeps the scheduler (`--with-scheduler`, the process that moves delayed jobs such as
the coalesced badge pushes onto their queue) alive. RQ's scheduler process exits on the first
Redis error, and RQ's worker only looks for a dead one every 10 minutes (its maintenance
interval), so after a Redis stall a delayed push ran 5 minutes late. Here the scheduler's loop
retries Redis errors with backoff, and the worker checks on it every few seconds and starts it
again (under the same name, so it takes back its own locks at once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from uuid import uuid4

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from plugin.jobs import worker_app

log = logging.getLogger("plugin.worker")
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# The scheduler's own Redis calls give up after this, so a stalled Redis raises (and is
# retried) instead of hanging the scheduler.
SCHEDULER_SOCKET_TIMEOUT = 10
MAX_BACKOFF_SECONDS = 10.0
# How often the worker looks at its scheduler process (also its longest blocking dequeue).
SCHEDULER_CHECK_SECONDS = 5


class ResilientScheduler(RQScheduler):
    """RQ's scheduler whose loop outlives Redis errors (refused, reset, timed out)."""

    def __init__(self, *args, sleep=time.sleep, **kwargs):
        super().__init__(*args, **kwargs)
        self._pool_kwargs = {
            **self._pool_kwargs,
            "socket_timeout": SCHEDULER_SOCKET_TIMEOUT,
            "socket_connect_timeout": SCHEDULER_SOCKET_TIMEOUT,
        }
        self._sleep = sleep
        self.redis_errors = 0
        self._parent_pid: int | None = None

    def heartbeat(self):
        super().heartbeat()
        # rq refreshes only the heartbeat field: after a Redis restart without its data the
        # hash came back without the pid (the scheduler looked gone). Write all of it again.
        self.save()

    def start(self):
        self._parent_pid = os.getpid()  # the worker's, checked from the forked scheduler
        return super().start()

    def work(self, rounds: int | None = None) -> None:
        if rounds is None:
            self._install_signal_handlers()
        backoff = 1.0
        born = False
        while rounds is None or rounds > 0:
            if rounds is not None:
                rounds -= 1
            if self._parent_pid is not None and os.getppid() != self._parent_pid:
                # The worker was killed (SIGKILL, OOM): an orphan would keep the locks.
                self.log.warning("Scheduler: worker %s is gone; stopping", self._parent_pid)
                self._stop_requested = True
            if self._stop_requested:
                with contextlib.suppress(REDIS_ERRORS):
                    self.stop()
                break
            try:
                if not born:
                    self.register_birth()
                    born = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                self.enqueue_scheduled_jobs()
                backoff = 1.0
                wait = self.interval
            except REDIS_ERRORS as exc:
                self.redis_errors += 1
                self.log.warning(
                    "Scheduler: Redis error (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    exc,
                    backoff,
                )
                wait = backoff
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            self._sleep(wait)


class AppWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flask_app = worker_app()
        self._scheduler_checked_at = 0.0

    # Block on the queues for a few seconds at a time, so the scheduler check below runs often;
    # the socket timeout stays long, so a short Redis stall just waits instead of raising.
    @property
    def dequeue_timeout(self) -> int:
        return SCHEDULER_CHECK_SECONDS

    @property
    def connection_timeout(self) -> int:
        return max(1, self.worker_ttl - 15) + 10

    def work(self, burst: bool = False, *args, **kwargs) -> bool:
        """rq's loop, entered again when it quit over Redis (a job's or the loop's own Redis
        call failed: rq logs "quitting" and its teardown raises). A process manager would
        restart the worker; this one waits for Redis and goes on, keeping its scheduler."""
        backoff = 1.0
        while True:
            try:
                worked = super().work(burst, *args, **kwargs)
                failure = None
            except REDIS_ERRORS as exc:
                worked, failure = False, exc
            ended_on_purpose = (
                burst
                or self._stop_requested
                or self._shutdown_requested_date is not None  # SIGTERM/SIGINT while idle
                or kwargs.get("max_jobs") is not None
                or kwargs.get("max_idle_time") is not None
            )
            if ended_on_purpose:
                if failure is not None:
                    raise failure
                return worked
            log.warning(
                "Worker %s quit (%s); waiting for Redis, then working again",
                self.name,
                failure or "see above",
            )
            while True:
                try:
                    self.connection.ping()
                    break
                except REDIS_ERRORS:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            # rq's birth check refuses a name whose death was never recorded (the teardown
            # could not reach Redis): carry on under a new one.
            self.name = uuid4().hex
            self._stop_requested = False

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ):
        """rq's own, with the resilient scheduler (the same one when working again)."""
        if self.scheduler is not None and not burst:
            if self.scheduler_is_dead():
                self.scheduler.acquire_locks(auto_start=True)
            return
        self.scheduler = ResilientScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()

    def scheduler_is_dead(self) -> bool:
        scheduler = self.scheduler
        return scheduler is not None and (
            scheduler._process is None or not scheduler._process.is_alive()
        )

    @property
    def stopping(self) -> bool:
        """Asked to stop (SIGTERM or SIGINT, during a job or not)."""
        return self._stop_requested or self._shutdown_requested_date is not None

    @property
    def should_run_maintenance_tasks(self) -> bool:
        # A worker asked to stop during a job has stopped its scheduler on purpose: starting
        # it again would fork a scheduler that inherits the worker's "second signal within a
        # second is ignored" handler, ignores the SIGTERM meant to stop it, and keeps the
        # worker waiting for it (measured: until the process manager's SIGKILL).
        if (
            not self.stopping
            and self.scheduler_is_dead()
            and time.monotonic() - self._scheduler_checked_at > SCHEDULER_CHECK_SECONDS
        ):
            return True
        return super().should_run_maintenance_tasks

    def run_maintenance_tasks(self) -> None:
        if not self.stopping and self.scheduler_is_dead():
            self._scheduler_checked_at = time.monotonic()
            process = self.scheduler._process
            if process is not None:
                log.warning(
                    "Worker %s: scheduler process %s is gone (exit code %s); starting it again",
                    self.name,
                    process.pid,
                    process.exitcode,
                )
            # Without a process, the locks are another worker's (or a dead one's until they
            # expire): try to take them, quietly.
            try:
                self.scheduler.acquire_locks(auto_start=True)
            except REDIS_ERRORS as exc:
                log.warning("Worker %s: scheduler not restarted yet: %s", self.name, exc)
            if not super().should_run_maintenance_tasks:
                return
        super().run_maintenance_tasks()
