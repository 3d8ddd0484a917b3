"""Settings read once from the environment into one typed object.

Deploy docs, `app-manifest.json` and the Procfile all name these variables, so the names are
fixed. Production refuses to start without its secrets rather than limping along with defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

ENVIRONMENTS = ("development", "production", "test")
PRODUCTION_SECRETS = (
    "APP_URL",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "TOKEN_ENCRYPTION_KEYS",
    "SHOPIFY_CLIENT_ID",
    "SHOPIFY_CLIENT_SECRET",
    "BIGCOMMERCE_CLIENT_ID",
    "BIGCOMMERCE_CLIENT_SECRET",
)
# Development-only stand-ins. They are public, so production never accepts them.
DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"  # noqa: S105
DEV_TOKEN_KEY = "ZGV2LW9ubHktdG9rZW4ta2V5LWRvLW5vdC11c2UtISE="  # noqa: S105 - 32 public bytes


class SettingsError(RuntimeError):
    """Start-up refused: the message names the variable to fix."""


@dataclass(frozen=True)
class SweepSettings:
    every_seconds: int = 5 * 60
    stale_pending_seconds: int = 5 * 60
    stale_failed_seconds: int = 30 * 60
    push_pending_seconds: int = 2 * 60
    reconcile_every_seconds: int = 60 * 60

    @classmethod
    def from_env(cls, get: Callable[[str], str]) -> SweepSettings:
        values = {}
        for name, default in asdict(cls()).items():
            variable = f"SWEEP_{name.upper()}"
            raw = get(variable) or str(default)
            if not raw.isdigit() or not 1 <= int(raw) <= 7 * 24 * 3600:
                raise SettingsError(f"{variable} must be a whole number of seconds, 1 to 604800")
            values[name] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class Settings:
    app_env: str
    app_url: str
    secret_key: str
    database_url: str
    redis_url: str | None
    token_encryption_keys: tuple[str, ...]
    shopify_client_id: str
    shopify_client_secret: str
    bigcommerce_client_id: str
    bigcommerce_client_secret: str
    sandbox_enabled: bool
    # Outgoing mail: smtp:// (STARTTLS when offered) or smtps://, user and password in the URL.
    # Unset: nothing leaves the machine, and the sandbox's outbox page shows every mail.
    smtp_url: str | None = None
    # The app's sending address; the shop's name is its display name.
    mail_from: str = "backorders@localhost"
    # Days stored order webhook bodies (they name customers) are kept once processed.
    order_payload_retention_days: int = 30
    # Outside production, tests and benchmarks point the platform adapters at local fakes.
    shopify_api_base_override: str | None = None
    bigcommerce_api_base_override: str | None = None
    # How many reverse proxies (a platform's router, a load balancer) sit in front of the web
    # processes: their X-Forwarded-For is trusted that many hops deep, so rate limits key on the
    # shopper's address, not the router's.
    trusted_proxy_hops: int = 0
    # The clock's safety nets (plugin/schedule.py, plugin/jobs.py), in seconds: how often the
    # sweeper runs, and how old a stored webhook (pending, or failed) or an unpushed badge must
    # be before it counts as lost and is queued again. Drills use seconds; production, minutes.
    sweep: SweepSettings = field(default_factory=SweepSettings)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def jobs_run_inline(self) -> bool:
        """No Redis configured: the embedded default runs jobs in-process, synchronously."""
        return not self.redis_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, instance_path: str | Path = "instance"):
        env = os.environ if env is None else env

        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        app_env = get("APP_ENV") or "development"
        if app_env not in ENVIRONMENTS:
            raise SettingsError(
                f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {app_env!r}"
            )

        if app_env == "production":
            missing = [name for name in PRODUCTION_SECRETS if not get(name)]
            if missing:
                raise SettingsError(
                    "Missing required setting(s) for production: " + ", ".join(missing)
                )
            if get("SECRET_KEY") == DEV_SECRET_KEY:
                raise SettingsError("SECRET_KEY is the public development key; set a real one")

        keys = tuple(k.strip() for k in get("TOKEN_ENCRYPTION_KEYS").split(",") if k.strip())
        if not keys:
            keys = (DEV_TOKEN_KEY,)
        _check_fernet_keys(keys)

        database_url = get("DATABASE_URL")
        if not database_url:
            path = Path(instance_path) / "backorder-badges.sqlite3"
            database_url = f"sqlite:///{path}"
        database_url = _normalise_database_url(database_url)

        retention = get("ORDER_PAYLOAD_RETENTION_DAYS") or "30"
        if not retention.isdigit() or not 1 <= int(retention) <= 3650:
            raise SettingsError(
                "ORDER_PAYLOAD_RETENTION_DAYS must be a whole number of days from 1 to 3650"
            )

        smtp_url = get("SMTP_URL") or None
        if smtp_url and not smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError("SMTP_URL must start with smtp:// or smtps://")
        if smtp_url and not get("MAIL_FROM"):
            raise SettingsError("MAIL_FROM is needed with SMTP_URL: the address mails come from")

        hops = get("TRUSTED_PROXY_HOPS") or "0"
        if not hops.isdigit() or int(hops) > 5:
            raise SettingsError("TRUSTED_PROXY_HOPS must be a whole number from 0 to 5")

        sandbox_default = "0" if app_env == "production" else "1"
        return cls(
            app_env=app_env,
            app_url=(get("APP_URL") or "http://127.0.0.1:5000").rstrip("/"),
            secret_key=get("SECRET_KEY") or DEV_SECRET_KEY,
            database_url=database_url,
            redis_url=get("REDIS_URL") or None,
            token_encryption_keys=keys,
            shopify_client_id=get("SHOPIFY_CLIENT_ID") or "dev-shopify-client-id",
            shopify_client_secret=get("SHOPIFY_CLIENT_SECRET") or "dev-shopify-client-secret",
            bigcommerce_client_id=get("BIGCOMMERCE_CLIENT_ID") or "dev-bigcommerce-client-id",
            bigcommerce_client_secret=get("BIGCOMMERCE_CLIENT_SECRET")
            or "dev-bigcommerce-client-secret",
            sandbox_enabled=(get("SANDBOX_ENABLED") or sandbox_default) == "1",
            order_payload_retention_days=int(retention),
            smtp_url=smtp_url,
            mail_from=get("MAIL_FROM") or "backorders@localhost",
            shopify_api_base_override=None
            if app_env == "production"
            else get("SHOPIFY_API_BASE_OVERRIDE") or None,
            bigcommerce_api_base_override=None
            if app_env == "production"
            else get("BIGCOMMERCE_API_BASE_OVERRIDE") or None,
            trusted_proxy_hops=int(hops),
            sweep=SweepSettings.from_env(get),
        )


def _check_fernet_keys(keys: tuple[str, ...]) -> None:
    from cryptography.fernet import Fernet

    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SettingsError(
                f"TOKEN_ENCRYPTION_KEYS entry {index + 1} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from exc


def _normalise_database_url(url: str) -> str:
    """Hosting platforms hand out `postgres://` URLs; SQLAlchemy wants an explicit driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
