"""The RQ worker class the Procfile runs.

RQ's default worker forks a work horse per job; without this, each horse built the Flask app
anew (about two seconds a job). Here the parent builds it once and every fork inherits it. The
parent never opens a database connection, and each horse drops any pooled connection it
inherited, so no socket is ever shared across processes.
"""

from __future__ import annotations

from rq.worker import Worker

from plugin.jobs import worker_app


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flask_app = worker_app()

    def main_work_horse(self, job, queue):
        engine = self.flask_app.extensions.get("db_engine")
        if engine is not None:
            engine.dispose(close=False)
        return super().main_work_horse(job, queue)
