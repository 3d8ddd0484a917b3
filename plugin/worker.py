"""The RQ worker class the Procfile runs.

RQ's default worker forks a work horse per job, and each horse had to build the Flask app and
open new database and Redis connections: the Shopify restock-storm bench measured about 0.2 s
a job that way, against about 9 ms here. This worker builds the app once and runs jobs in its
own process, keeping its connection pool. RQ's job timeouts still apply (SIGALRM); run more
worker processes for more concurrency.
"""

from __future__ import annotations

from rq.worker import SimpleWorker

from plugin.jobs import worker_app


class AppWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flask_app = worker_app()
