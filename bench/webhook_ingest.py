"""Webhook ingest benchmark, driven by wrk: the real `POST /webhooks/sandbox` (verify the
signature, store the event in the inbox, commit, enqueue to Redis, 200) against a bare Flask
endpoint that only answers 200 (bench/bare_app.py), both under gunicorn with the same settings
(the repository's gunicorn.conf.py), in one run.

wrk cycles over pre-built signed sandbox `inventory_levels/update` deliveries, each with its own
event id and its own body (a `bench_nonce` field), so neither an event-id nor a body-digest
dedupe can fold two of them. No RQ worker runs, so every acknowledged webhook must still be
waiting afterwards: the inbox must hold one row per 200 (and at most one per request sent) and
the queued work must match the inbox.

    .venv/bin/python bench/webhook_ingest.py --seconds 5 --rounds 3 --connections 16

Everything it creates (servers, database, the Redis db's keys) is removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid

import _harness as h
from sqlalchemy import func, select


def deliveries(app, shop_domain: str, count: int) -> list[bytes]:
    from plugin.models import utcnow
    from webhooks.sandbox import build_delivery

    secret = app.extensions["settings"].secret_key
    now = utcnow().isoformat()
    out = []
    for i in range(count):
        body, headers = build_delivery(
            secret,
            shop_domain,
            "inventory_levels/update",
            {
                "variant_id": 1 + i % 50,
                "location_id": "default",
                "available": i % 7 - 2,
                "updated_at": now,
                "bench_nonce": uuid.uuid4().hex,
            },
            event_id=f"bench-{uuid.uuid4()}",
        )
        out.append(h.raw_request("POST", "/webhooks/sandbox", headers, body))
    return out


def queued_work(redis, queue_names: list[str]) -> dict[str, int]:
    """What waits in Redis: each queue's jobs, and any other key the app keeps per shop for
    work to do (a per-shop drain set or list), reported as found."""
    found = {}
    for name in queue_names:
        found[f"rq:queue:{name}"] = redis.llen(f"rq:queue:{name}")
    return found


def cpu_per_request(app, shop_domain: str, count: int) -> tuple[float, float]:
    """Load-independent: the CPU (user + system, this process) one delivery costs through the
    Flask test client, for the app (against PostgreSQL and Redis) and for a bare Flask endpoint
    given the same requests, in ms. Run after the wrk rounds and their count."""
    import time

    from flask import Flask

    from webhooks.sandbox import build_delivery

    secret = app.extensions["settings"].secret_key
    requests = [
        build_delivery(
            secret,
            shop_domain,
            "inventory_levels/update",
            {"variant_id": 1 + i % 50, "location_id": "default", "available": i % 7 - 2},
            event_id=f"bench-cpu-{uuid.uuid4()}",
        )
        for i in range(count + 50)
    ]
    bare = Flask("bare")
    bare.post("/webhooks/sandbox")(lambda: "ok")
    figures = []
    for client in (app.test_client(), bare.test_client()):
        for body, headers in requests[:50]:  # warm: pool, prepared statements, caches
            client.post("/webhooks/sandbox", data=body, headers=headers)
        started = time.process_time()
        for body, headers in requests[50:]:
            response = client.post("/webhooks/sandbox", data=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"CPU run: {response.status_code} {response.data!r}")
        figures.append((time.process_time() - started) / count * 1000)
    return figures[0], figures[1]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="per server and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--pool", type=int, default=0, help="signed deliveries per server (default: 5000/s)"
    )
    parser.add_argument(
        "--cpu-requests",
        type=int,
        default=1000,
        help="deliveries for the in-process CPU-per-request figure (0: skip it)",
    )
    h.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 1 <= args.connections <= 512:
        parser.error("--seconds must be 1..120 and --connections 1..512")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    h.require_wrk()
    pool = args.pool or int(args.seconds * 5000)

    with h.stack("bench_ingest", args.pg_admin_url, args.redis_url) as st, h.scratch_dir() as tmp:
        from plugin.extensions import db
        from plugin.models import WebhookEvent
        from plugin.services import sandbox_store

        with st.app.app_context():
            shop = sandbox_store.ensure_shop(db.session)
            db.session.commit()
            shop_domain = shop.domain
            db.session.close()
        # The bare endpoint keeps nothing: its requests may repeat.
        bare_prefix = h.write_requests(
            tmp, "bare", deliveries(st.app, shop_domain, 2000), args.threads
        )
        # The app's must all differ, round after round.
        app_prefixes = [
            h.write_requests(tmp, f"app{n}", deliveries(st.app, shop_domain, pool), args.threads)
            for n in range(args.rounds)
        ]

        servers = [
            h.Server(
                "bare",
                "bench.bare_app:app",
                st.env,
                args.gunicorn_conf,
                args.web_workers,
                args.server_arg,
            ),
            h.Server(
                "app",
                "plugin:create_app()",
                st.env,
                args.gunicorn_conf,
                args.web_workers,
                args.server_arg,
            ),
        ]
        try:
            for server in servers:
                server.wait_ready()
            wrk = dict(seconds=args.seconds, connections=args.connections, threads=args.threads)
            # Interleaved rounds, so a burst of other work on the machine hits both alike.
            rounds = [
                (
                    h.run_wrk("bare Flask 200", servers[0].port, bare_prefix, wrap=True, **wrk),
                    h.run_wrk("app ingest", servers[1].port, app_prefix, **wrk),
                )
                for app_prefix in app_prefixes
            ]
        finally:
            for server in servers:
                server.stop()

        with st.app.app_context():
            inbox_rows = db.session.scalar(select(func.count()).select_from(WebhookEvent))
            db.session.close()
        waiting = queued_work(st.redis, ["webhooks"])
        queued = sum(waiting.values())

        print(
            f"webhook ingest (wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s), "
            f"gunicorn {servers[1].describe().split(' ', 3)[-1]}"
        )
        bare = h.median_result([b for b, _ in rounds])
        real = h.median_result([a for _, a in rounds])
        h.print_table([bare, real])
        ratios = sorted(a.rps / b.rps for b, a in rounds)
        print(
            f"ratio throughput app/bare: {statistics.median(ratios):.2f} (median of "
            f"{args.rounds} rounds: {', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.5); "
            f"app p99 {real.p99_ms:.1f} ms (target < 50 ms)"
        )
        acked = sum(a.requests - a.error_count for _, a in rounds)
        issued = sum(a.issued for _, a in rounds)
        lost = inbox_rows < acked or inbox_rows > issued
        # One job per event today; a per-shop drain would queue less than one per event.
        work_ok = queued > 0 or inbox_rows == 0
        print(
            f"app: {issued} sent, {acked} acknowledged (200), {inbox_rows} inbox rows, "
            f"queued work {waiting} -> "
            + ("nothing lost" if not lost and work_ok else "LOST OR MISMATCH")
        )
        if args.cpu_requests:
            app_cpu, bare_cpu = cpu_per_request(st.app, shop_domain, args.cpu_requests)
            print(
                f"CPU per request in-process (Flask test client, {args.cpu_requests} deliveries): "
                f"app {app_cpu:.2f} ms, bare Flask {bare_cpu:.2f} ms"
            )
        wrapped = sum(a.wrapped for _, a in rounds)
        if wrapped:
            print(f"pool too small: the app was sent {wrapped} health checks; raise --pool")
        print("servers:", *(s.describe() for s in servers), sep="\n  ")
        print("reproduce:", h.reproduce("bench/webhook_ingest.py", argv))
        errors = sum(r.error_count for pair in rounds for r in pair)
        bad = lost or not work_ok or errors or wrapped
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
