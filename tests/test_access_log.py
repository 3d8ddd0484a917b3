"""The web process's access log (gunicorn.conf.py) never records a token from a query string:
the BigCommerce app's signed payload, Shopify's `id_token` and OAuth parameters arrive there."""

from __future__ import annotations

import datetime
import runpy
from pathlib import Path

from gunicorn.config import Config

ROOT = Path(__file__).resolve().parent.parent
TOKENS = ("eyJhbGciOiJIUzI1NiJ9.secret-jwt", "bc-signed-payload-secret", "oauth-code-secret")


def logger_from_conf(tmp_path):
    """gunicorn's Config loaded from the repository's gunicorn.conf.py, as `gunicorn -c` does."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    for name, value in settings.items():
        if name in cfg.settings:
            cfg.set(name, value)
    log_file = tmp_path / "access.log"
    cfg.set("accesslog", str(log_file))
    return cfg.logger_class(cfg), log_file


class FakeResponse:
    status = "200 OK"
    sent = 123
    headers = [("Content-Type", "application/json")]


def test_procfile_web_line_uses_the_config():
    web = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    assert "-c gunicorn.conf.py" in web
    assert "access-logfile" not in web  # the config's logger, not a second format


def test_access_log_drops_query_values_and_credentials(tmp_path):
    logger, log_file = logger_from_conf(tmp_path)
    query = (
        f"shop=demo.myshopify.com&id_token={TOKENS[0]}&signed_payload_jwt={TOKENS[1]}"
        f"&code={TOKENS[2]}&host=abc"
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/shopify/app?{query}",
        "PATH_INFO": "/shopify/app",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_REFERER": f"https://admin.shopify.com/store/x?id_token={TOKENS[0]}",
        "HTTP_USER_AGENT": "Mozilla/5.0",
    }
    request_headers = [
        ("AUTHORIZATION", f"Bearer {TOKENS[0]}"),
        ("REFERER", environ["HTTP_REFERER"]),
    ]
    logger.access(FakeResponse(), request_headers, environ, datetime.timedelta(milliseconds=12))
    # Every atom a format could name: none may carry a token.
    atoms = logger.atoms(FakeResponse(), request_headers, environ, datetime.timedelta(0))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = log_file.read_text()

    assert "GET /shopify/app?shop=***&id_token=***&signed_payload_jwt=***&code=***&host=***" in line
    assert " 200 " in line
    for token in TOKENS:
        assert token not in line
        for key, value in atoms.items():
            assert token not in str(value), key
