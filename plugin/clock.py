"""The `clock` process (Procfile): rq's cron scheduler on plugin/schedule.py, kept alive across
Redis outages.

`rq cron` exits on the first Redis error: during a 40 s Redis stall it died of a TimeoutError
and the periodic jobs (the sweepers, reconciliation) stopped until someone restarted it. Here a
Redis error (refused, reset, timed out) is logged and retried with backoff, from 1 s up to
MAX_BACKOFF_SECONDS, and the schedule goes on where it was: a job that came due during the
outage is queued once Redis answers again.

    python -m plugin.clock [--url redis://...] [--schedule plugin/schedule.py]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

log = logging.getLogger("plugin.clock")
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
MAX_BACKOFF_SECONDS = 10.0
# A stalled Redis must raise, not hang the clock forever.
SOCKET_TIMEOUT_SECONDS = 10


class ResilientCron(CronScheduler):
    """rq's CronScheduler whose loop outlives Redis errors."""

    def __init__(self, *args, sleep=time.sleep, **kwargs):
        super().__init__(*args, **kwargs)
        self._sleep = sleep
        self.redis_errors = 0

    def run_once(self) -> float:
        """One round of rq's loop: queue the due jobs, save, heartbeat; the seconds to sleep."""
        if self.enqueue_jobs():
            self.save()
        self.heartbeat()
        return self.calculate_sleep_interval()

    def start(self, rounds: int | None = None) -> None:
        self.log.info("clock %s: starting", self.name)
        if rounds is None:
            self._install_signal_handlers()
        backoff = 1.0
        born = False
        try:
            while rounds is None or rounds > 0:
                if rounds is not None:
                    rounds -= 1
                try:
                    if not born:
                        self.register_birth()
                        born = True
                    wait = self.run_once()
                    backoff = 1.0
                except REDIS_ERRORS as exc:
                    self.redis_errors += 1
                    log.warning(
                        "clock %s: Redis error (%s: %s); retrying in %.0f s",
                        self.name,
                        type(exc).__name__,
                        exc,
                        backoff,
                    )
                    wait = backoff
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                if wait > 0:
                    self._sleep(wait)
        except (KeyboardInterrupt, StopRequested):
            self.log.info("clock %s: stop requested", self.name)
        finally:
            if born:
                with contextlib.suppress(REDIS_ERRORS):
                    self.register_death()


def build(url: str, schedule: str = "plugin/schedule.py", **kwargs) -> ResilientCron:
    connection = Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    clock = ResilientCron(connection=connection, **kwargs)
    clock.load_config_from_file(schedule)
    return clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The clock: periodic jobs, Redis-outage proof.")
    parser.add_argument("--url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--schedule", default="plugin/schedule.py")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url or REDIS_URL is required")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    build(args.url, args.schedule).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
