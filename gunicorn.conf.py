"""gunicorn settings of the web process (Procfile: `gunicorn -c gunicorn.conf.py ...`), also
used by the wrk benches for both the app and the bare Flask baseline (bench/README.md).

Environment overrides: PORT, WEB_CONCURRENCY (worker processes), WEB_THREADS (threads per
worker), GUNICORN_ACCESS_LOG (a path, "-" for stdout, "none" for no access log).

The access log never records a query value or a credential: the BigCommerce app's `signed_payload`
/ JWT, Shopify's `id_token`, `hmac`, OAuth `code` and `state` arrive in query strings, and the
Referer repeats them. Every query value is replaced by `***` (the names stay, so the log still
tells which request was which), and credential headers are never logged.
"""

from __future__ import annotations

import os
import re

from gunicorn.glogging import Logger

# One process more than the CPUs this server may run on, each with 8 threads. A web process
# waits on PostgreSQL for every batch of webhooks it stores (the commit's WAL flush) and on
# Redis, and its CPU idles meanwhile: with one process per CPU and 4 threads, about 15% of the
# CPUs stayed idle at a platform's peak. Measured with bench/webhook_ingest.py on 2 CPUs (five
# rounds, twice or more each): 2 processes x 4 threads, the app stored about 2,990 deliveries a
# second; 3 x 8, about 3,320 (+11%). The bare Flask baseline, which never waits, loses about 8%
# with 3 processes on 2 CPUs. On a container whose CPU quota is smaller than the CPUs it sees,
# set WEB_CONCURRENCY. Keep-alive lets a proxy (or a browser through it) reuse its connection
# instead of paying a TCP handshake per request.
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", str(_CPUS + 1)))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
keepalive = 5
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
# connections over them. On one shared socket, the worker that woke first took a burst of
# keep-alive connections (a proxy's, or wrk's 16) all to itself: measured, 2 rounds in 3 ran
# on one worker, at 40% of the throughput with a CPU idle. Trade-offs (docs/operations.md):
# a connection still waiting in a stopping worker's backlog is reset (so no max_requests), and
# a second server started on the same port by the same user shares it instead of failing.
reuse_port = True
# No periodic recycling: with a socket per worker (above), a stopping worker resets the few
# connections still waiting in its backlog (measured: about 2.5 per recycle under load), where
# before the other workers took them. Worker memory is watched instead (docs/operations.md).
max_requests = 0
timeout = 30
graceful_timeout = 20
# No control socket: two servers on one machine (a bench's app and baseline) would share its
# default path.
control_socket_disable = True

_access = os.environ.get("GUNICORN_ACCESS_LOG", "-")
accesslog = None if _access == "none" else _access
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'

_QUERY_VALUE = re.compile(r"=[^&;#]*")
_SECRET_HEADERS = ("authorization", "cookie", "x-shopify-hmac-sha256", "x-auth-token")


def redact_query(query: str | None) -> str | None:
    """`a=1&id_token=eyJ...&b` -> `a=***&id_token=***&b`: every value gone, names kept."""
    if not query:
        return query
    return _QUERY_VALUE.sub("=***", query)


def redact_uri(uri: str | None) -> str | None:
    """A path or URL with its query values (and fragment) redacted."""
    if not uri or ("?" not in uri and "#" not in uri):
        return uri
    uri = uri.split("#", 1)[0]
    path, sep, query = uri.partition("?")
    return f"{path}{sep}{redact_query(query)}"


class RedactingLogger(Logger):
    """gunicorn's logger whose access log keeps paths and query names, never query values."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        method = environ.get("REQUEST_METHOD", "-")
        protocol = environ.get("SERVER_PROTOCOL", "-")
        atoms["r"] = f"{method} {redact_uri(environ.get('RAW_URI', ''))} {protocol}"
        atoms["q"] = redact_query(environ.get("QUERY_STRING")) or ""
        atoms["f"] = redact_uri(environ.get("HTTP_REFERER", "-"))
        for key, value in list(atoms.items()):
            if not (key.startswith("{") and isinstance(value, str)):
                continue
            name = key[1:].rsplit("}", 1)[0].replace("_", "-")
            if name.removeprefix("http-") in _SECRET_HEADERS or name.endswith("token"):
                atoms[key] = "***"
            elif "?" in value:
                atoms[key] = redact_uri(value)
            elif "query" in name:
                atoms[key] = redact_query(value)
        return atoms


logger_class = RedactingLogger


def post_worker_init(worker):
    """The app is loaded: move everything it built (modules, the ORM's metadata, compiled
    templates) out of the garbage collector's sight. Those objects live as long as the worker,
    and a full collection walked all of them again and again under load (measured on the
    webhook endpoint: 0.05 to 0.15 ms of CPU per request)."""
    import gc

    gc.collect()
    gc.freeze()
