"""Named RQ queues and the one helper every caller uses to enqueue.

Jobs take ids, never payloads, and are idempotent, so a retry or a duplicate enqueue is safe.
Without Redis (the embedded default) the helper runs the job inline after the caller committed,
and a failure is logged and left in the database for `flask webhooks retry`, never lost.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from rq import Queue, Retry
from rq.job import Job, JobStatus

from plugin.extensions import redis_connection

log = logging.getLogger(__name__)

# Also the order workers take them in (see the Procfile). Webhooks come first: the badge
# decision (and so the badge API) stays current under any load, and pushes, which may have to
# wait for a platform's rate limit, never hold up processing. A push runs whenever the webhook
# queue is momentarily empty, which under a backlog means fewer, fuller writes. (Measured with
# bench/restock_storm_shopify.py --drained --contention 98: taking pushes first, processing took
# 134 s and 68 calls; webhooks first, 10 s and 16 calls.)
QUEUE_NAMES = ("webhooks", "push", "emails", "sync")
# Backoff between retries: quick at first for blips, then minutes for platform outages.
RETRY_INTERVALS = [5, 30, 120, 600, 1800]
DEFAULT_TIMEOUT = 300


def get_queue(name: str) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; expected one of {QUEUE_NAMES}")
    return Queue(name, connection=redis_connection.client, default_timeout=DEFAULT_TIMEOUT)


def enqueue(
    queue_name: str,
    func: Callable[..., Any],
    *args: int | str,
    job_id: str | None = None,
    delay: timedelta | None = None,
    coalesce: bool = False,
) -> Job | None:
    """Queue `func(*args)` on a named queue, with retries and backoff.

    `coalesce` with a `job_id` skips the enqueue while a job of that id is still waiting, so a
    burst of triggers yields one run that sees the latest state.
    """
    if queue_name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue_name!r}")
    client = redis_connection.client
    if client is None:
        _run_inline(func, args)
        return None

    queue = get_queue(queue_name)
    if coalesce and job_id:
        existing = Job.fetch(job_id, connection=client) if _job_exists(job_id, client) else None
        if existing is not None and existing.get_status() in (
            JobStatus.QUEUED,
            JobStatus.SCHEDULED,
            JobStatus.DEFERRED,
        ):
            return existing
    retry = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    if delay:
        return queue.enqueue_in(delay, func, *args, job_id=job_id, retry=retry)
    return queue.enqueue(func, *args, job_id=job_id, retry=retry)


def enqueue_many(
    queue_name: str, func: Callable[..., Any], ids: list[int], job_id_prefix: str
) -> None:
    """Queue `func(id)` for each id in one round trip (new work only: no coalescing check,
    so the job itself must be idempotent). Inline without Redis, as `enqueue` does."""
    if queue_name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue_name!r}")
    client = redis_connection.client
    if client is None:
        for item in ids:
            _run_inline(func, (item,))
        return
    queue = get_queue(queue_name)
    retry = Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)
    for start in range(0, len(ids), 500):
        queue.enqueue_many(
            [
                Queue.prepare_data(func, (item,), job_id=f"{job_id_prefix}{item}", retry=retry)
                for item in ids[start : start + 500]
            ]
        )


# -- small Redis markers the jobs share (none without Redis: everything runs inline) -----------


def claim_flag(key: str, ttl_s: float, owner: str = "1") -> bool:
    """Set `key` to `owner` unless it is set (one round trip); True if this call set it.
    Without Redis, always True."""
    client = redis_connection.client
    if client is None:
        return True
    return bool(client.set(key, owner, nx=True, ex=max(1, math.ceil(ttl_s))))


# A flag asked for while it is set is marked as seen: whoever asked may rely on it for a
# while without asking again (the webhook endpoint, `plugin.jobs.queue_received`), and its
# owner must then look again before it stops (`plugin.jobs.drain_shop_inbox`).
_ASK = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
redis.call('set', KEYS[2], '1', 'EX', ARGV[2])
return 0
"""
_TAKE_IF_OWNED = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  return redis.call('del', KEYS[2])
end
return 0
"""


def seen_key(key: str) -> str:
    return f"{key}:seen"


def ask_flag(key: str, ttl_s: float, owner: str) -> bool:
    """`claim_flag`, and when `key` is set already, mark it as seen by someone who will rely on
    it (one round trip)."""
    client = redis_connection.client
    if client is None:
        return True
    ttl = max(1, math.ceil(ttl_s))
    return bool(client.eval(_ASK, 2, key, seen_key(key), owner, ttl))


def take_flag(key: str, owner: str) -> bool:
    """Delete `key` while it still holds `owner`: True if it had been seen set by someone
    relying on it (`ask_flag`) (one round trip)."""
    client = redis_connection.client
    if client is None:
        return False
    return bool(client.eval(_TAKE_IF_OWNED, 2, key, seen_key(key), owner))


_DELETE_IF_OWNED = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def clear_flag(key: str, owner: str | None = None) -> None:
    """Delete `key`; with `owner`, only while it still holds that value (one round trip)."""
    client = redis_connection.client
    if client is None:
        return
    if owner is None:
        client.delete(key)
    else:
        client.eval(_DELETE_IF_OWNED, 1, key, owner)


# A platform that failed without saying when to come back: 5 s, then doubling up to 5 minutes
# while it keeps failing (the count is forgotten 15 minutes after the last failure).
PLATFORM_BACKOFF_S = (5, 10, 20, 40, 80, 160, 300)
_STRIKES_TTL_S = 900


def _down_key(shop_id: int) -> str:
    return f"platform:down:{shop_id}"


def mark_platform_down(shop_id: int, retry_after: float | None) -> float:
    """Note that the shop's platform is unavailable (or rate limited) for a while, so the shop's
    other jobs wait for it instead of each meeting a timeout. Returns the seconds to wait: the
    platform's own `retry_after` when it said, else a backoff growing while it keeps failing."""
    client = redis_connection.client
    if client is None:
        return retry_after or PLATFORM_BACKOFF_S[0]
    strikes_key = f"platform:strikes:{shop_id}"
    with client.pipeline() as pipe:
        pipe.incr(strikes_key)
        pipe.expire(strikes_key, _STRIKES_TTL_S)
        strikes = int(pipe.execute()[0])
    if retry_after is None:
        retry_after = PLATFORM_BACKOFF_S[min(strikes, len(PLATFORM_BACKOFF_S)) - 1]
    wait = max(float(retry_after), 0.1)
    client.set(_down_key(shop_id), repr(time.time() + wait), px=max(1, math.ceil(wait * 1000)))
    return wait


def platform_down_for(shop_id: int) -> float:
    """Seconds until the shop's platform may be tried again; 0 when nothing says it is down."""
    client = redis_connection.client
    if client is None:
        return 0.0
    value = client.get(_down_key(shop_id))
    if value is None:
        return 0.0
    try:
        return max(0.0, float(value) - time.time())
    except ValueError:
        return 0.0


def _job_exists(job_id: str, client) -> bool:
    return bool(client.exists(Job.key_for(job_id)))


def _run_inline(func: Callable[..., Any], args: tuple) -> None:
    try:
        func(*args)
    except Exception:
        # The job already recorded its failure in the database (inbox status, attempt row).
        log.exception("inline job %s%r failed", getattr(func, "__name__", func), args)
        if current_app.testing and current_app.config.get("RAISE_INLINE_JOB_ERRORS"):
            raise
