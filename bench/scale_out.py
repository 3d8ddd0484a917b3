"""Scale-out benchmark: webhooks processed per second on a backlog by 1 worker process, then
by 2 (or `--workers`), each the Procfile's worker entry (`rq worker ... AppWorker`) run with
no `--burst` (a burst worker quits when it finds the queue empty, even while another worker
still drains the last shop): they run until the backlog is processed, then are stopped.

A fresh PostgreSQL database holds `--shops` sandbox shops with 20 products of 5 variants each.
For each run, a backlog of `--events` signed `inventory_levels/update` webhooks, spread over
the shops' variants round robin, is accepted by the app in-process (inbox + queue, as
`POST /webhooks/sandbox` does) with no worker running; then the workers start. The window opens when
every worker has built the app and registered with RQ, and closes at the last event processed;
the rate is the events processed in it (inbox `processed_at`) over its length, so no worker's
start-up is counted. The 1-worker run is the baseline; the ratio is N workers
over 1.

    .venv/bin/python bench/scale_out.py --events 2000 --workers 2

Everything it creates (workers, database, the Redis db's keys) is removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import _harness as h


def backlog(app, shops: dict[str, list[int]], events: int, level: int) -> None:
    """`events` stock webhooks accepted through the app's endpoint, in-process."""
    from plugin.models import utcnow
    from webhooks.sandbox import build_delivery

    secret = app.extensions["settings"].secret_key
    client = app.test_client()
    domains = list(shops)
    now = utcnow().isoformat()
    for i in range(events):
        domain = domains[i % len(domains)]
        variants = shops[domain]
        body, headers = build_delivery(
            secret,
            domain,
            "inventory_levels/update",
            {
                "variant_id": variants[(i // len(domains)) % len(variants)],
                "location_id": "default",
                "available": level - i % 3,
                "updated_at": now,
                "bench_nonce": uuid.uuid4().hex,
            },
            event_id=f"scale-{uuid.uuid4()}",
        )
        response = client.post("/webhooks/sandbox", data=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"backlog webhook refused: {response.status_code}")


def all_registered(redis, pool: h.Workers, timeout: float):
    """When every worker of `pool` has built the app and registered with RQ (UTC): the window
    starts then, so no worker's start-up is counted, and none works alone in it."""
    from rq import Worker

    from plugin.models import utcnow

    pids = {p.pid for p in pool.processes}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pids <= {w.pid for w in Worker.all(connection=redis)}:
            return utcnow()
        time.sleep(0.05)
    raise RuntimeError("the workers did not start")


def processed_span(app, since_id: int, ready_at) -> tuple[int, float]:
    """Events processed from `ready_at` on, and the seconds from then to the last one."""
    from sqlalchemy import func, select

    from plugin.extensions import db
    from plugin.models import WebhookEvent

    with app.app_context():
        count, last = db.session.execute(
            select(func.count(), func.max(WebhookEvent.processed_at)).where(
                WebhookEvent.id > since_id, WebhookEvent.processed_at >= ready_at
            )
        ).one()
        db.session.close()
    return count, (last - ready_at).total_seconds() if count > 1 else float("nan")


def last_event_id(app) -> int:
    from sqlalchemy import func, select

    from plugin.extensions import db
    from plugin.models import WebhookEvent

    with app.app_context():
        value = db.session.scalar(select(func.coalesce(func.max(WebhookEvent.id), 0)))
        db.session.close()
    return value


def run(st, shops, events, workers: int, level: int, timeout: float) -> dict:
    since = last_event_id(st.app)
    backlog(st.app, shops, events, level)
    started = time.perf_counter()
    # Long-running workers, stopped once the backlog is processed: a burst worker quits as soon
    # as it finds the queue empty, which happens while the other holds the only drain left.
    pool = h.Workers(st.env, st.redis_url, workers)
    try:
        ready_at = all_registered(st.redis, pool, timeout)
        h.wait_processed(st.app, timeout)
    finally:
        pool.stop()
    wall = time.perf_counter() - started
    count, span = processed_span(st.app, since, ready_at)
    return {
        "workers": workers,
        "events": events,
        "processed": count,
        "span": span,
        "rate": count / span if span == span and span > 0 else float("nan"),
        "wall": wall,
        "command": pool.describe(),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="backlog per run")
    parser.add_argument("--workers", type=int, default=2, help="workers of the second run")
    parser.add_argument("--shops", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600)
    h.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not 10 <= args.events <= 50_000 or not 2 <= args.workers <= 16:
        parser.error("--events must be 10..50000 and --workers 2..16")
    if not 1 <= args.shops <= 100:
        parser.error("--shops must be 1..100")

    with h.stack("bench_scale", args.pg_admin_url, args.redis_url) as st:
        shops = {
            f"scale{n}.sandbox.local": h.seed_sandbox_catalogue(
                st.app, f"scale{n}.sandbox.local", 20, 5
            )
            for n in range(args.shops)
        }
        seed = h.Workers(st.env, args.redis_url, 1)
        h.wait_processed(st.app, args.timeout)
        seed.stop()
        results = [
            # The same work in both runs: stock stays above 0, so no badge changes in either.
            run(st, shops, args.events, 1, 3, args.timeout),
            run(st, shops, args.events, args.workers, 4, args.timeout),
        ]
        done, total = h.count_processed(st.app)

    print(
        f"scale-out: a backlog of {args.events} stock webhooks over {args.shops} shops, "
        f"drained by long-running rq workers"
    )
    print(f"{'':12} {'events':>7} {'in window':>9} {'window s':>8} {'events/s':>9} {'wall s':>7}")
    for r in results:
        print(
            f"{r['workers']:2d} worker(s) {r['events']:7d} {r['processed']:9d} {r['span']:8.1f} "
            f"{r['rate']:9.0f} {r['wall']:7.1f}"
        )
    one, many = results
    print(
        f"ratio events/s {many['workers']} workers / 1 worker: {many['rate'] / one['rate']:.2f} "
        f"(target >= 1.7 for 2)"
    )
    print(f"inbox: {done} of {total} finished (every run's backlog processed: {done == total})")
    print("workers:", many["command"])
    print("reproduce:", h.reproduce("bench/scale_out.py", argv))
    return 0 if done == total and all(r["processed"] > 1 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
