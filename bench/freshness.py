"""Freshness benchmark: from a stock webhook's 200 to the storefront badge API showing the new
badge, at a steady `--rate` of webhooks per second, with the Procfile's web (gunicorn with
gunicorn.conf.py) and worker (`rq worker ... plugin.worker.AppWorker`) processes running.

A fresh PostgreSQL database holds a sandbox shop with enough variants, each in stock (5 units,
policy "deny"), for the load to send one signed `inventory_levels/update` per variant
(available 0, so its badge turns "out of stock"), each to a variant not touched before, paced
at `--rate` per second by `--senders` (32) threads on keep-alive connections. One poller
thread asks `GET /storefront/v1/badges?shop=&variants=<the pending ids>` back to back (up to
250 ids a request) and notes when each variant first shows "out of stock". The baseline, in the same
run and before the load, is the same measure for `--trickle` webhooks sent one at a time
(each waits for the previous one to show).

    .venv/bin/python bench/freshness.py --rate 200 --seconds 10 --workers 1

Everything it creates (servers, workers, database, the Redis db's keys) is removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
import uuid

import _harness as h

DOMAIN = "fresh.sandbox.local"


def stock_webhook(app, variant_id: int) -> tuple[bytes, dict[str, str]]:
    from plugin.models import utcnow
    from webhooks.sandbox import build_delivery

    return build_delivery(
        app.extensions["settings"].secret_key,
        DOMAIN,
        "inventory_levels/update",
        {
            "variant_id": variant_id,
            "location_id": "default",
            "available": 0,
            "updated_at": utcnow().isoformat(),
            "bench_nonce": uuid.uuid4().hex,
        },
        event_id=f"fresh-{uuid.uuid4()}",
    )


class Watcher:
    """Polls the badge API for every pending variant; records when each shows out of stock."""

    def __init__(self, port: int, interval: float = 0.0):
        self.port = port
        self.interval = interval
        self.pending: dict[int, float] = {}  # variant id -> time its webhook got its 200
        self.seen: dict[int, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.polls = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def acked(self, variant_id: int, at: float) -> None:
        with self.lock:
            self.pending[variant_id] = at

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.pending)[:250]
            if not ids:
                time.sleep(0.002)
                continue
            path = f"/storefront/v1/badges?shop={DOMAIN}&variants={','.join(map(str, ids))}"
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            now = time.perf_counter()
            self.polls += 1
            if self.interval:  # a pause after each answer: a delay is overstated by at most this
                self.stop.wait(self.interval)
            if response.status != 200:
                self.errors.append(f"badge API {response.status}")
                continue
            variants = json.loads(body)["variants"]
            with self.lock:
                for vid in ids:
                    if (variants.get(str(vid)) or {}).get("state") == "out_of_stock":
                        self.seen[vid] = now - self.pending.pop(vid)
        conn.close()


def send(port: int, request: tuple[bytes, dict[str, str]], conn=None):
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body, headers = request
    conn.request("POST", "/webhooks/sandbox", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    return conn, response.status


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def run_trickle(app, port: int, variant_ids: list[int], watcher: Watcher) -> list[float]:
    for vid in variant_ids:
        _, status = send(port, stock_webhook(app, vid))
        watcher.acked(vid, time.perf_counter())
        if status != 200:
            watcher.errors.append(f"webhook {status}")
        deadline = time.monotonic() + 30
        while vid not in watcher.seen and time.monotonic() < deadline:
            time.sleep(0.001)
    return [watcher.seen[v] for v in variant_ids if v in watcher.seen]


def run_load(app, port, variant_ids, rate, watcher, senders) -> tuple[list[float], float, int]:
    requests_ = [(vid, stock_webhook(app, vid)) for vid in variant_ids]
    start = time.perf_counter() + 0.2
    refused = []
    lock = threading.Lock()
    next_index = iter(range(len(requests_)))

    def sender() -> None:
        conn = None
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            vid, request = requests_[i]
            try:
                conn, status = send(port, request, conn)
            except (OSError, http.client.HTTPException) as exc:
                refused.append(f"{type(exc).__name__}")
                conn = None
                continue
            watcher.acked(vid, time.perf_counter())
            if status != 200:
                refused.append(str(status))
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_seconds = time.perf_counter() - start
    deadline = time.monotonic() + 60
    while any(v not in watcher.seen for v in variant_ids) and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.errors += refused
    return [watcher.seen[v] for v in variant_ids if v in watcher.seen], sent_seconds, len(refused)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=1, help="rq worker processes")
    parser.add_argument("--trickle", type=int, default=20)
    parser.add_argument("--senders", type=int, default=32, help="sender threads (connections)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.02,
        help="pause (s) between badge API polls: asking back to back for up to 250 variants "
        "takes CPU the server and workers need; a delay is overstated by at most this",
    )
    h.add_common_arguments(parser)
    args = parser.parse_args(argv)
    events = int(args.rate * args.seconds)
    if not 1 <= events <= 20_000 or not 1 <= args.workers <= 16:
        parser.error("--rate x --seconds must be 1..20000 and --workers 1..16")
    products = (events + args.trickle) // 5 + 1

    with h.stack("bench_fresh", args.pg_admin_url, args.redis_url) as st:
        variant_ids = h.seed_sandbox_catalogue(st.app, DOMAIN, products, 5)
        server = h.Server(
            "app", "plugin:create_app()", st.env, args.gunicorn_conf, args.web_workers,
            args.server_arg,
        )  # fmt: skip
        workers = h.Workers(st.env, args.redis_url, args.workers)
        watcher = None
        try:
            server.wait_ready()
            done, total = h.wait_processed(st.app, 300)  # the catalogue's own webhooks
            if done < total:
                raise SystemExit(f"seeding: {done} of {total} webhooks processed")
            watcher = Watcher(server.port, args.poll_interval)
            watcher.thread.start()
            trickle = run_trickle(st.app, server.port, variant_ids[: args.trickle], watcher)
            loaded, sent_seconds, refused = run_load(
                st.app,
                server.port,
                variant_ids[args.trickle :][:events],
                args.rate,
                watcher,
                args.senders,
            )
            watcher.stop.set()
            watcher.thread.join(timeout=30)
            done, total = h.wait_processed(st.app, 60)
        finally:
            if watcher is not None:
                watcher.stop.set()
            workers.stop()
            server.stop()

        print(
            f"freshness: stock webhook 200 -> badge API shows it, {args.workers} rq worker(s), "
            f"gunicorn {server.describe().split(' ', 3)[-1]}"
        )
        print(f"{'':34} {'events':>6} {'seen':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, values, n in (
            (f"one at a time (baseline, {args.trickle})", trickle, args.trickle),
            (f"{args.rate:g}/s for {args.seconds:g} s", loaded, events),
        ):
            ms = [v * 1000 for v in values]
            print(
                f"{name:34} {n:6d} {len(values):6d} {percentile(ms, 50):8.1f} "
                f"{percentile(ms, 95):8.1f} {max(ms, default=float('nan')):8.1f}"
            )
        print(f"offered {events / sent_seconds:.0f} webhooks/s; badge API polls: {watcher.polls}")
        p95 = percentile(loaded, 95)
        print(
            f"ratio p95 loaded/one at a time: {p95 / percentile(trickle, 95):.1f}; "
            f"p95 under load {p95 * 1000:.0f} ms (target < 1000 ms)"
        )
        print(f"inbox: {done} of {total} finished; refused or failed sends: {refused}")
        if watcher.errors:
            print("errors (first 3):", watcher.errors[:3])
        print("web:", server.describe())
        print("workers:", workers.describe())
        print("reproduce:", h.reproduce("bench/freshness.py", argv))
        missing = events - len(loaded)
        return 1 if missing or refused or done < total else 0


if __name__ == "__main__":
    sys.exit(main())
