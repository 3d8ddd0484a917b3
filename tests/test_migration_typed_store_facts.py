"""Migration 0002 carries every shop's old JSON catch-all column over into typed columns and
tables, on SQLite and on PostgreSQL, and can be undone."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from plugin import create_app
from plugin.commands import migrate
from plugin.extensions import db
from plugin.models import Shop, StoreLocation, StoreRegistration, StoreUser, Variant
from plugin.services.shops import webhook_secret
from tests.conftest import PG_ADMIN_URL, base_env

# The column 0002 removes, named only here.
OLD_COLUMN = "platform" + "_data"
OLD_BC = {
    "webhook_secret": "s3cret-header-value",
    "account_uuid": "a1b2c3",
    "owner_id": "7654321",
    "owner_email": "owner@example.com",
    "users": {"7654321": {"email": "owner@example.com"}, "42": {"email": "s@x.io", "locale": "fr"}},
    "removed_users": {"99": 1764500000},
    "hook_ids": {"store/order/created": 11, "store/product/updated": 12},
    "script_uuid": "uuid-script",
    "registered_at": "2026-11-29T10:00:00+00:00",
    "registration_error": None,
    "location_ids": ["1", "2"],
    "native_backorders": True,
}
OLD_SHOPIFY = {
    "reauth_reason": "Shopify refused the refreshed token",
    "reauth_at": "2026-11-29T11:00:00+00:00",
    "app_inventory_policies": {"555": {"app": "CONTINUE", "merchant": "DENY"}},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/migrate.sqlite3"
        return
    admin = create_engine(make_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"bb_migrate_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    db._engines.pop(
        make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False), None
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _run(revision: str, *, down: bool = False) -> None:
    migrate(revision, down=down)


def test_the_old_json_column_becomes_typed_rows_and_comes_back_on_downgrade(database):
    app = create_app(base_env(DATABASE_URL=database))
    with app.app_context():
        _run("0001")
        now = datetime(2026, 11, 29, tzinfo=UTC).isoformat(sep=" ")
        with db.engine.begin() as conn:
            for shop_id, platform, domain, data in (
                (1, "bigcommerce", "g5cd38", OLD_BC),
                (2, "shopify", "demo.myshopify.com", OLD_SHOPIFY),
            ):
                conn.execute(
                    text(
                        "INSERT INTO shops (id, platform, domain, name, status, timezone, scopes,"
                        f" {OLD_COLUMN}, installed_at) VALUES (:id, :p, :d, '', 'installed',"
                        " 'UTC', '', :data, :now)"
                    ),
                    {
                        "id": shop_id,
                        "p": platform,
                        "d": domain,
                        "data": json.dumps(data),
                        "now": now,
                    },
                )
            conn.execute(
                text(
                    "INSERT INTO products (id, shop_id, platform_id, title, created_at)"
                    " VALUES (1, 2, '9', 'Tee', :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO variants (id, shop_id, product_id, platform_id, sku, title,"
                    " tracked, sells_past_zero, inventory_total, created_at) VALUES"
                    " (1, 2, 1, '555', '', 'S', true, false, 0, :now)"
                ),
                {"now": now},
            )

        _run("head")
        session = db.session
        store = session.get(Shop, 1)
        assert webhook_secret(store) == "s3cret-header-value"
        assert store.webhook_secret_encrypted != "s3cret-header-value"  # encrypted at rest
        assert store.platform_account_id == "a1b2c3"
        assert store.native_backorders is True
        assert store.registered_at == datetime(2026, 11, 29, 10, tzinfo=UTC)
        users = {u.user_id: u for u in session.scalars(select(StoreUser))}
        assert users["7654321"].is_owner and users["7654321"].has_access
        assert users["42"].has_access and users["42"].locale == "fr"
        assert not users["99"].has_access
        assert users["99"].removed_at == datetime.fromtimestamp(1764500000, tz=UTC)
        registrations = {
            (r.kind, r.name): r.remote_id for r in session.scalars(select(StoreRegistration))
        }
        assert registrations == {
            ("webhook", "store/order/created"): "11",
            ("webhook", "store/product/updated"): "12",
            ("script", "Backorder Badges"): "uuid-script",
        }
        assert sorted(session.scalars(select(StoreLocation.location_id))) == ["1", "2"]
        shopify = session.get(Shop, 2)
        assert shopify.reauth_reason == "Shopify refused the refreshed token"
        assert shopify.reauth_at == datetime(2026, 11, 29, 11, tzinfo=UTC)
        variant = session.get(Variant, 1)
        assert (variant.app_policy, variant.merchant_policy) == ("CONTINUE", "DENY")
        session.close()

        _run("0001", down=True)
        with db.engine.connect() as conn:
            rows = dict(conn.execute(text(f"SELECT id, {OLD_COLUMN} FROM shops")).all())
        restored = {k: json.loads(v) if isinstance(v, str) else v for k, v in rows.items()}
        assert restored[1]["webhook_secret"] == "s3cret-header-value"
        assert restored[1]["users"]["42"] == {"email": "s@x.io", "locale": "fr"}
        assert restored[1]["removed_users"] == {"99": 1764500000}
        assert restored[1]["hook_ids"] == {"store/order/created": 11, "store/product/updated": 12}
        assert restored[2]["app_inventory_policies"] == OLD_SHOPIFY["app_inventory_policies"]
        assert restored[2]["reauth_reason"] == OLD_SHOPIFY["reauth_reason"]
