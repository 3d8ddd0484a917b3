"""Defect 2: the clock and the worker's scheduler outlive Redis errors.

`rq cron` exited on a Redis TimeoutError during a stall, and RQ's worker noticed its dead
scheduler only at its 10-minute maintenance, so a delayed push ran 5 minutes late. The fault
drill (tests/drills, Redis SIGSTOPped 40 s) shows it end to end; these are the quick checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue

from plugin.clock import ResilientCron
from plugin.worker import ResilientScheduler
from tests import waiting
from tests.conftest import base_env
from tests.test_end_to_end_worker import ROOT, procfile_worker_command

pytestmark = pytest.mark.services


def dead_redis() -> Redis:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Redis(port=port, socket_timeout=1, socket_connect_timeout=1)


def test_clock_keeps_running_through_redis_errors_and_catches_up(redis_url):
    live = Redis.from_url(redis_url)
    rounds = []

    def sleep(seconds):  # Redis comes back after the third failure
        rounds.append(seconds)
        if len(rounds) == 3:
            clock.connection = live

    clock = ResilientCron(connection=dead_redis(), sleep=sleep)
    clock.load_config_from_file("plugin/schedule.py")
    clock.start(rounds=4)

    assert clock.redis_errors == 3
    assert rounds[:3] == [1.0, 2.0, 4.0]  # backoff
    queued = {
        job.func_name
        for name in ("sync", "webhooks", "push", "emails")
        for job in Queue(name, connection=live).get_jobs()
    }
    assert "plugin.jobs.requeue_stuck_webhooks" in queued
    assert "plugin.jobs.push_unpushed_badges" in queued


def test_worker_scheduler_loop_survives_redis_errors(redis_url):
    live = Redis.from_url(redis_url)
    queue = Queue("push", connection=live)
    queue.enqueue_in(timedelta(seconds=0), print, "due")
    scheduler = ResilientScheduler([queue], connection=dead_redis(), sleep=lambda s: None)
    scheduler.work(rounds=2)
    assert scheduler.redis_errors == 2
    scheduler._connection = None
    scheduler._pool_kwargs = {**live.connection_pool.connection_kwargs}
    scheduler.work(rounds=1)
    assert queue.count == 1  # the due job moved to its queue once Redis answered


@pytest.fixture
def worker(queued_app, database_url, redis_url, tmp_path):
    env = {**os.environ, **base_env(DATABASE_URL=database_url, REDIS_URL=redis_url)}
    env["PYTHONPATH"] = str(ROOT)
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        procfile_worker_command(redis_url), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    print((tmp_path / "worker.log").read_text()[-4000:])


def test_worker_starts_its_scheduler_again_promptly_when_it_died(worker, redis_url):
    live = Redis.from_url(redis_url)
    queue = Queue("push", connection=live)
    first = waiting.wait_until(lambda: queue.scheduler_pid, timeout=60, what="scheduler started")
    os.kill(first, signal.SIGKILL)
    # RQ alone would look again at its 10-minute maintenance; this worker within seconds.
    second = waiting.wait_until(
        lambda: queue.scheduler_pid not in (None, first) and queue.scheduler_pid,
        timeout=30,
        what="scheduler started again",
    )
    assert second != first
    job = queue.enqueue_in(timedelta(seconds=1), "plugin.jobs.push_unpushed_badges")
    waiting.wait_until(
        lambda: job.get_status(refresh=True) == "finished", timeout=30, what="delayed job ran"
    )
    assert worker.poll() is None


def test_a_worker_asked_to_stop_during_a_job_finishes_it_and_exits(worker, redis_url):
    """A deploy's SIGTERM while a job runs: the job finishes, the worker and its scheduler exit,
    and the scheduler's locks are free for the next worker. The worker used to start its
    stopped scheduler again; that scheduler ignored the SIGTERM meant to stop it (within a
    second of the first, as a duplicate), and the worker waited until it was killed."""
    live = Redis.from_url(redis_url)
    queue = Queue("sync", connection=live)
    waiting.wait_until(lambda: queue.scheduler_pid, timeout=60, what="scheduler started")
    job = queue.enqueue("time.sleep", 0.5)
    waiting.wait_until(
        lambda: job.get_status(refresh=True) == "started",
        timeout=30,
        interval=0.02,
        what="job started",
    )
    children = _children(worker.pid)
    worker.terminate()
    waiting.wait_until(lambda: worker.poll() is not None, timeout=20, what="worker exited")
    assert worker.returncode == 0
    assert job.get_status(refresh=True) == "finished"
    assert not [pid for pid in children if _alive(pid)]  # its scheduler is gone too
    assert queue.scheduler_pid is None  # the next worker's scheduler may start at once


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
